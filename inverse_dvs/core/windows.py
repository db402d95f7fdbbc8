"""Long clips in overlapping windows: where each window sits, how window w's input takes over window w−1's output,
how the outputs are stitched back into one clip, and the seam figure that tells whether the hand-over shows.

A window is `window` frames (the model's clip length). Window w starts `window − overlap` frames after window w−1;
a last window that would run past the clip is aligned to its end (`last: end`, its overlap with the one before
grows) or dropped with the frames it alone would cover (`last: drop`). With `overlap` = 1 + 4m (the causal VAE's
temporal compression 4), the overlap of window w ends on a latent-frame boundary of w: its first m + 1 latent frames
come wholly from window w−1's output.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Window(NamedTuple):
    index: int
    start: int  # first clip frame
    end: int  # one past the last clip frame
    overlap: int  # leading frames shared with the window before (0 for window 0)


def plan_windows(num_frames: int, window: int, overlap: int, last: str = "end") -> list[Window]:
    """The windows of a clip of `num_frames` frames. A clip no longer than one window is one window: the whole clip,
    as a plain run. `last`: `end` or `drop` (module docstring)."""
    if last not in ("end", "drop"):
        raise ValueError(f"unknown last-window policy {last!r}; 'end' or 'drop'")
    if num_frames <= window:
        return [Window(0, 0, num_frames, 0)]
    if not 0 < overlap < window:
        raise ValueError(f"overlap must be in (0, {window}), got {overlap}")
    starts = list(range(0, num_frames - window + 1, window - overlap))
    if starts[-1] + window < num_frames and last == "end":
        starts.append(num_frames - window)
    return [Window(i, s, s + window, 0 if i == 0 else starts[i - 1] + window - s) for i, s in enumerate(starts)]


def clip_length(windows: list[Window]) -> int:
    """Frames the windows cover (the clip, or its part before the frames `last: drop` leaves out)."""
    return windows[-1].end


def hand_over(render: np.ndarray, visibility: np.ndarray, previous: np.ndarray, win: Window, prev: Window
              ) -> tuple[np.ndarray, np.ndarray]:
    """Window `win`'s model input from the whole-clip render [T, H, W, 3] uint8 and visibility [T, H, W] float, and
    the output [prev.end − prev.start, H, W, 3] uint8 of the window before: its first `win.overlap` frames are that
    output's frames at the same clip positions, marked fully visible. Frame 0 (the image condition) is so window
    w−1's output frame at `win.start`, never the render's, which has holes there."""
    frames = render[win.start:win.end].copy()
    vis = np.array(visibility[win.start:win.end], dtype=np.float32)
    offset = win.start - prev.start
    frames[:win.overlap] = previous[offset:offset + win.overlap]
    vis[:win.overlap] = 1.0
    return frames, vis


def stitch(outputs: list[np.ndarray], windows: list[Window], mode: str = "crossfade") -> np.ndarray:
    """The windows' outputs [window frames, H, W, 3] uint8 as one clip. Over each overlap, `crossfade` blends linearly
    from window w−1 (weight 1 − (i + 1)/(overlap + 1) at overlap frame i) to window w; `previous` keeps window w−1's
    frames, so window w shows from the end of the overlap on."""
    clip = np.empty((clip_length(windows), *outputs[0].shape[1:]), np.uint8)
    for win, out in zip(windows, outputs, strict=True):
        if mode == "previous" or win.overlap == 0:
            clip[win.start + win.overlap:win.end] = out[win.overlap:]
            continue
        if mode != "crossfade":
            raise ValueError(f"unknown stitch mode {mode!r}; 'crossfade' or 'previous'")
        w = (np.arange(1, win.overlap + 1, dtype=np.float32) / (win.overlap + 1))[:, None, None, None]
        before = clip[win.start:win.start + win.overlap].astype(np.float32)
        clip[win.start:win.start + win.overlap] = np.round((1 - w) * before + w * out[:win.overlap]).astype(np.uint8)
        clip[win.start + win.overlap:win.end] = out[win.overlap:]
    return clip


def frame_changes(frames: np.ndarray) -> np.ndarray:
    """Mean absolute change between consecutive frames [T, H, W, 3] uint8, in grey levels: [T − 1], entry t − 1 for
    the step from frame t − 1 to frame t."""
    f = frames.astype(np.int16)
    return np.abs(f[1:] - f[:-1]).reshape(len(f) - 1, -1).mean(1)


def seam_figure(frames: np.ndarray, windows: list[Window]) -> dict:
    """How much the stitched clip [T, H, W, 3] changes across each window boundary, against inside the windows.

    A boundary's change is the largest frame-to-frame change over the hand-over: the steps from the first frame of
    window w's overlap to the first frame only window w gives. Inside: the median of every other step. `ratio` near 1
    means the hand-over changes the picture no more than the video itself does from frame to frame; well above 1 is a
    visible seam."""
    d = frame_changes(frames)
    seam_steps = set()
    boundaries = []
    for win in windows[1:]:
        steps = range(win.start, min(win.start + win.overlap + 1, len(frames)))  # step t: frame t−1 → t
        seam_steps.update(steps)
        boundaries.append({"window": win.index, "frames": [win.start, win.start + win.overlap],
                           "change": round(float(max(d[t - 1] for t in steps)), 4)})
    inside = [float(x) for t, x in enumerate(d, start=1) if t not in seam_steps]
    median = float(np.median(inside)) if inside else float("nan")
    for b in boundaries:
        b["ratio"] = round(b["change"] / median, 3) if median > 0 else None
    return {"inside_median_change": round(median, 4), "boundaries": boundaries}
