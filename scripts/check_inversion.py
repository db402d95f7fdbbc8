"""Inversion check: invert a video's latent with the configured model, sample back down the same grid, and print the
relative latent round-trip error for plain DDIM inversion and for fixed-point refined inversion.

Uses the warp stage's render of the first (trajectory, video) when it exists, else the source video itself, and the
prompt the inversion stage would use (`inversion.prompt`: the video's prompt — from the config, its prompt file or
its caption — or ""). Runs the pipeline object the stages run (`InverseDVS.encode`, `.roundtrip`).
Last line: `roundtrip_rel_error=<float>` (refined). Example: python scripts/check_inversion.py --config configs/tiny.yml
"""

from __future__ import annotations

import argparse
import logging
import sys

from inverse_dvs.config import load_config
from inverse_dvs.core.ddim import sampling_schedule
from inverse_dvs.infra.errors import UserError
from inverse_dvs.infra.layout import render_file
from inverse_dvs.infra.records import inversion_prompt
from inverse_dvs.infra.video_io import FrameSelection, read_clip, read_frames
from inverse_dvs.models.cogvideo import lazy_pipeline
from inverse_dvs.pipeline import InverseDVS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="config.yml")
    p.add_argument("--steps", type=int, default=30, help="inversion steps")
    p.add_argument("--refine", type=int, default=3, help="fixed-point iterations for the refined inversion")
    a = p.parse_args(argv)
    try:
        cfg = load_config(a.config)
        c, video, traj = cfg.camera, cfg.videos[0], cfg.trajectories[0]
        render = render_file(cfg.work_dir, traj.name, video.name)
        src = render if render.is_file() else video.path
        frames = read_frames(render) if render.is_file() else read_clip(
            video.path, FrameSelection(c.num_frames, c.start, c.stride), (c.height, c.width), c.resize).frames
        prompt = inversion_prompt(cfg, video, traj)
    except UserError as exc:
        print(f"check_inversion: {exc}", file=sys.stderr)
        return 2
    method = InverseDVS(lazy_pipeline(cfg, None, logging.getLogger("inverse_dvs")), cfg)
    enc = method.encode(frames, cfg.run.seed)
    t_start = sampling_schedule(cfg.inference.steps[0], cfg.inference.strength[0]).t_start
    plain = method.roundtrip(enc, prompt, t_start, a.steps, 0)
    refined = method.roundtrip(enc, prompt, t_start, a.steps, a.refine)
    print(f"input: {src}; prompt: {prompt!r}; model: {cfg.inversion.model}; t_start={t_start}, {a.steps} inversion "
          "steps")
    print(f"plain inversion: roundtrip_rel_error={plain:.3e}")
    print(f"refined inversion ({a.refine} iterations): roundtrip_rel_error={refined:.3e}")
    print(f"roundtrip_rel_error={refined:.6e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
