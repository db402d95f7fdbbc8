"""Forward warping of RGB-D frames with a true z-buffer (pure tensor maths; runs on whatever device its inputs use).

Rule, per target pixel: every source pixel is unprojected with its depth, moved by `source_to_target`, projected,
and covers the target pixel centres inside an axis-aligned footprint around its projection. Of all source pixels
covering a target pixel, the one with the smallest target depth wins (z-buffer, no blending across surfaces).

Footprint: a source pixel's footprint is the local magnification of the warp, measured from the projected
distance to its grid neighbours on the same surface (the larger of the two per axis; neighbours whose source depth
differs by more than `edge_tolerance` relative are another surface and are ignored), clamped to [1, max_footprint]
pixels per axis. A footprint of 1 covers exactly the one pixel whose centre is nearest, so the identity warp is
exact; zooming in grows the footprint, so the surface stays closed without pinholes, while depth edges never
smear into disocclusions.

Pixel centres: pixel (row i, column j) has image coordinates (u, v) = (j + 0.5, i + 0.5).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class SplatResult(NamedTuple):
    image: torch.Tensor  # [B, C, H, W], same dtype as the input colours; 0 where not visible
    visible: torch.Tensor  # [B, H, W] bool: some source surface lands on the pixel
    depth: torch.Tensor  # [B, H, W] float32 target z-depth of the winning surface; 0 where not visible


def _magnification(coord: torch.Tensor, depth: torch.Tensor, dim: int, edge_tolerance: float) -> torch.Tensor:
    """Projected spacing between grid neighbours along `dim` ([B, H, W] inputs), ignoring depth edges."""
    inf = torch.full_like(coord, float("inf"))
    d_coord = (coord.diff(dim=dim)).abs()
    d_rel = (depth.diff(dim=dim)).abs() / torch.minimum(depth.narrow(dim, 0, depth.shape[dim] - 1),
                                                         depth.narrow(dim, 1, depth.shape[dim] - 1))
    step = torch.where(d_rel <= edge_tolerance, d_coord, inf.narrow(dim, 0, coord.shape[dim] - 1))
    pad = inf.narrow(dim, 0, 1)
    forward = torch.cat([step, pad], dim=dim)
    backward = torch.cat([pad, step], dim=dim)
    # Both neighbours on the surface: the larger spacing closes every gap; one neighbour: its spacing; none: 1.
    both = torch.isfinite(forward) & torch.isfinite(backward)
    m = torch.where(both, torch.maximum(forward, backward), torch.minimum(forward, backward))
    return torch.where(torch.isfinite(m), m, torch.ones_like(m))


def warp_frames(colors: torch.Tensor, depth: torch.Tensor, K: torch.Tensor, source_to_target: torch.Tensor,
                max_footprint: int = 4, edge_tolerance: float = 0.05) -> SplatResult:
    """Warp a batch of frames into target cameras.

    Args:
        colors: [B, C, H, W] float, any range (returned unchanged on visible pixels).
        depth: [B, H, W] float, source z-depth > 0 (larger = farther), same units as the translations.
        K: [3, 3] or [B, 3, 3] float intrinsics in pixels (shared by source and target).
        source_to_target: [B, 4, 4] float rigid transforms, source camera frame → target camera frame (OpenCV axes).
        max_footprint: largest footprint side in pixels (≥ 1).
        edge_tolerance: relative depth jump above which grid neighbours count as different surfaces.
    """
    B, C, H, W = colors.shape
    dev = colors.device
    f32 = torch.float32
    K = K.to(dev, f32).expand(B, 3, 3)
    M = source_to_target.to(dev, f32)
    z = depth.to(f32)
    v, u = torch.meshgrid(torch.arange(H, device=dev, dtype=f32) + 0.5,
                          torch.arange(W, device=dev, dtype=f32) + 0.5, indexing="ij")
    fx, fy = K[:, 0, 0].view(B, 1, 1), K[:, 1, 1].view(B, 1, 1)
    cx, cy = K[:, 0, 2].view(B, 1, 1), K[:, 1, 2].view(B, 1, 1)
    x = (u - cx) / fx * z
    y = (v - cy) / fy * z
    R, t = M[:, :3, :3], M[:, :3, 3]

    def comp(i: int) -> torch.Tensor:
        return R[:, i, 0].view(B, 1, 1) * x + R[:, i, 1].view(B, 1, 1) * y + R[:, i, 2].view(B, 1, 1) * z \
            + t[:, i].view(B, 1, 1)

    zt = comp(2)
    in_front = zt > 1e-6
    inv_z = torch.where(in_front, 1.0 / zt.clamp_min(1e-6), torch.zeros_like(zt))
    ut = fx * comp(0) * inv_z + cx
    vt = fy * comp(1) * inv_z + cy

    sx = _magnification(ut, z, 2, edge_tolerance).clamp(1.0, float(max_footprint))
    sy = _magnification(vt, z, 1, edge_tolerance).clamp(1.0, float(max_footprint))
    # Covered pixel columns j satisfy j + 0.5 ∈ [ut − sx/2, ut + sx/2): j ∈ [ceil(ut − sx/2 − 0.5), ... + n_x).
    j0 = torch.ceil(ut - sx / 2 - 0.5)
    i0 = torch.ceil(vt - sy / 2 - 0.5)
    nx = (torch.ceil(ut + sx / 2 - 0.5) - j0).clamp(1, max_footprint + 1)
    ny = (torch.ceil(vt + sy / 2 - 0.5) - i0).clamp(1, max_footprint + 1)

    # Z-buffer key: positive float32 bit patterns sort like the floats, so (depth bits << 32 | source index) has
    # its minimum at the nearest surface; ties resolve to the lowest source index, so results are deterministic.
    src_index = torch.arange(B * H * W, device=dev, dtype=torch.int64).view(B, H, W)
    zbits = zt.contiguous().view(torch.int32).to(torch.int64)
    key = (zbits << 32) | src_index
    batch_base = (torch.arange(B, device=dev, dtype=torch.int64) * (H * W)).view(B, 1, 1)

    keys, targets = [], []
    single = in_front & (nx == 1) & (ny == 1)
    multi = in_front & ~single
    for mask, n_off in ((single, 1), (multi, int(max_footprint) + 1)):
        if not bool(mask.any()):
            continue
        k_sel, j_sel, i_sel = key[mask], j0[mask], i0[mask]
        base = batch_base.expand(B, H, W)[mask]
        nx_sel, ny_sel = nx[mask], ny[mask]
        for dy in range(n_off):
            for dx in range(n_off):
                jj, ii = j_sel + dx, i_sel + dy
                ok = (jj >= 0) & (jj < W) & (ii >= 0) & (ii < H)
                if n_off > 1:
                    ok &= (dx < nx_sel) & (dy < ny_sel)
                keys.append(k_sel[ok])
                targets.append(base[ok] + ii[ok].to(torch.int64) * W + jj[ok].to(torch.int64))
    all_keys = torch.cat(keys) if keys else torch.empty(0, dtype=torch.int64, device=dev)
    all_targets = torch.cat(targets) if targets else torch.empty(0, dtype=torch.int64, device=dev)

    sentinel = torch.iinfo(torch.int64).max
    best = torch.full((B * H * W,), sentinel, dtype=torch.int64, device=dev)
    best.scatter_reduce_(0, all_targets, all_keys, reduce="amin", include_self=True)
    visible = best != sentinel
    winner = torch.where(visible, best & 0xFFFFFFFF, torch.zeros_like(best))
    flat_colors = colors.permute(0, 2, 3, 1).reshape(B * H * W, C)
    image = flat_colors[winner] * visible.unsqueeze(1).to(colors.dtype)
    out_depth = torch.where(visible, zt.reshape(-1)[winner], torch.zeros((), device=dev))
    return SplatResult(image.view(B, H, W, C).permute(0, 3, 1, 2).contiguous(), visible.view(B, H, W),
                       out_depth.view(B, H, W))
