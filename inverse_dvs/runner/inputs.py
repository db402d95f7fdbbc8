"""Reading what an earlier stage wrote, checked: the depth stage's depth, and the scene a video is warped from."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..config import Config, VideoSpec, warp_hw
from ..infra.errors import UserError
from ..infra.layout import depth_dir
from ..infra.video_io import Clip, FrameSelection, read_clip
from ..pipeline.geometry import camera_geometry


def load_depth(path: Path, expected: tuple[int, int, int]) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"depth '{path}' is missing; run `python -m inverse_dvs.depth` first.")
    with np.load(path, allow_pickle=False) as z:
        depth = np.asarray(z["depth"], dtype=np.float32)
    if depth.shape != expected:
        raise UserError(f"depth '{path}' has shape {depth.shape} but the video gives {expected} (frames, height, "
                        "width); rerun the depth stage with the same camera settings (--force).")
    if not np.isfinite(depth).all() or (depth <= 0).any():
        raise UserError(f"depth '{path}' contains NaN/inf or values <= 0; rerun the depth stage "
                        "(or set depth.repair_invalid: true).")
    return depth


class Scene(NamedTuple):
    """What a video is warped from: its clip at the warp size, the depth stage's depth, K and the scene radius."""

    clip: Clip
    depth: np.ndarray  # [T, h, w] float32
    K: np.ndarray  # [3, 3] at the warp size
    radius: float


def load_scene(cfg: Config, video: VideoSpec) -> Scene:
    """The clip (`camera` selection at the warp size), its depth from the depth stage, intrinsics and scene radius."""
    hw = warp_hw(cfg, video)
    clip = read_clip(video.path, FrameSelection.of(cfg), hw, cfg.camera.resize)
    depth = load_depth(depth_dir(cfg.work_dir, video.name) / "depth.npz", clip.frames.shape[:3])
    return Scene(clip, depth, *camera_geometry(cfg, hw, depth[0]))


