"""Pixel masks → latent-cell masks following the CogVideoX VAE's causal compression (pure functions).

The VAE maps 1 + 4·n frames to 1 + n latent frames: latent frame 0 sees pixel frame 0 alone, latent frame j ≥ 1 sees
pixel frames 4j − 3 … 4j; spatially each latent cell is an 8×8 pixel block (49×480×720 → 13×60×90).
"""

from __future__ import annotations

import numpy as np


def latent_frame_groups(num_frames: int, temporal: int = 4) -> list[range]:
    """Pixel-frame ranges per latent frame: [0], [1..4], [5..8], … for num_frames = 1 + temporal·n."""
    if (num_frames - 1) % temporal:
        raise ValueError(f"num_frames must be 1 + {temporal}·n for the causal VAE, got {num_frames}")
    n = (num_frames - 1) // temporal
    return [range(0, 1)] + [range(1 + temporal * j, 1 + temporal * (j + 1)) for j in range(n)]


def cell_fraction(mask: np.ndarray, temporal: int = 4, spatial: int = 8) -> np.ndarray:
    """Fraction of True pixels in each latent cell's footprint: bool/float [T, H, W] → float32 [t, h, w]."""
    T, H, W = mask.shape
    if H % spatial or W % spatial:
        raise ValueError(f"height and width must be multiples of {spatial}, got {H}×{W}")
    m = mask.astype(np.float32).reshape(T, H // spatial, spatial, W // spatial, spatial).mean(axis=(2, 4))
    return np.stack([m[list(g)].mean(0) for g in latent_frame_groups(T, temporal)]).astype(np.float32)


def occlusion_mask(visible: np.ndarray, threshold: float = 0.0, temporal: int = 4, spatial: int = 8) -> np.ndarray:
    """Occluded latent cells: the fraction of invisible pixels in the footprint exceeds `threshold`.

    visible: bool [T, H, W] (True = some source surface lands there) → bool [t, h, w]. threshold 0.0 marks any cell
    with at least one hole pixel, as the paper's code does.
    """
    return cell_fraction(~visible.astype(bool), temporal, spatial) > threshold


def background_mask(depth: np.ndarray, threshold: float = 0.3, temporal: int = 4, spatial: int = 8) -> np.ndarray:
    """Background latent cells D from depth [T, H, W] (> 0): per-frame min–max normalised disparity below
    `threshold` marks a background pixel; a cell is background when most of its footprint is. → bool [t, h, w]."""
    disp = 1.0 / depth
    lo = disp.min(axis=(1, 2), keepdims=True)
    hi = disp.max(axis=(1, 2), keepdims=True)
    norm = (disp - lo) / np.maximum(hi - lo, 1e-12)
    return cell_fraction(norm < threshold, temporal, spatial) > 0.5
