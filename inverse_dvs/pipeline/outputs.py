"""What the pipeline's steps return (diffusers' `*PipelineOutput` style): typed, with shapes and dtypes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np


class WarpOutput(NamedTuple):
    """The warp of a clip along a trajectory (`InverseDVSPipeline.warp`)."""

    render: np.ndarray  # [T, H, W, 3] uint8 at the model size: the source frames seen from the new cameras
    visibility: np.ndarray  # [T, H, W] float32 in [0, 1] at the model size (1 = seen; fractional where resized)
    visible_warp: np.ndarray  # [T, h, w] bool at the warp size: the splat's own mask
    source_to_target: np.ndarray  # [T, 4, 4] float64: source camera frame → target camera frame (OpenCV axes)
    K: np.ndarray  # [3, 3] float64 intrinsics in pixels at the warp size h × w
    scene_radius: float  # the orbit radius ρ the trajectory's r is a fraction of
    warnings: list[str] = []  # frames hardly visible (also logged)


class Caption(NamedTuple):
    text: str  # the prompt: the caption cut at a sentence boundary to what the text encoder reads
    raw: str  # what the captioner wrote
    truncated: bool
    tokens: int  # text encoder tokens of `text`
    shown: np.ndarray  # [K, H, W, 3] uint8: the frames the captioner saw


class WindowResult(NamedTuple):
    """One window of a long clip: what `generate`'s `on_window` hook returns (computed, or read back)."""

    frames: np.ndarray  # [window frames, H, W, 3] uint8: the window's output
    record: dict[str, Any]  # window, frames [start, end), overlap, nfe, inversion_nfe, sampling_nfe, seconds, …


class Generated(NamedTuple):
    """One output of one sweep point (`InverseDVSPipeline.generate`)."""

    frames: np.ndarray  # [T, H, W, 3] uint8: the whole clip, windows stitched (T: the frames the windows cover)
    info: dict[str, Any]  # t_start, alpha_bar_t_start, sampling_steps, inversion_nfe, sampling_nfe, seconds, windows


@dataclass
class InverseDVSOutput:
    """The result of `InverseDVSPipeline.__call__`: the re-rendered clip and what it was made from."""

    frames: np.ndarray  # [T, H, W, 3] uint8: the output along the new camera path (the whole clip, windows inside)
    render: np.ndarray  # [T, H, W, 3] uint8: the warped source (holes black), at the model size
    visible: np.ndarray  # [T, H, W] float32 in [0, 1]: what the render keeps (1) and what the model invented (0)
    depth: np.ndarray  # [T, h, w] float32: the source's depth at the warp size (> 0, larger = farther)
    cameras: np.ndarray  # [T, 4, 4] float64: source_to_target per frame (OpenCV axes)
    info: dict[str, Any] = field(default_factory=dict)  # prompt, run_tag, t_start, nfe, fps, seconds per step, …

    def save(self, path: str | Path, fps: float | None = None, comparison: bool = False) -> Path:
        """Write the frames as an H.264 mp4 (atomically, as the stages write theirs) at `fps` (default: the source's,
        else 8); `comparison`: the render and the output side by side. Returns the path."""
        from ..infra.video_io import titled_side_by_side, write_video

        frames = titled_side_by_side([self.render[:len(self.frames)], self.frames], ["render", "output"]) \
            if comparison else self.frames
        write_video(path, frames, fps or self.info.get("fps") or 8.0)
        return Path(path)
