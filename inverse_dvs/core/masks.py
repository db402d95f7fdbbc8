"""Pixel visibility → latent-cell masks following the CogVideoX VAE's causal compression (pure functions).

The VAE maps 1 + 4·n frames to 1 + n latent frames: latent frame 0 sees pixel frame 0 alone, latent frame j ≥ 1 sees
pixel frames 4j − 3 … 4j; spatially 8× (49×480×720 → 13×60×90).

Two poolings of the visibility into one value per latent cell (`pool_visibility(..., mode)`):
- `block`: the mean visibility of the cell's own 8×8 pixel block and frame group (no overlap between cells).
- `reference`: the official code's pooling, written from its description: per latent frame group the frames are
  averaged, then three times {zero-pad right and bottom by 1 px, 3×3 average pool with stride 2}. Each cell then sees
  an overlapping 15×15 px window, and the zero padding makes the last cell row and column always < 1 (always
  "occluded"). Every step rounds to bfloat16, as the official code runs it, which rounds tiny hole fractions to 1.
A cell is occluded when its pooled visibility is below 1 − `threshold` (0: any hole pixel).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

POOLINGS = ("block", "reference")


def latent_frame_groups(num_frames: int, temporal: int = 4) -> list[range]:
    """Pixel-frame ranges per latent frame: [0], [1..4], [5..8], … for num_frames = 1 + temporal·n."""
    if (num_frames - 1) % temporal:
        raise ValueError(f"num_frames must be 1 + {temporal}·n for the causal VAE, got {num_frames}")
    n = (num_frames - 1) // temporal
    return [range(0, 1)] + [range(1 + temporal * j, 1 + temporal * (j + 1)) for j in range(n)]


def cell_fraction(mask: np.ndarray, temporal: int = 4, spatial: int = 8) -> np.ndarray:
    """Mean of `mask` over each latent cell's own block: bool/float [T, H, W] → float32 [t, h, w]."""
    T, H, W = mask.shape
    if H % spatial or W % spatial:
        raise ValueError(f"height and width must be multiples of {spatial}, got {H}×{W}")
    m = mask.astype(np.float32).reshape(T, H // spatial, spatial, W // spatial, spatial).mean(axis=(2, 4))
    return np.stack([m[list(g)].mean(0) for g in latent_frame_groups(T, temporal)]).astype(np.float32)


def _reference_pool(visibility: np.ndarray, temporal: int = 4) -> np.ndarray:
    """The official pooling: bf16 throughout, frame-pair averages (twice) then 3 × {pad 1, 3×3 avg pool, stride 2}.

    The pair averages reproduce the group means of `latent_frame_groups` (frame 0 stays alone); the spatial cascade
    has stride 8 and a 15-pixel footprint. Rounding happens after each averaging, as in a bf16 run.
    """
    import torch
    import torch.nn.functional as F

    if temporal != 4:
        raise ValueError("reference pooling models the 4× temporal compression of CogVideoX")
    groups = latent_frame_groups(visibility.shape[0], temporal)
    x = torch.from_numpy(np.ascontiguousarray(visibility, dtype=np.float32)).to(torch.bfloat16)

    def pair_mean(frames: torch.Tensor) -> torch.Tensor:  # [F, H, W] with F even → [F/2, H, W], rounded to bf16
        return F.avg_pool1d(frames.permute(1, 2, 0).flatten(0, 1)[:, None], 2, 2)[:, 0].view(
            frames.shape[1], frames.shape[2], -1).permute(2, 0, 1)

    def spatial(frames: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(frames[:, None], (0, 1, 0, 1)), kernel_size=3, stride=2)[:, 0]

    first, rest = x[:1], x[1:]
    rest = spatial(pair_mean(rest))
    first = spatial(first)
    rest = spatial(pair_mean(rest))
    first = spatial(first)
    out = spatial(torch.cat([first, rest]))
    if out.shape[0] != len(groups):
        raise AssertionError("frame grouping mismatch")
    return out.float().numpy()


def pool_visibility(visible: np.ndarray, mode: str = "block", temporal: int = 4, spatial: int = 8) -> np.ndarray:
    """Visibility per latent cell: visible bool or float [T, H, W] in [0, 1] (1 = seen) → float32 [t, h, w].

    See the module docstring for `block` and `reference`.
    """
    if mode == "block":
        return cell_fraction(np.asarray(visible, dtype=np.float32), temporal, spatial)
    if mode == "reference":
        if spatial != 8:
            raise ValueError("reference pooling models the 8× spatial compression of CogVideoX")
        return _reference_pool(np.asarray(visible, dtype=np.float32), temporal)
    raise ValueError(f"unknown visibility pooling {mode!r}; one of {POOLINGS}")


class LatentMasks(NamedTuple):
    pooled: np.ndarray  # float32 [t, h, w], visibility per cell (1 = fully seen)
    occluded: np.ndarray  # bool [t, h, w]: cells SLM fills in x0 and CFG guides (M in the paper)
    occluded_eps: np.ndarray  # bool [t, h, w] ⊆ occluded: cells the reference SLM fills in ε_inv


def latent_masks(visible: np.ndarray, mode: str = "block", threshold: float = 0.0, eps_rank: int = 1) -> LatentMasks:
    """Pool the visibility and derive both latent masks.

    visible: bool or float [T, H, W] in [0, 1]. `occluded` = pooled < 1 − threshold. `occluded_eps` (used only by the
    reference SLM, which fills ε_inv on a stricter mask than x0, as the official code does): occluded cells whose
    pooled value is at or below the `eps_rank`-th smallest distinct pooled value (0 = the smallest; the official
    setting 1 is the second smallest).
    """
    pooled = pool_visibility(visible, mode)
    occluded = pooled < 1.0 - threshold
    distinct = np.unique(pooled)
    cut = distinct[min(eps_rank, len(distinct) - 1)]
    return LatentMasks(pooled, occluded, occluded & (pooled <= cut))


def occlusion_mask(visible: np.ndarray, threshold: float = 0.0, mode: str = "block") -> np.ndarray:
    """Occluded latent cells: bool/float visibility [T, H, W] → bool [t, h, w] (pooled visibility < 1 − threshold)."""
    return latent_masks(visible, mode, threshold).occluded


def background_mask(depth: np.ndarray, threshold: float = 0.3, temporal: int = 4, spatial: int = 8) -> np.ndarray:
    """Background latent cells D from depth [T, H, W] (> 0): per-frame min–max normalised disparity below
    `threshold` marks a background pixel; a cell is background when most of its footprint is. → bool [t, h, w]."""
    disp = 1.0 / depth
    lo = disp.min(axis=(1, 2), keepdims=True)
    hi = disp.max(axis=(1, 2), keepdims=True)
    norm = (disp - lo) / np.maximum(hi - lo, 1e-12)
    return cell_fraction(norm < threshold, temporal, spatial) > 0.5
