"""Depth maths: temporal scale/shift stabilisation of relative disparity, and disparity → depth (pure functions).

Per-frame estimators such as Depth Anything output affine-invariant disparity (inverse depth up to an unknown scale
and shift per frame). Stabilisation aligns every frame to its already-aligned predecessor with a robust
least-squares scale and shift; the first frame fixes the scale of the whole video.

Mappings to depth (`depth.mapping`, `depth_from_disparity(..., mode)`):
- `percentile`: optional stabilisation, then the video's disparity percentiles 2–98 map linearly to inverse depth
  [1/far, 1/near].
- `reference` (official code): the disparity min–max normalised to n ∈ [0, 1] over the whole file it comes from
  (every frame of an imported .npz, not only the selected ones), depth = 10000 / max(3900·n, 1e-5), clipped to
  [1e-4, 1e4]; no stabilisation (the official code has none).
"""

from __future__ import annotations

import numpy as np


def fit_scale_shift(src: np.ndarray, dst: np.ndarray, iterations: int = 4, keep: float = 0.8) -> tuple[float, float]:
    """Robust (trimmed) least squares for s, b minimising |s·src + b − dst| over pixels of two [H, W] maps.

    Each iteration refits on the `keep` fraction of pixels with the smallest residuals, so moving objects (which
    break the affine relation between neighbouring frames) do not bias the fit.
    """
    x, y = src.reshape(-1).astype(np.float64), dst.reshape(-1).astype(np.float64)
    sel = np.ones(x.shape, bool)
    s, b = 1.0, 0.0
    for _ in range(iterations):
        A = np.stack([x[sel], np.ones(int(sel.sum()))], 1)
        (s, b), *_ = np.linalg.lstsq(A, y[sel], rcond=None)
        res = np.abs(s * x + b - y)
        sel = res <= np.quantile(res, keep)
    return float(s), float(b)


def stabilize_disparity(disp: np.ndarray, ema: float = 0.0) -> np.ndarray:
    """Align each frame of disparity [T, H, W] to the previous aligned frame; optional EMA (0 = off) afterwards."""
    out = np.empty_like(disp, dtype=np.float32)
    out[0] = disp[0]
    for t in range(1, disp.shape[0]):
        s, b = fit_scale_shift(disp[t], out[t - 1])
        out[t] = s * disp[t] + b
    if ema > 0:
        for t in range(1, out.shape[0]):
            out[t] = (1 - ema) * out[t] + ema * out[t - 1]
    return out


def disparity_to_depth(disp: np.ndarray, near: float, far: float, lo_pct: float = 2.0,
                       hi_pct: float = 98.0) -> np.ndarray:
    """Relative disparity [T, H, W] → positive depth [T, H, W] float32 in [near, far].

    The video's disparity percentiles (lo_pct, hi_pct) map linearly to inverse depth [1/far, 1/near]; values
    outside are clipped. One mapping for the whole video, so a stabilised sequence stays consistent.
    """
    lo, hi = np.percentile(disp, [lo_pct, hi_pct])
    norm = np.clip((disp - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    inv = 1.0 / far + norm * (1.0 / near - 1.0 / far)
    return (1.0 / inv).astype(np.float32)


REFERENCE_NEAR, REFERENCE_FAR = 1e-4, 1e4


def reference_depth(disp: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """The official mapping: disparity [T, H, W] → depth float32, n = min–max normalised disparity, the min and max
    taken over `value_range` (those of the whole file the frames were selected from), else over `disp`.

    In the official operations and their order, in the disparity's own float type (float32 as Video-Depth-Anything
    saves it; other types in float64): n = (d − lo) / (hi − lo), n·3900, values below 1e-5 set to 1e-5, 10000 / that
    (as torch computes a scalar over a tensor: the reciprocal times 10000), clipped to [1e-4, 1e4]; so float32
    disparity gives the official depth bit for bit (tests/core/test_disparity.py). A constant disparity (hi = lo, a
    division by zero there) gives the far clip."""
    dtype = disp.dtype if disp.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    d = disp.astype(dtype, copy=False)
    lo, hi = (dtype.type(v) for v in (value_range if value_range is not None else (d.min(), d.max())))
    span = hi - lo
    n = (d - lo) / span if span > 0 else np.zeros_like(d)
    scaled = n * dtype.type(3900)
    scaled[scaled < 1e-5] = dtype.type(1e-5)
    depth = np.reciprocal(scaled) * dtype.type(10000)  # torch's `10000.0 / t` is t.reciprocal() * 10000
    return np.clip(depth, dtype.type(REFERENCE_NEAR), dtype.type(REFERENCE_FAR)).astype(np.float32)


def depth_from_disparity(disp: np.ndarray, mode: str, near: float = 1.0, far: float = 20.0, stabilize: bool = True,
                         ema: float = 0.0, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Relative disparity [T, H, W] (larger = nearer) → positive depth [T, H, W] float32 with the given mapping;
    `value_range`: `reference` only, the disparity's (min, max) over the whole file it was selected from."""
    if mode == "percentile":
        return disparity_to_depth(stabilize_disparity(disp, ema) if stabilize else disp, near, far)
    if mode == "reference":
        return reference_depth(disp, value_range)
    raise ValueError(f"unknown depth mapping {mode!r}; one of ('percentile', 'reference')")
