"""Model access: one load for invert + infer, regional compile, sampling caches, placement (tiny checkpoint, CPU)."""

from __future__ import annotations

import json

import numpy as np
import torch

from inverse_dvs import chain, depth, warp
from inverse_dvs.cogvideo import (
    SAMPLING_CACHES,
    ModelStats,
    StepClock,
    alphas_cumprod,
    make_v_fn,
    place_pipeline,
    sampling_cache,
)
from inverse_dvs.config import ModelConfig
from inverse_dvs.ddim import ddim_sample, sampling_schedule


def _config(tmp_path, ckpt, video, extra=""):
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"""
run: {{work_dir: {tmp_path / 'out'}, device: cpu, dtype: fp32}}
videos: [{{path: {video}, name: demo, prompt: a ball}}]
trajectories: {{left: {{preset: orbit_left, amount: 5}}}}
depth: {{backend: ground_truth}}
camera: {{num_frames: 49, height: 96, width: 144}}
inversion: {{model: {ckpt / 'tiny-cogvideox-i2v'}, steps: 2}}
inference: {{steps: [4], strength: [0.75], guidance_scale: [5.0]}}
{extra}""")
    return str(cfg)


def test_invert_and_infer_share_one_load_and_compile_changes_nothing(tmp_path, tiny_checkpoints, demo_video,
                                                                      monkeypatch):
    from diffusers import CogVideoXImageToVideoPipeline

    cfg = _config(tmp_path, tiny_checkpoints, demo_video)
    args = ["--config", cfg, "--quiet"]
    assert depth.main(args) == 0 and warp.main(args) == 0
    loads = []
    original = CogVideoXImageToVideoPipeline.from_pretrained.__func__
    monkeypatch.setattr(CogVideoXImageToVideoPipeline, "from_pretrained",
                        classmethod(lambda cls, *a, **k: loads.append(1) or original(cls, *a, **k)))
    assert chain.main(["invert", "infer", *args]) == 0
    assert len(loads) == 1  # one model for both stages
    out = tmp_path / "out/results/left/demo"
    run = next(p for p in out.iterdir() if (p / "output.mp4").is_file())
    eager = (run / "output.mp4").read_bytes()
    meta = json.loads((run / "meta.json").read_text())
    assert meta["process_model_loads"] == 1 and meta["compiled"] is False and meta["cache"] == "none"
    inversion = (tmp_path / "out/inversions/left/demo/inversion_t0749.safetensors").read_bytes()
    # regional compile (aot_eager here: inductor takes ~50 s on this CPU; it matched eager to 6e-6 once by hand)
    assert chain.main(["invert", "infer", *args, "--force", "--set", "run.compile=on", "--set",
                       "run.compile_backend=aot_eager"]) == 0
    meta = json.loads((run / "meta.json").read_text())
    assert meta["compiled"] is True and meta["compile_warmup_seconds"] > 0
    assert (run / "output.mp4").read_bytes() == eager
    assert (tmp_path / "out/inversions/left/demo/inversion_t0749.safetensors").read_bytes() == inversion

    # a sampling cache: its own run tag and record; the inversion is untouched (caches never run there)
    assert chain.main(["invert", "infer", *args, "--set", "inference.cache=pab"]) == 0
    cached = [p for p in out.iterdir() if p.name.endswith("_cache-pab")]
    assert len(cached) == 1 and json.loads((cached[0] / "meta.json").read_text())["cache"] == "pab"
    assert (tmp_path / "out/inversions/left/demo/inversion_t0749.safetensors").read_bytes() == inversion


def test_sampling_caches_are_on_only_while_sampling(tiny_model):
    pipe, x0, _, stats, img, cond, uncond = tiny_model
    sched = sampling_schedule(20, 0.9)
    x = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    outs = {}
    for name in SAMPLING_CACHES:
        clock = StepClock()
        v_fn = make_v_fn(pipe, img, cond, uncond, 6.0, stats, clock)
        with sampling_cache(pipe, name, clock):
            assert pipe.transformer.is_cache_enabled == (name != "none")
            outs[name] = ddim_sample(v_fn, x, sched.timesteps, sched.prev_timesteps, alphas_cumprod(pipe))
        assert not pipe.transformer.is_cache_enabled
        assert clock.t == sched.timesteps[-1]  # the hooks saw every step's timestep
    for name in ("faster", "pab", "taylorseer"):  # these skip work on this schedule, so the result moves a little
        assert not torch.equal(outs[name], outs["none"]), name
        assert float((outs[name] - outs["none"]).abs().max()) < 0.1 * float(outs["none"].abs().max())


def test_placement_vae_tiling(tiny_model):
    pipe = tiny_model.pipe
    stats = ModelStats()
    place_pipeline(pipe, ModelConfig(vae_tiling="auto"), torch.device("cpu"), stats)
    assert stats.extra["vae_tiling"] is False and not pipe.vae.use_tiling  # auto: no tiling on the CPU
    place_pipeline(pipe, ModelConfig(vae_tiling="on"), torch.device("cpu"), stats)
    assert stats.extra["vae_tiling"] is True and pipe.vae.use_tiling


def test_clip_scorer_loads_once_and_is_deterministic(tmp_path, tiny_checkpoints, demo_video):
    from inverse_dvs.config import load_config
    from inverse_dvs.evaluate import Scorer

    cfg = load_config(_config(tmp_path, tiny_checkpoints, demo_video,
                              f"eval: {{clip_model: {tiny_checkpoints / 'tiny-clip'}, lpips: false}}"))
    scorer = Scorer(cfg, None)
    frames = np.random.default_rng(0).integers(0, 255, (5, 96, 144, 3), dtype=np.uint8)
    a, b = scorer.embed_frames(frames), scorer.embed_frames(frames)
    assert a.shape == (5, 16) and torch.equal(a, b) and scorer.embed_text("a dog").shape == (16,)
    assert scorer.loads == 1 and scorer.lpips(frames, frames) is None  # lpips off: no column
