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

from .config import Config, TrajectorySpec, VideoSpec, read_prompt, select
from .core.text import even_frames, shorten_caption
from .infra.artifacts import atomic_path, input_hashes
from .infra.cli import get_logger, run_stage
from .infra.layout import render_file
from .infra.records import caption_depends, caption_folder, render_chain
from .infra.video_io import FrameSelection, read_clip, read_frames
from .infra.workqueue import StageRunner, process_state
from .models.captioner import captioner
from .weights import needed_models, require

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


def _caption_item(cfg: Config, model, folder: Path, *, video: VideoSpec,
                  traj: TrajectorySpec | None) -> tuple[list[str], dict]:
    """Caption one video (or one of its renders) and store the prompt, shortened to the text encoder's length."""
    import cv2

    log = get_logger()
    c = cfg.camera
    if traj is None:
        frames = read_clip(video.path, FrameSelection.of(cfg), cfg.model_hw(video), c.resize).frames
    else:
        frames = read_frames(render_file(cfg.work_dir, traj.name, video.name))
    shown = frames[even_frames(len(frames), cfg.caption.num_frames)]
    vlm = model.get()
    raw = vlm.caption(shown)
    short = shorten_caption(raw, vlm.count_tokens, vlm.max_tokens)
    if not short.text:
        raise RuntimeError(f"the captioner returned no usable text for video '{video.name}' ({raw[:80]!r})")
    if short.truncated:
        log.info("caption of video '%s' is %d tokens; the text encoder reads %d, so it was cut at a sentence boundary "
                 "(%d tokens kept).", video.name, vlm.count_tokens(" ".join(raw.split())), vlm.max_tokens,
                 short.tokens)
    with atomic_path(folder / "prompt.txt") as tmp:
        tmp.write_text(short.text + "\n", encoding="utf-8")
    with atomic_path(folder / "frames.png") as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(contact_sheet(shown), cv2.COLOR_RGB2BGR))
    return ["prompt.txt", "frames.png"], {"caption": short.text, "raw_caption": raw, "truncated": short.truncated,
                                          "tokens": short.tokens, "model": cfg.caption.model,
                                          "process_model_loads": model.loads}


def _body(cfg: Config, args) -> int:
    log = get_logger()
    videos, trajectories = select(cfg, args.only_video, args.only_trajectory)
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
    runner = StageRunner(STAGE, cfg.work_dir, args.force, log, state)
    model = captioner(cfg, state)
    for v in todo:
        for traj in (trajectories if cfg.caption.source == "render" else [None]):
            label = f"video={v.name}" + (f" trajectory={traj.name}" if traj else "")
            runner.run(label, caption_folder(cfg, v, traj), caption_depends(cfg), partial(_inputs, cfg, v, traj),
                       partial(_caption_item, cfg, model, video=v, traj=traj))
    return runner.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
