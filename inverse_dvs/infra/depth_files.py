"""Depth or disparity imported from files (`depth.backend: npz`, `ground_truth`): read, frames selected like the
video's, resized like the video."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UserError
from .video_io import FrameSelection, frame_indices, probe_video, resize_frames


def load_depth_file(path: Path, key: str, video_path: str, sel: FrameSelection, hw: tuple[int, int],
                policy: str) -> tuple[np.ndarray, tuple[float, float]]:
    """Read a [N, h, w] depth or disparity array from an .npz (`key`, or `depth`, `depths`, `disparity`, or its only
    key), pick the frames `sel` takes from the video it belongs to (a file of the video's frame count), or take it as
    the selected frames (a file of the selected count), and resize with the shared policy (nearest: no depth is
    invented across edges). Also returns the (min, max) of the finite values of the whole file, which the `reference`
    mapping normalises over. UserError naming the file and the fix otherwise."""
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
