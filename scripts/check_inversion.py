"""Inversion check: invert a video's latent with the configured model, sample back down the same grid, and print the
relative latent round-trip error for plain DDIM inversion and for fixed-point refined inversion.

Uses the warp stage's render of the first (trajectory, video) when it exists, else the source video itself.
Last line: `roundtrip_rel_error=<float>` (refined). Example: python scripts/check_inversion.py --config configs/tiny.yml
"""

from __future__ import annotations

import argparse

from inverse_dvs.config import load_config
from inverse_dvs.core.ddim import inversion_plan, roundtrip_error, sampling_schedule
from inverse_dvs.infra.device import resolve_device, torch_dtype
from inverse_dvs.infra.layout import render_file
from inverse_dvs.infra.video_io import FrameSelection, read_clip, read_frames
from inverse_dvs.models.cogvideo import (
    ModelStats,
    alphas_cumprod,
    encode_image_latents,
    encode_prompt,
    encode_video,
    load_pipeline,
    make_v_fn,
    resolve_vae_tiling,
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="config.yml")
    p.add_argument("--steps", type=int, default=30, help="inversion steps")
    p.add_argument("--refine", type=int, default=3, help="fixed-point iterations for the refined inversion")
    a = p.parse_args(argv)
    cfg = load_config(a.config)
    c = cfg.camera
    device = resolve_device(cfg.run.device)
    stats = ModelStats()
    pipe = load_pipeline(cfg.inversion.model, cfg.model, device, torch_dtype(cfg.run.dtype, device), stats,
                         resolve_vae_tiling(cfg.model.vae_tiling, cfg.model.offload, device))
    video = cfg.videos[0]
    render = render_file(cfg.work_dir, cfg.trajectories[0].name, video.name)
    src = render if render.is_file() else video.path
    frames = read_frames(render) if render.is_file() else read_clip(
        video.path, FrameSelection(c.num_frames, c.start, c.stride), (c.height, c.width), c.resize).frames
    x0 = encode_video(pipe, frames)
    img = encode_image_latents(pipe, frames[0], x0.shape[1])
    cond, uncond = encode_prompt(pipe, video.prompt, "", False)
    v_fn = make_v_fn(pipe, img, cond, uncond, 1.0, stats)
    alphas = alphas_cumprod(pipe)
    t_start = sampling_schedule(cfg.inference.steps[0], cfg.inference.strength[0]).t_start
    plan = inversion_plan("t_start", t_start, a.steps)
    x0 = x0.to(img.device)
    plain = roundtrip_error(v_fn, x0, plan, alphas, 0)
    refined = roundtrip_error(v_fn, x0, plan, alphas, a.refine)
    print(f"input: {src}; model: {cfg.inversion.model}; t_start={t_start}, {a.steps} inversion steps")
    print(f"plain inversion: roundtrip_rel_error={plain:.3e}")
    print(f"refined inversion ({a.refine} iterations): roundtrip_rel_error={refined:.3e}")
    print(f"roundtrip_rel_error={refined:.6e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
