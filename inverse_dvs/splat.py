"""Forward warping of RGB-D frames with a true z-buffer (pure tensor maths; runs on whatever device its inputs use).

Rule, per target pixel: every source pixel is unprojected with its depth, moved by `source_to_target`, projected,
and covers the target pixel centres inside an axis-aligned footprint around its projection. Of all source pixels
covering a target pixel, the one with the smallest target depth wins (z-buffer, no blending across surfaces).

Footprint: a source pixel's footprint is the local magnification of the warp, measured from the projected
distance to its grid neighbours on the same surface (the larger of the two per axis; neighbours whose source depth
differs by more than `edge_tolerance` relative are another surface and are ignored; with no such neighbour, the
depth ratio z / z' of source to target depth), clamped to [1, max_footprint]
pixels per axis. A footprint of 1 covers exactly the one pixel whose centre is nearest, so the identity warp is
exact; zooming in grows the footprint, so the surface stays closed without pinholes, while depth edges never
smear into disocclusions.

Pixel centres: pixel (row i, column j) has image coordinates (u, v) = (j + 0.5, i + 0.5).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

# Pixel indices are formed in float32 (cheaper) while they are exact there, i.e. below 2^24; else in int64.
FLOAT_INDEX_LIMIT = 2**24


class SplatResult(NamedTuple):
    image: torch.Tensor  # [B, C, H, W], same dtype as the input colours; 0 where not visible
    visible: torch.Tensor  # [B, H, W] bool: some source surface lands on the pixel
    depth: torch.Tensor | None  # [B, H, W] float32 target z-depth of the winner; 0 where not visible


def _neighbour_spacing(coords: tuple[torch.Tensor, ...], depth: torch.Tensor, dim: int,
                       edge_tolerance: float) -> list[torch.Tensor]:
    """For each projected coordinate map ([B, H, W]), the change to the grid neighbours along `dim` that lie on the
    same surface: the larger of the two, the one if only one does, 0 if none."""
    n = depth.shape[dim]
    za, zb = depth.narrow(dim, 0, n - 1), depth.narrow(dim, 1, n - 1)
    edge = (za - zb).abs_() > edge_tolerance * torch.minimum(za, zb)
    out = []
    for coord in coords:
        step = coord.diff(dim=dim).abs_().masked_fill_(edge, 0.0)
        m = torch.zeros_like(coord)
        m.narrow(dim, 0, n - 1).copy_(step)
        back = m.narrow(dim, 1, n - 1)
        torch.maximum(back, step, out=back)
        out.append(m)
    return out


def warp_frames(colors: torch.Tensor, depth: torch.Tensor, K: torch.Tensor, source_to_target: torch.Tensor,
                max_footprint: int = 4, edge_tolerance: float = 0.05, return_depth: bool = True) -> SplatResult:
    """Warp a batch of frames into target cameras.

    Args:
        colors: [B, C, H, W] any dtype (e.g. uint8 0–255 or float), copied unchanged onto visible pixels.
        depth: [B, H, W] float, source z-depth > 0 (larger = farther), same units as the translations.
        K: [3, 3] or [B, 3, 3] float intrinsics in pixels (shared by source and target).
        source_to_target: [B, 4, 4] float rigid transforms, source camera frame → target camera frame (OpenCV axes).
        max_footprint: largest footprint side in pixels (≥ 1).
        edge_tolerance: relative depth jump above which grid neighbours count as different surfaces.
        return_depth: also return the winning target depth (skip to save time).
    """
    B, C, H, W = colors.shape
    N = B * H * W  # pixels in the flat buffer
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

    # Isolated pixels (no same-surface neighbour, e.g. thin silhouettes) fall back to the depth ratio z / z', the exact
    # magnification of a fronto-parallel patch, so a zoom-in does not leave them as pinholes.
    ratio = z * inv_z
    # Axis-aligned extent of the projected pixel: |∂u/∂column| + |∂u/∂row| (and likewise for v), so sheared and
    # rotated footprints stay closed, not just stretched ones.
    du_col, dv_col = _neighbour_spacing((ut, vt), z, 2, edge_tolerance)
    du_row, dv_row = _neighbour_spacing((ut, vt), z, 1, edge_tolerance)
    sx, sy = du_col.add_(du_row), dv_row.add_(dv_col)
    sx = torch.where(sx > 0, sx, ratio).clamp_(1.0, float(max_footprint))
    sy = torch.where(sy > 0, sy, ratio).clamp_(1.0, float(max_footprint))
    # Covered pixel columns j satisfy j + 0.5 ∈ [ut − sx/2, ut + sx/2): j ∈ [ceil(ut − sx/2 − 0.5), ... + n_x).
    ut.sub_(0.5)
    vt.sub_(0.5)
    sx.mul_(0.5)
    sy.mul_(0.5)
    j0 = torch.sub(ut, sx).ceil_()
    i0 = torch.sub(vt, sy).ceil_()
    nx = ut.add_(sx).ceil_().sub_(j0).clamp_(1, max_footprint + 1)  # ut, vt are not needed after this
    ny = vt.add_(sy).ceil_().sub_(i0).clamp_(1, max_footprint + 1)

    # Z-buffer key: positive float32 bit patterns sort like the floats, so (depth bits << 32 | source index) has
    # its minimum at the nearest surface; ties resolve to the lowest source index, so results are deterministic.
    key = zt.contiguous().view(torch.int32).to(torch.int64)
    key.bitwise_left_shift_(32).bitwise_or_(torch.arange(N, device=dev, dtype=torch.int64).view(B, H, W))
    batch_base = (torch.arange(B, device=dev, dtype=torch.int64) * (H * W)).view(B, 1, 1)

    # Every visible point covers its first footprint pixel (j0, i0); points with a larger footprint add the rest
    # in a second, compacted pass. Out-of-image or behind-camera candidates go to a dump slot (index B·H·W) instead
    # of being filtered out, which avoids a compaction per offset.
    dump = N
    exact = N + 1 < FLOAT_INDEX_LIMIT

    def target_index(jj: torch.Tensor, ii: torch.Tensor, ok: torch.Tensor | None, base: torch.Tensor | None,
                     out: torch.Tensor) -> None:
        """Flat buffer index of pixel (jj, ii) (float, integral values), `dump` where outside or not `ok`."""
        inside = (jj >= 0) & (jj < W) & (ii >= 0) & (ii < H)
        if ok is not None:
            inside &= ok
        if exact:
            flat = ii * W + jj
            if base is None:
                out.copy_(flat)
            else:
                torch.add(base, flat.to(torch.int64), out=out)
        else:
            torch.add(ii.to(torch.int64) * W, jj.to(torch.int64), out=out)
            if base is not None:
                out.add_(base)
        out.masked_fill_(~inside, dump)

    flat_key = key.reshape(-1)
    base_all = batch_base.expand(B, H, W).reshape(-1) if B > 1 else None  # frame offsets in the flat buffer
    # Larger footprints are handled per shape class (nx, ny), so each point visits exactly the nx·ny pixels of its
    # footprint (most moving points need 2; a few near-camera or grazing ones more). All candidates go into one
    # preallocated buffer: the first pixel of every point, then each class's other pixels.
    side = int(max_footprint) + 1
    multi = (((nx > 1) | (ny > 1)) & in_front).reshape(-1).nonzero().squeeze(1)
    multi_code = ((nx.reshape(-1)[multi] - 1) * side + (ny.reshape(-1)[multi] - 1)).to(torch.int64)
    counts = torch.bincount(multi_code, minlength=side * side).tolist()
    classes = []
    total = N
    for c, cnt in enumerate(counts):
        if cnt == 0:
            continue
        cx_n, cy_n = c // side + 1, c % side + 1
        classes.append((cx_n, cy_n, multi[(multi_code == c).nonzero().squeeze(1)]))
        total += cnt * (cx_n * cy_n - 1)
    all_keys = torch.empty(total, dtype=torch.int64, device=dev)
    all_targets = torch.empty(total, dtype=torch.int64, device=dev)
    all_keys[:N] = flat_key
    target_index(j0.reshape(-1), i0.reshape(-1), in_front.reshape(-1), base_all, all_targets[:N])
    pos = N
    for cx_n, cy_n, sel in classes:
        m, n_off = sel.numel(), cx_n * cy_n - 1
        grid = torch.arange(1, cx_n * cy_n, device=dev, dtype=torch.float32)
        dx, dy = (grid % cx_n)[:, None], (grid // cx_n).floor_()[:, None]
        j_sel, i_sel = j0.reshape(-1)[sel], i0.reshape(-1)[sel]
        all_keys[pos:pos + m * n_off].view(n_off, m).copy_(flat_key[sel].expand(n_off, m))
        target_index(j_sel + dx, i_sel + dy, None,
                     None if base_all is None else base_all[sel], all_targets[pos:pos + m * n_off].view(n_off, m))
        pos += m * n_off

    sentinel = torch.iinfo(torch.int64).max
    best = torch.full((N + 1,), sentinel, dtype=torch.int64, device=dev)
    best.scatter_reduce_(0, all_targets, all_keys, reduce="amin", include_self=True)
    best = best[:dump]
    hidden = best == sentinel
    winner = best.bitwise_and_(0xFFFFFFFF).masked_fill_(hidden, 0)
    flat_colors = colors.permute(0, 2, 3, 1).reshape(N, C)
    image = flat_colors.index_select(0, winner).masked_fill_(hidden.unsqueeze(1), 0)
    out_depth = zt.reshape(-1)[winner].masked_fill_(hidden, 0.0) if return_depth else None
    # channels-last memory behind a [B, C, H, W] view: callers that want frames [B, H, W, C] get them without a copy
    return SplatResult(image.view(B, H, W, C).permute(0, 3, 1, 2), ~hidden.view(B, H, W),
                       None if out_depth is None else out_depth.view(B, H, W))
