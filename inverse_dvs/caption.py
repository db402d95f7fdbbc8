"""Stage 2b — caption every video that has no prompt → `{work_dir}/prompts/{video}/prompt.txt`.

A video's prompt is the user's when given (`videos[].prompt`, then `prompts/{name}.txt`); the caption stage never
writes those. Otherwise `caption.source` decides: `source` captions the clean video once per video
(`prompts/{video}/`); `render` captions each warped render (`prompts/{video}/{trajectory}/`), as the official code
does with CogVLM2; `off` leaves the video unconditioned. `caption.num_frames` frames sampled evenly are shown to a
vision-language model that transformers supports natively (AutoModelForImageTextToText, no remote code; default
SmolVLM-Instruct) with `caption.query`. A caption longer than the text encoder reads (226 T5 tokens for
CogVideoX-5B) is cut at a sentence boundary. Invert and infer read the caption (and record it in their meta.json).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from .config import Config, Selection, TrajectorySpec, VideoSpec, model_hw, needed_models, read_prompt, select
from .infra.artifacts import atomic_path, input_hashes
from .infra.device import resolve_device
from .infra.hub import require
from .infra.layout import render_file
from .infra.video_io import FrameSelection, read_clip, read_frames
from .pipeline import InverseDVSPipeline
from .runner.cli import get_logger, run_stage
from .runner.records import caption_depends, caption_folder, render_chain
from .runner.workqueue import Item, StageRunner, process_state

STAGE = "caption"


def contact_sheet(frames: np.ndarray, columns: int = 4) -> np.ndarray:
    """frames [K, H, W, 3] → one image of them in a grid (what the captioner saw, for the record)."""
    k, h, w, _ = frames.shape
    rows = -(-k // columns)
    sheet = np.zeros((rows * h, min(k, columns) * w, 3), np.uint8)
    for i, f in enumerate(frames):
        sheet[(i // columns) * h:(i // columns + 1) * h, (i % columns) * w:(i % columns + 1) * w] = f
    return sheet


def _inputs(cfg: Config, video: VideoSpec, traj: TrajectorySpec | None) -> dict[str, str]:
    if traj is None:
        return input_hashes({"video": video.path})
    return {"render": render_chain(cfg, video, traj)["render"]}


def _caption_item(cfg: Config, pipe: InverseDVSPipeline, folder: Path, *, video: VideoSpec,
                  traj: TrajectorySpec | None) -> tuple[list[str], dict]:
    """Caption one video (or one of its renders) and store the prompt, shortened to the text encoder's length."""
    import cv2

    if traj is None:
        frames = read_clip(video.path, FrameSelection.of(cfg), model_hw(cfg, video), cfg.camera.resize).frames
    else:
        frames = read_frames(render_file(cfg.work_dir, traj.name, video.name))
    cap = pipe.caption(frames, f"video '{video.name}'")
    with atomic_path(folder / "prompt.txt") as tmp:
        tmp.write_text(cap.text + "\n", encoding="utf-8")
    with atomic_path(folder / "frames.png") as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(contact_sheet(cap.shown), cv2.COLOR_RGB2BGR))
    return ["prompt.txt", "frames.png"], {"caption": cap.text, "raw_caption": cap.raw, "truncated": cap.truncated,
                                          "tokens": cap.tokens, "model": cfg.caption.model,
                                          "process_model_loads": pipe.captioner.loads}


def run(cfg: Config, selection: Selection | None = None, *, force: bool = False, quiet: bool = False,
        model: InverseDVSPipeline | None = None) -> int:
    """Caption every selected video without a prompt (cfg: a resolved config; `model`: the pipeline whose captioner
    to use, shared with other stages of this process, else one is made here). Returns the exit code (0, 1 or 2)."""
    log = get_logger()
    videos, trajectories = select(cfg, selection)
    state = process_state()
    if cfg.caption.source == "off":
        log.info("caption: caption.source is off; videos without a prompt run unconditioned.")
        return 0
    todo = [v for v in videos if not read_prompt(v)]
    for v in videos:
        if v not in todo:
            log.info("caption video=%s: has a prompt; not captioned.", v.name)
    if not todo:
        return 0
    require(needed_models(cfg, (STAGE,)))  # before any item: a missing model fails fast
    runner = StageRunner(STAGE, cfg.work_dir, force, log, state,
                         total=len(todo) * (len(trajectories) if cfg.caption.source == "render" else 1))
    pipe = model or InverseDVSPipeline(cfg, device=resolve_device(cfg.run.device, state), log=log)
    for v in todo:
        for traj in (trajectories if cfg.caption.source == "render" else [None]):
            runner.run(Item(video=v.name, trajectory=traj.name if traj else None), caption_folder(cfg, v, traj),
                       caption_depends(cfg), partial(_inputs, cfg, v, traj),
                       partial(_caption_item, cfg, pipe, video=v, traj=traj))
    return runner.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
