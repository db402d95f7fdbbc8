"""Stage 1 — per-frame depth of each source video → `{work_dir}/depths/{video}/depth.npz`.

Backends (`depth.backend`): `depth_anything` (Depth Anything V2 through transformers), `npz` (import precomputed
depth/disparity, e.g. Video-Depth-Anything's --save_npz output) and `ground_truth` (the demo scene's exact depth).
"depth" in depth.npz is positive z-depth, larger = farther (see README → Outputs).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .artifacts import input_hashes, save_npz
from .cli import get_logger, run_stage
from .config import Config, select
from .errors import UserError
from .layout import depth_dir
from .stabilize import depth_from_disparity
from .video_io import FrameSelection, colorize_depth, frame_indices, read_clip, resize_frames, write_video
from .workqueue import StageRunner, process_state

STAGE = "depth"


def _selection(cfg: Config) -> FrameSelection:
    c = cfg.camera
    return FrameSelection(c.num_frames, c.start, c.stride, c.pad_short)


def _depends(cfg: Config) -> dict:
    d = cfg.depth
    backend_keys = {"depth_anything": ("model",), "npz": ("npz_path", "npz_kind", "npz_key"), "ground_truth": ()}
    keys = ("backend", *backend_keys[d.backend])
    if d.backend != "ground_truth" and (d.backend == "depth_anything" or d.npz_kind == "disparity"):
        keys += ("mapping",) + (("near", "far", "stabilize", "ema") if d.mapping == "percentile" else ())
    depth = {k: getattr(d, k) for k in keys}
    camera = {k: getattr(cfg.camera, k) for k in ("num_frames", "start", "stride", "pad_short", "resize")}
    return {"depth": depth, "camera": camera, "size": list(cfg.warp_hw)}


def _aux_path(cfg: Config, video_path: str) -> Path | None:
    p = Path(video_path)
    if cfg.depth.backend == "npz":
        return Path(cfg.depth.npz_path.format(dir=p.parent, stem=p.stem, name=p.stem))
    if cfg.depth.backend == "ground_truth":
        return p.with_name(f"{p.stem}_depth.npz")
    return None


def _load_array(path: Path, key: str, video_path: str, sel: FrameSelection, hw: tuple[int, int],
                policy: str) -> np.ndarray:
    """Read a [N, h, w] depth/disparity array, pick the configured frames, resize with the shared policy."""
    import cv2

    if not path.is_file():
        raise UserError(f"depth file '{path}' for video '{video_path}' does not exist; set depth.npz_path (template "
                        "with {dir}, {stem}) or use depth.backend: depth_anything.")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            if not key:
                fallback = keys[0] if len(keys) == 1 else ""
                key = next((k for k in ("depth", "depths", "disparity") if k in keys), fallback)
            if key not in keys:
                raise UserError(f"depth file '{path}' has keys {keys}; none is 'depth'/'depths'/'disparity'. Set "
                                "depth.npz_key to the right one.")
            arr = np.asarray(z[key], dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise UserError(f"depth file '{path}' is not a readable .npz ({exc}).") from None
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise UserError(f"depth file '{path}' key '{key}' has shape {arr.shape}; expected [frames, height, width].")
    import decord

    n_video = len(decord.VideoReader(str(video_path), num_threads=1))
    if arr.shape[0] == n_video:
        arr = arr[frame_indices(n_video, sel, video_path)]
    elif arr.shape[0] != sel.num_frames:
        raise UserError(f"depth file '{path}' has {arr.shape[0]} frames, but the video '{video_path}' has {n_video} "
                        f"and camera.num_frames is {sel.num_frames}; it must have one of those counts.")
    if arr.shape[1:] != hw:
        arr = resize_frames(arr, hw, policy, cv2.INTER_NEAREST_EXACT)
    return np.ascontiguousarray(arr)


def validate_depth(depth: np.ndarray, where: str, repair: bool, log: logging.Logger) -> np.ndarray:
    """Depth must be finite and > 0 everywhere. Repair (if enabled) replaces bad pixels with the frame median."""
    bad = ~np.isfinite(depth) | (depth <= 0)
    if not bad.any():
        return depth
    frames = sorted({int(i) for i in np.nonzero(bad)[0]})
    msg = (f"{where}: {int(bad.sum())} depth values are NaN, inf or <= 0 (frames {frames[:5]}"
           f"{'…' if len(frames) > 5 else ''}).")
    if not repair:
        raise UserError(msg + " Fix the depth source, or set depth.repair_invalid: true to replace them with "
                              "each frame's median valid depth.")
    log.warning("%s Replaced with each frame's median valid depth (depth.repair_invalid).", msg)
    depth = depth.copy()
    for t in frames:
        good = depth[t][~bad[t]]
        if good.size == 0:
            raise UserError(f"{where}: frame {t} has no valid depth value at all; cannot repair.")
        depth[t][bad[t]] = np.median(good)
    return depth


class DepthAnything:
    """Depth Anything V2 through transformers; loaded once per process, batched over frames."""

    def __init__(self, model: str, device, dtype):
        import torch
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        from .weights import resolve_model

        path = resolve_model(model)
        self.torch = torch
        self.processor = AutoImageProcessor.from_pretrained(path)
        self.model = AutoModelForDepthEstimation.from_pretrained(path, dtype=dtype).to(device).eval()
        self.device, self.dtype = device, dtype

    def disparity(self, frames: np.ndarray, batch_size: int, progress: bool) -> np.ndarray:
        """frames [T, H, W, 3] uint8 → relative disparity [T, H, W] float32 (larger = nearer)."""
        from tqdm import tqdm

        torch = self.torch
        out = []
        h, w = frames.shape[1:3]
        with torch.inference_mode():
            for i in tqdm(range(0, len(frames), batch_size), desc="depth", unit="batch", disable=not progress):
                inputs = self.processor(images=list(frames[i:i + batch_size]), return_tensors="pt")
                pred = self.model(pixel_values=inputs["pixel_values"].to(self.device, self.dtype)).predicted_depth
                pred = torch.nn.functional.interpolate(pred[:, None].float(), size=(h, w), mode="bilinear",
                                                       align_corners=False)[:, 0]
                out.append(pred.cpu().numpy())
        return np.concatenate(out).astype(np.float32)


def _body(cfg: Config, args) -> int:
    from .runtime import resolve_device, torch_dtype

    log = get_logger()
    videos, _ = select(cfg, args.only_video, None)
    sel = _selection(cfg)
    hw = cfg.warp_hw  # depth lives where the warp happens
    depends = _depends(cfg)
    estimator = None
    state = process_state()
    runner = StageRunner(STAGE, cfg.work_dir, args.force, log, state)
    for v in videos:
        aux = _aux_path(cfg, v.path)

        def inputs(v=v, aux=aux) -> dict[str, str]:
            return input_hashes({"video": v.path, **({"depth_source": aux} if aux and aux.is_file() else {})})

        def compute(folder: Path, v=v, aux=aux) -> tuple[list[str], dict]:
            nonlocal estimator
            clip = read_clip(v.path, sel, hw, cfg.camera.resize)
            if cfg.depth.backend == "depth_anything":
                if estimator is None:
                    device = resolve_device(cfg.run.device, state)
                    estimator = DepthAnything(cfg.depth.model, device, torch_dtype(cfg.run.dtype, device))
                disp = estimator.disparity(clip.frames, cfg.depth.batch_size, progress=not args.quiet)
                kind = "disparity"
            else:
                disp = _load_array(aux, cfg.depth.npz_key, v.path, sel, hw, cfg.camera.resize)
                kind = "depth" if cfg.depth.backend == "ground_truth" else cfg.depth.npz_kind
            if kind == "disparity":
                d = cfg.depth
                depth = depth_from_disparity(validate_finite(disp, f"depth of video '{v.name}'"), d.mapping, d.near,
                                             d.far, d.stabilize, d.ema)
            else:
                depth = disp
            depth = validate_depth(depth, f"depth of video '{v.name}' ({aux or cfg.depth.model})",
                                   cfg.depth.repair_invalid, log)
            save_npz(folder / "depth.npz", depth=depth.astype(np.float32))
            write_video(folder / "depth.mp4", colorize_depth(depth), clip.fps)
            return ["depth.npz", "depth.mp4"], {"fps": clip.fps, "source_size": list(clip.source_size),
                                                "depth_range": [float(depth.min()), float(depth.max())]}

        runner.run(f"video={v.name}", depth_dir(cfg.work_dir, v.name), depends, inputs, compute)
    return runner.finish()


def validate_finite(disp: np.ndarray, where: str) -> np.ndarray:
    if not np.isfinite(disp).all():
        raise UserError(f"{where}: the disparity contains NaN or inf; check the depth model or the npz file.")
    return disp


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())


