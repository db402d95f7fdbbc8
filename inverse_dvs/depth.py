"""Stage 1 — per-frame depth of each source video → `{work_dir}/depths/{video}/depth.npz`.

Backends (`depth.backend`): `depth_anything` (Depth Anything V2 through transformers), `npz` (import precomputed
depth/disparity, e.g. Video-Depth-Anything's --save_npz output) and `ground_truth` (the demo scene's exact depth).
"depth" in depth.npz is positive z-depth, larger = farther (see README → Outputs).
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np

from .config import Config, VideoSpec, select
from .core.disparity import depth_from_disparity
from .infra.artifacts import input_hashes, save_npz
from .infra.cli import get_logger, run_stage
from .infra.errors import UserError
from .infra.layout import depth_dir
from .infra.records import depth_depends, depth_source
from .infra.video_io import (
    FrameSelection,
    colorize_depth,
    frame_indices,
    probe_video,
    read_clip,
    resize_frames,
    write_video,
)
from .infra.workqueue import StageRunner, process_state
from .models.depth_anything import depth_model
from .weights import needed_models, require

STAGE = "depth"


def _selection(cfg: Config) -> FrameSelection:
    return FrameSelection.of(cfg)


def _load_array(path: Path, key: str, video_path: str, sel: FrameSelection, hw: tuple[int, int],
                policy: str) -> tuple[np.ndarray, tuple[float, float]]:
    """Read a [N, h, w] depth/disparity array, pick the configured frames, resize with the shared policy. Also returns
    the (min, max) of the finite values of the whole file, which the `reference` mapping normalises over."""
    import cv2

    if not path.is_file():
        raise UserError(f"depth file '{path}' for video '{video_path}' does not exist; set depth.npz_path (template "
                        "with {dir}, {stem}) or use depth.backend: depth_anything.")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            asked = key
            if not key:
                fallback = keys[0] if len(keys) == 1 else ""
                key = next((k for k in ("depth", "depths", "disparity") if k in keys), fallback)
            if key not in keys:
                wanted = f"key '{asked}' (depth.npz_key)" if asked else "none of 'depth', 'depths', 'disparity'"
                raise UserError(f"depth file '{path}' has keys {keys} but {wanted} is not among them. Set "
                                f"depth.npz_key to one of {keys}.")
            arr = np.asarray(z[key], dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise UserError(f"depth file '{path}' is not a readable .npz ({exc}).") from None
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise UserError(f"depth file '{path}' key '{key}' has shape {arr.shape}; expected [frames, height, width].")
    finite = arr[np.isfinite(arr)]
    value_range = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    n_video = probe_video(video_path).frames
    if arr.shape[0] == n_video:
        arr = arr[frame_indices(n_video, sel, video_path)]
    elif arr.shape[0] != sel.count(n_video):
        raise UserError(f"depth file '{path}' has {arr.shape[0]} frames, but the video '{video_path}' has {n_video} "
                        f"and camera.num_frames selects {sel.count(n_video)}; it must have one of those counts.")
    if arr.shape[1:] != hw:
        arr = resize_frames(arr, hw, policy, cv2.INTER_NEAREST_EXACT)
    return np.ascontiguousarray(arr), value_range


def _repair(values: np.ndarray, bad: np.ndarray, where: str, what: str, repair: bool,
            log: logging.Logger) -> np.ndarray:
    """Replace `bad` entries of values [T, H, W] by each frame's median valid value (depth.repair_invalid), or fail."""
    if not bad.any():
        return values
    frames = sorted({int(i) for i in np.nonzero(bad)[0]})
    msg = (f"{where}: {int(bad.sum())} {what} values are invalid (frames {frames[:5]}"
           f"{'…' if len(frames) > 5 else ''}).")
    if not repair:
        raise UserError(msg + " Fix the depth source, or set depth.repair_invalid: true to replace them with "
                              f"each frame's median valid {what}.")
    log.warning("%s Replaced with each frame's median valid %s (depth.repair_invalid).", msg, what)
    values = values.copy()
    for t in frames:
        good = values[t][~bad[t]]
        if good.size == 0:
            raise UserError(f"{where}: frame {t} has no valid {what} value at all; cannot repair. Fix the depth "
                            "source for that frame.")
        values[t][bad[t]] = np.median(good)
    return values


def validate_depth(depth: np.ndarray, where: str, repair: bool, log: logging.Logger) -> np.ndarray:
    """Depth must be finite and > 0 everywhere. Repair (if enabled) replaces bad pixels with the frame median."""
    return _repair(depth, ~np.isfinite(depth) | (depth <= 0), where, "depth (NaN, inf or <= 0)", repair, log)


def validate_disparity(disp: np.ndarray, where: str, repair: bool, log: logging.Logger) -> np.ndarray:
    """Disparity must be finite (NaN/inf repaired like depth with repair_invalid) and must vary: a constant or all-zero
    map has no geometry (a failed estimate or the wrong array)."""
    disp = _repair(disp, ~np.isfinite(disp), where, "disparity (NaN or inf)", repair, log)
    flat = [t for t in range(len(disp)) if float(disp[t].max() - disp[t].min()) <= 1e-12 * max(1.0, abs(
        float(disp[t].max())))]
    if len(flat) == len(disp):
        raise UserError(f"{where}: the disparity is constant{' zero' if not disp.any() else ''} in every frame, so it "
                        "carries no geometry. Check the depth file (its key with depth.npz_key, its kind with "
                        "depth.npz_kind) or the depth model.")
    if flat:
        msg = f"{where}: the disparity is constant in frames {flat[:5]}{'…' if len(flat) > 5 else ''} (no geometry)."
        if not repair:
            raise UserError(msg + " Fix the depth source, or set depth.repair_invalid: true to give those frames the "
                                  "nearest valid frame's disparity.")
        log.warning("%s Using the nearest valid frame's disparity (depth.repair_invalid).", msg)
        disp = disp.copy()
        valid = [t for t in range(len(disp)) if t not in flat]
        for t in flat:
            disp[t] = disp[min(valid, key=lambda v, t=t: abs(v - t))]
    return disp


def _inputs(video: VideoSpec, aux: Path | None) -> dict[str, str]:
    return input_hashes({"video": video.path, **({"depth_source": aux} if aux and aux.is_file() else {})})


def _depth_item(cfg: Config, estimator, quiet: bool, folder: Path, *, video: VideoSpec,
                aux: Path | None) -> tuple[list[str], dict]:
    """Depth of one video at the warp size: estimated or imported disparity mapped to depth, or imported depth."""
    log = get_logger()
    d = cfg.depth
    clip = read_clip(video.path, _selection(cfg), cfg.warp_hw(video), cfg.camera.resize, log)
    where = f"depth of video '{video.name}' ({aux or d.model})"
    value_range = None  # estimated disparity: its own frames are the whole "file"
    if d.backend == "depth_anything":
        disp, kind = estimator.get().disparity(clip.frames, d.batch_size, progress=not quiet), "disparity"
    else:
        disp, value_range = _load_array(aux, d.npz_key, video.path, _selection(cfg), cfg.warp_hw(video),
                                            cfg.camera.resize)
        kind = "depth" if d.backend == "ground_truth" else d.npz_kind
    if kind == "disparity":
        disp = validate_disparity(disp, where, d.repair_invalid, log)
        depth = depth_from_disparity(disp, d.mapping, d.near, d.far, d.stabilize, d.ema, value_range)
    else:
        depth = disp
    depth = validate_depth(depth, where, d.repair_invalid, log)
    save_npz(folder / "depth.npz", depth=depth.astype(np.float32))
    write_video(folder / "depth.mp4", colorize_depth(depth), clip.fps)
    return ["depth.npz", "depth.mp4"], {"fps": clip.fps, "source_size": list(clip.source_size),
                                        "depth_range": [float(depth.min()), float(depth.max())]}


def _body(cfg: Config, args) -> int:
    log = get_logger()
    videos, _ = select(cfg, args.only_video, None)
    state = process_state()
    require(needed_models(cfg, (STAGE,)))  # before any item: a missing model fails fast
    runner = StageRunner(STAGE, cfg.work_dir, args.force, log, state)
    estimator = depth_model(cfg, state)
    for v in videos:
        aux = depth_source(cfg, v.path)
        try:
            depends = depth_depends(cfg, v)  # its size: the video's own with `camera.height: auto`
        except UserError as exc:  # unreadable video, or an `auto` the model's configs must decide
            runner.fail(f"video={v.name}", exc)
            continue
        runner.run(f"video={v.name}", depth_dir(cfg.work_dir, v.name), depends, partial(_inputs, v, aux),
                   partial(_depth_item, cfg, estimator, args.quiet, video=v, aux=aux))
    return runner.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())


