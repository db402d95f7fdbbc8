"""Stage 1 — per-frame depth of each source video → `{work_dir}/depths/{video}/depth.npz`.

Backends (`depth.backend`): `depth_anything` (Depth Anything V2 through transformers), `npz` (import precomputed
depth/disparity, e.g. Video-Depth-Anything's --save_npz output) and `ground_truth` (the demo scene's exact depth).
"depth" in depth.npz is positive z-depth, larger = farther (see README → Outputs).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from .config import Config, Selection, VideoSpec, depth_source, needed_models, select, warp_hw
from .infra.artifacts import input_hashes, save_npz
from .infra.device import resolve_device
from .infra.errors import UserError
from .infra.hub import require
from .infra.layout import depth_dir
from .infra.video_io import (
    FrameSelection,
    colorize_depth,
    read_clip,
    write_video,
)
from .pipeline import InverseDVSPipeline
from .runner.cli import get_logger, run_stage
from .runner.records import depth_depends
from .runner.workqueue import Item, StageRunner, process_state

STAGE = "depth"


def _inputs(video: VideoSpec, aux: Path | None) -> dict[str, str]:
    return input_hashes({"video": video.path, **({"depth_source": aux} if aux and aux.is_file() else {})})


def _depth_item(cfg: Config, pipe: InverseDVSPipeline, folder: Path, *, video: VideoSpec,
                aux: Path | None) -> tuple[list[str], dict]:
    """Depth of one video at the warp size: estimated or imported disparity mapped to depth, or imported depth."""
    clip = read_clip(video.path, FrameSelection.of(cfg), warp_hw(cfg, video), cfg.camera.resize, get_logger())
    depth = pipe.depth_of(video.path, clip.frames, f"depth of video '{video.name}' ({aux or cfg.depth.model})")
    save_npz(folder / "depth.npz", depth=depth.astype(np.float32))
    write_video(folder / "depth.mp4", colorize_depth(depth), clip.fps)
    return ["depth.npz", "depth.mp4"], {"fps": clip.fps, "source_size": list(clip.source_size),
                                        "depth_range": [float(depth.min()), float(depth.max())]}


def run(cfg: Config, selection: Selection | None = None, *, force: bool = False, quiet: bool = False,
        model: InverseDVSPipeline | None = None) -> int:
    """The depth of every selected video (cfg: a resolved config); `model`: the pipeline whose depth model to use
    (shared with other stages of this process), else one is made here. Returns the exit code (0, 1 or 2)."""
    log = get_logger()
    videos, _ = select(cfg, selection)
    state = process_state()
    require(needed_models(cfg, (STAGE,)))  # before any item: a missing model fails fast
    runner = StageRunner(STAGE, cfg.work_dir, force, log, state, total=len(videos))
    pipe = model or InverseDVSPipeline(cfg, device=resolve_device(cfg.run.device, state), log=log)
    pipe.set_progress_bar_config(disable=quiet)
    for v in videos:
        aux = depth_source(cfg, v.path)
        item = Item(video=v.name)
        try:
            depends = depth_depends(cfg, v)  # its size: the video's own with `camera.height: auto`
        except UserError as exc:  # unreadable video, or an `auto` the model's configs must decide
            runner.fail(item, exc)
            continue
        runner.run(item, depth_dir(cfg.work_dir, v.name), depends, partial(_inputs, v, aux),
                   partial(_depth_item, cfg, pipe, video=v, aux=aux))
    return runner.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
