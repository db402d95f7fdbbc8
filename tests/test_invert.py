"""Inversion stage on the tiny CogVideoX checkpoint (real diffusers classes, random weights)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from inverse_dvs import depth, invert, warp
from inverse_dvs.core.ddim import sampling_schedule


@pytest.mark.slow
def test_two_trajectories_two_videos_one_load_deterministic(tmp_path, tiny_checkpoints, demo_video, monkeypatch):
    from diffusers import CogVideoXImageToVideoPipeline

    cfg = tmp_path / "c.yml"
    cfg.write_text(f"""
method: paper
run: {{work_dir: {tmp_path / 'out'}, device: cpu, dtype: fp32}}
videos: [{{path: {demo_video}, name: a}}, {{path: {demo_video}, name: b, prompt: "a ball"}}]
trajectories: {{left: {{preset: orbit_left, amount: 5}}, up: {{preset: arc_up, amount: 5}}}}
depth: {{backend: ground_truth}}
camera: {{num_frames: 49, height: 96, width: 144}}
caption: {{source: 'off'}}
inversion: {{model: {tiny_checkpoints / 'tiny-cogvideox-i2v'}, steps: 3}}
inference: {{steps: [10, 4], strength: [0.8]}}
""")
    args = ["--config", str(cfg), "--quiet"]
    assert depth.main(args) == 0 and warp.main(args) == 0
    loads = []
    original = CogVideoXImageToVideoPipeline.from_pretrained.__func__
    monkeypatch.setattr(CogVideoXImageToVideoPipeline, "from_pretrained",
                        classmethod(lambda cls, *a, **k: loads.append(1) or original(cls, *a, **k)))
    assert invert.main(args) == 0
    assert len(loads) == 1
    t_starts = sorted({sampling_schedule(10, 0.8).t_start, sampling_schedule(4, 0.8).t_start})
    files = {}
    for traj in ("left", "up"):
        for v in ("a", "b"):
            for t in t_starts:
                f = tmp_path / f"out/inversions/{traj}/{v}/inversion_t{t:04d}.safetensors"
                tensors = load_file(str(f))
                assert tensors["x0"].shape == (1, 13, 4, 12, 18) == tensors["eps_inv"].shape
                assert tensors["image_latents"].shape == (1, 13, 4, 12, 18)
                assert int(tensors["timesteps"][-1]) == t and len(tensors["timesteps"]) == 3
                assert torch.count_nonzero(tensors["image_latents"][:, 1:]) == 0
                files[(traj, v, t)] = tensors
    assert invert.main([*args, "--force"]) == 0  # same inputs, same seed → identical latents
    for (traj, v, t), tensors in files.items():
        again = load_file(str(tmp_path / f"out/inversions/{traj}/{v}/inversion_t{t:04d}.safetensors"))
        assert all(torch.equal(tensors[k], again[k]) for k in tensors)
    assert not torch.equal(files[("left", "a", t_starts[0])]["eps_inv"], files[("up", "a", t_starts[0])]["eps_inv"])


def test_adding_a_strength_reuses_existing_inversions(tmp_path, tiny_checkpoints, demo_video):
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"""
method: paper
run: {{work_dir: {tmp_path / 'out'}, device: cpu, dtype: fp32}}
videos: [{{path: {demo_video}, name: a}}]
trajectories: {{left: {{preset: orbit_left, amount: 5}}}}
depth: {{backend: ground_truth}}
camera: {{num_frames: 49, height: 96, width: 144}}
caption: {{source: 'off'}}
inversion: {{model: {tiny_checkpoints / 'tiny-cogvideox-i2v'}, steps: 2}}
inference: {{steps: [4], strength: [0.5]}}
""")
    args = ["--config", str(cfg), "--quiet"]
    assert depth.main(args) == 0 and warp.main(args) == 0 and invert.main(args) == 0
    folder = tmp_path / "out/inversions/left/a"
    first = folder / f"inversion_t{sampling_schedule(4, 0.5).t_start:04d}.safetensors"
    mtime = first.stat().st_mtime_ns
    assert invert.main([*args, "--set", "inference.strength=[0.5, 0.75]"]) == 0
    assert first.stat().st_mtime_ns == mtime  # kept, not recomputed
    assert (folder / f"inversion_t{sampling_schedule(4, 0.75).t_start:04d}.safetensors").is_file()
    assert invert.main(args) == 0  # back to one strength: its file is reused without loading the model
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["nfe"] == 0 and meta["process_model_loads"] == 0 and first.stat().st_mtime_ns == mtime
    assert invert.main([*args, "--set", "inversion.steps=3", "--set", "inference.strength=[0.5, 0.75]"]) == 0
    assert first.stat().st_mtime_ns != mtime  # a changed inversion setting recomputes
