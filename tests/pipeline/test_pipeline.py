"""pipeline.pipeline: the public API on the tiny models — the same frames as run_all.sh (paper, reference, a long
clip), repeatable, the steps one by one equal to the whole call, models loaded once, and clear errors for bad input.
The tiny models' frames are noise: only equality and shapes are checked, never values."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from inverse_dvs import ConfigError, InverseDVSPipeline, UserError
from inverse_dvs.infra.errors import WeightsMissingError
from inverse_dvs.infra.video_io import read_frames, write_video
from tests.conftest import tiny_run_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pipe(tmp_path, tiny_checkpoints, demo_video) -> InverseDVSPipeline:
    """The tests' small run (tests.conftest.tiny_run_config) as a pipeline: ground-truth depth, 2 inversion steps,
    one sweep point of 3 × 0.7 steps."""
    p = InverseDVSPipeline.from_config(tiny_run_config(tmp_path, tiny_checkpoints,
                                                       f"{{path: {demo_video}, name: demo, prompt: a ball}}"))
    p.set_progress_bar_config(disable=True)
    return p


def _mp4_of(frames: np.ndarray, fps: float, tmp_path: Path) -> bytes:
    """The bytes the infer stage's encoder writes for these frames (x264 is deterministic: equal frames, equal
    bytes; any other frames, other bytes)."""
    path = tmp_path / "api.mp4"
    write_video(path, frames, fps)
    return path.read_bytes()


def test_from_pretrained_checks_weights_and_settings_before_loading_anything(tiny_checkpoints, tmp_path):
    with pytest.raises(WeightsMissingError, match="weights download"):
        InverseDVSPipeline.from_pretrained(str(tmp_path / "no-such-model"))
    model = str(tiny_checkpoints / "tiny-cogvideox-i2v")
    with pytest.raises(ConfigError, match="unknown setting 'inferance'.*inference"):
        InverseDVSPipeline.from_pretrained(model, inferance={"steps": [5]})
    with pytest.raises(ConfigError, match=r"'inference.strength\[0\]' has value 1.5"):
        InverseDVSPipeline.from_pretrained(model, inference={"strength": [1.5]})
    with pytest.raises(ConfigError, match="'method'"):
        InverseDVSPipeline.from_pretrained(model, method="official")
    with pytest.raises(WeightsMissingError, match="model.lora = Eyeline-Research/Go-with-the-Flow"):
        InverseDVSPipeline.from_pretrained(model, "reference")  # the official method's LoRA is not here
    pipe = InverseDVSPipeline.from_pretrained(model, "reference", device="cpu", model={"lora": None})
    assert pipe.config.method == "reference" and pipe.config.backbone.name == "CogVideoX-5B-I2V"
    assert pipe.config.camera.num_frames == 49 and (pipe.config.camera.height, pipe.config.camera.width) == (96, 144)
    assert pipe.stats.loads == 0  # loaded on first use only


def test_bad_input_is_named_before_any_model_work(pipe, demo_video):
    rgb = np.zeros((49, 96, 144, 3), np.uint8)
    with pytest.raises(UserError, match=r"video: expected RGB frames as a uint8 array \[T, H, W, 3\], got float32"):
        pipe(rgb.astype(np.float32), "orbit_left", "x", depth=np.ones((49, 96, 144)))
    with pytest.raises(UserError, match="has 10 frames.*camera.num_frames=49"):
        pipe(rgb[:10], "orbit_left", "x", depth=np.ones((10, 96, 144)))
    with pytest.raises(UserError, match="'orbit_lft' is neither a file nor a preset"):
        pipe(demo_video, "orbit_lft", "x")
    with pytest.raises(ConfigError, match="'trajectory.preset' has unknown preset 'orbit_lft'. Did you mean"):
        pipe(demo_video, {"preset": "orbit_lft", "amount": 5}, "x")
    with pytest.raises(UserError, match="not rigid"):
        pipe(demo_video, np.ones((49, 4, 4)), "x")
    with pytest.raises(UserError, match=r"\[T, 4, 4\] with T = 49"):
        pipe(demo_video, np.tile(np.eye(4), (30, 1, 1)), "x")
    with pytest.raises(UserError, match="depth: shape"):
        pipe(demo_video, "orbit_left", "x", depth=np.ones((49, 48, 72)))
    with pytest.raises(UserError, match="depth.backend is 'ground_truth'.*depth="):
        pipe(rgb, "orbit_left", "x")
    with pytest.raises(ConfigError, match=r"'inference.steps\[0\]' has value 0"):
        pipe(demo_video, "orbit_left", "x", steps=0)
    with pytest.raises(UserError, match="inversion.model cannot change per call"):
        pipe(demo_video, "orbit_left", "x", inversion={"model": "elsewhere"})
    assert pipe.stats.loads == 0 and not pipe.depth_model.loaded  # nothing was loaded for any of them


@pytest.mark.slow
def test_the_api_gives_run_all_frames_and_repeats_them(tmp_path, tiny_checkpoints, demo_video):
    """`bash run_all.sh` and one call of the pipeline on the same config: the same depth, render, visibility and
    cameras, and the same output frames (the infer stage's mp4 of the call's frames is byte for byte its
    output.mp4); a second call gives the same frames, with the model loaded once."""
    cfg = tiny_run_config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo, prompt: a ball}}")
    r = subprocess.run(["bash", str(ROOT / "run_all.sh"), cfg, "--quiet"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    pipe = InverseDVSPipeline.from_config(cfg)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(demo_video, pipe.config.trajectories[0], "a ball")
    work = tmp_path / "out"
    rdir = work / "results/left/demo"
    assert np.array_equal(read_frames(rdir / "render.npz"), out.render)
    with np.load(rdir / "masks.npz") as z:
        assert np.array_equal(z["visibility"], out.visible)
    with np.load(work / "depths/demo/depth.npz") as z:
        assert np.array_equal(z["depth"], out.depth)
    assert np.array_equal(np.array(json.loads((rdir / "cameras.json").read_text())["source_to_target"]), out.cameras)
    run = rdir / out.info["run_tag"]
    assert _mp4_of(out.frames, out.info["fps"], tmp_path) == (run / "output.mp4").read_bytes()
    meta = json.loads((run / "meta.json").read_text())
    assert {k: meta[k] for k in ("t_start", "nfe_per_output", "sampling_nfe")} == \
        {k: out.info[k] for k in ("t_start", "nfe_per_output", "sampling_nfe")}
    again = pipe(demo_video, pipe.config.trajectories[0], "a ball")
    assert np.array_equal(again.frames, out.frames) and pipe.stats.loads == 1


@pytest.mark.slow
@pytest.mark.parametrize("case", ["reference", "long"])
def test_the_api_gives_the_stages_frames_for_the_reference_method_and_a_long_clip(case, tmp_path, tiny_checkpoints,
                                                                                  demo_video, long_demo):
    """The official settings (the soft splat at its own warp size, the terminal inversion, the reference noise
    initialisation, dynamic CFG, VAE resampling), and a 65-frame clip in two windows: the stages run in-process (as
    run_all.sh runs them) and one call give the same output bytes; the windows are the stage's."""
    from inverse_dvs import chain, depth, warp

    if case == "reference":
        video, extra = demo_video, ("method: reference\nmodel: {lora: null}\n"
                                    "camera: {num_frames: 49, height: 96, width: 144, warp_size: [144, 256]}")
    else:
        video, extra = long_demo, "camera: {num_frames: all, height: 96, width: 144, window: 49, overlap: 9}"
    cfg = tiny_run_config(tmp_path, tiny_checkpoints, f"{{path: {video}, name: demo, prompt: a ball}}", extra)
    for stage in (depth, warp):
        assert stage.main(["--config", cfg, "--quiet"]) == 0
    assert chain.main(["invert", "infer", "--config", cfg, "--quiet"]) == 0
    pipe = InverseDVSPipeline.from_config(cfg)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(video, pipe.config.trajectories[0], "a ball")
    run = tmp_path / "out/results/left/demo" / out.info["run_tag"]
    assert _mp4_of(out.frames, out.info["fps"], tmp_path) == (run / "output.mp4").read_bytes()
    meta = json.loads((run / "meta.json").read_text())
    if case == "long":
        assert len(out.frames) == 65 and [w["frames"] for w in out.info["windows"]] == [[0, 49], [16, 65]]
        assert [{k: w[k] for k in ("frames", "overlap", "nfe", "condition_sha256") if k in w}
                for w in meta["windows"]] == [{k: w[k] for k in ("frames", "overlap", "nfe", "condition_sha256")
                                               if k in w} for w in out.info["windows"]]
    else:
        assert meta["method"] == "reference" and out.info["run_tag"].startswith("reference")


@pytest.fixture(scope="module")
def long_demo(tmp_path_factory) -> Path:
    """65 frames of the demo scene at 96×144 with its exact depth: two windows of 49 with an overlap of 9 (the last
    aligned to the clip's end)."""
    from scripts.make_demo_scene import main

    out = tmp_path_factory.mktemp("long65")
    assert main(["--out", str(out), "--frames", "65", "--height", "96", "--width", "144"]) == 0
    return out / "demo.mp4"


def test_the_steps_one_by_one_give_the_call_and_the_models_load_once(pipe, demo_video):
    """depth_of → warp → invert → generate, each public and usable alone, make exactly what one call makes; the
    models load once per pipeline object, lazily, and `release` gives them back."""
    out = pipe(demo_video, "orbit_left", "a ball")
    assert out.frames.shape == (49, 96, 144, 3) and out.frames.dtype == np.uint8
    assert out.render.shape == out.frames.shape and out.visible.shape == (49, 96, 144)
    assert out.cameras.shape == (49, 4, 4) and out.info["prompt"] == "a ball"
    clip = pipe.read_video(demo_video)
    depth = pipe.depth_of(demo_video, clip.frames)
    warped = pipe.warp(clip.frames, depth, "orbit_left")
    inverted = pipe.invert(warped.render, "a ball")
    assert inverted.t_end == pipe.plan().inversion_end and inverted.eps_inv.shape == inverted.x0.shape
    steps = pipe.generate(warped.render, warped.visibility, depth, "a ball", inversion=inverted)
    assert np.array_equal(steps.frames, out.frames)
    assert steps.info["nfe_per_output"] == out.info["nfe_per_output"] > 0
    assert pipe.stats.loads == 1  # the models load once per pipeline object…
    pipe.release()
    assert not pipe.depth_model.loaded
    pipe.invert(warped.render, "a ball")
    assert pipe.stats.loads == 2  # …and again after `release`


def test_call_settings_and_sweep_arguments_change_only_that_call(pipe, demo_video):
    base = pipe.plan()
    assert pipe.plan(guidance_scale=2.0, seed=7).run_tag != base.run_tag
    assert pipe.plan(guidance_scale=2.0, seed=7).point.seed == 7 and pipe.plan() == base
    view = pipe.with_settings(slm={"mode": "frame"})
    assert view.config.slm.mode == "frame" and pipe.config.slm.mode == "paper"
    assert view.video_model is pipe.video_model  # the same models
    with pytest.raises(UserError, match="unknown sampling setting 'cfg'"):
        pipe.plan(cfg=3)


def test_inversion_prompt_empty_inverts_every_window_with_the_empty_prompt(pipe, demo_video):
    """`inversion.prompt: empty` (official) holds inside the pipeline's `invert`, which every window of a long clip
    calls: the video's prompt is not used for the inversion (it once was for windows after the first)."""
    render = pipe.read_video(demo_video).frames
    empty = pipe.with_settings(inversion={"prompt": "empty"})
    inverted = empty.invert(render, "a ball")
    assert torch.equal(inverted.eps_inv, empty.invert(render, "").eps_inv)
    assert not torch.equal(inverted.eps_inv, pipe.invert(render, "a ball").eps_inv)  # the video's prompt counts
