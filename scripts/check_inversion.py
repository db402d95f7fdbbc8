"""Inversion check: invert a video's latent with the configured model, sample back down the same grid, and print the
relative latent round-trip error for plain DDIM inversion and for fixed-point refined inversion.

Uses the warp stage's render of the first (trajectory, video) when it exists, else the source video itself, and the
prompt the inversion stage would use (`inversion.prompt`: the video's prompt — from the config, its prompt file or
its caption — or ""). Runs the pipeline object the stages run (`InverseDVSPipeline.encode`,
`.roundtrip_error`).
Last line: `roundtrip_rel_error=<float>` (refined). Example: python scripts/check_inversion.py --config configs/tiny.yml
"""

from __future__ import annotations

import argparse
import sys

from inverse_dvs import InverseDVSPipeline
from inverse_dvs.config import load_config, model_hw, resolve_config
from inverse_dvs.infra.errors import UserError
from inverse_dvs.infra.layout import render_file
from inverse_dvs.infra.video_io import FrameSelection, read_clip, read_frames
from inverse_dvs.runner.records import inversion_prompt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="config.yml")
    p.add_argument("--steps", type=int, default=30, help="inversion steps")
    p.add_argument("--refine", type=int, default=3, help="fixed-point iterations for the refined inversion")
    a = p.parse_args(argv)
    try:
        cfg = resolve_config(load_config(a.config))
        video, traj = cfg.videos[0], cfg.trajectories[0]
        render = render_file(cfg.work_dir, traj.name, video.name)
        src = render if render.is_file() else video.path
        frames = read_frames(render) if render.is_file() else read_clip(
            video.path, FrameSelection.of(cfg), model_hw(cfg, video), cfg.camera.resize).frames
        prompt = inversion_prompt(cfg, video, traj)
        pipe = InverseDVSPipeline(cfg)
        enc = pipe.encode(frames[:cfg.model_frames])
    except UserError as exc:
        print(f"check_inversion: {exc}", file=sys.stderr)
        return 2
    t_start = pipe.plan().t_start
    plain = pipe.roundtrip_error(enc, prompt, t_start, a.steps, 0)
    refined = pipe.roundtrip_error(enc, prompt, t_start, a.steps, a.refine)
    print(f"input: {src}; prompt: {prompt!r}; model: {cfg.inversion.model}; t_start={t_start}, {a.steps} inversion "
          "steps")
    print(f"plain inversion: roundtrip_rel_error={plain:.3e}")
    print(f"refined inversion ({a.refine} iterations): roundtrip_rel_error={refined:.3e}")
    print(f"roundtrip_rel_error={refined:.6e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
