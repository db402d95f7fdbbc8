"""Forward warping of RGB-D frames into target cameras (pure tensor maths; runs on whatever device its inputs use).

Two rules side by side behind `warp_frames(..., mode=)` (`warp.splat`), same inputs and outputs:

`zbuffer` (default) — a true z-buffer over the source depth map seen as a surface:
- Points: every source pixel is unprojected with its depth, moved by `source_to_target`, projected, and covers the
  target pixel centres inside an axis-aligned footprint around its projection: the local magnification, measured
  from the projected distance to its grid neighbours on the same surface (neighbours whose source depth differs by
  more than `edge_tolerance` relative are another surface), clamped to [1, max_footprint] px; with no same-surface
  neighbour, the depth ratio z / z'. A footprint of 1 covers exactly the one pixel whose centre is nearest, so the
  identity warp is exact.
- Triangles: each 2×2 block of source pixels is a quad of two triangles. Quads magnified beyond `max_footprint`
  are rasterised too (colour of the nearest corner), so no surface opens up however close the camera gets. Quads
  across a depth discontinuity are rasterised as depth-only occluders that leave holes ("rubber sheets"; pushed
  back by `edge_tolerance` so they never hide their own corners): behind a near surface a far one can never show
  through gaps between its samples, e.g. the limb of a sphere seen at a grazing angle by the source.
- Back faces: where the projected quad's orientation flips, the target sees the surface from behind (its normal,
  from the depth map, faces away): those points and quads still occlude, but are holes.
Of all candidates covering a target pixel, the nearest wins; no blending across surfaces.

`reference` — the official code's soft splat, written from its description: each point goes to the 4 pixels around
its projection with bilinear weights times exp(−50·ℓ/ℓ_max), ℓ = log(1 + min(z', 1000)) and ℓ_max its maximum
over the frame, so nearer points dominate; colour = Σ w·c / Σ w, visible = Σ w > 0.

Pixel centres: pixel (row i, column j) has image coordinates (u, v) = (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import sys
from typing import NamedTuple

import torch

SPLATS = ("zbuffer", "reference")
# Pixel indices are formed in float32 (cheaper) while they are exact there, i.e. below 2^24; else in int64.
FLOAT_INDEX_LIMIT = 2**24
# z-buffer key: float32 depth bits << 32 | HOLE | source index (< 2^31). Holes win the depth test but show nothing.
HOLE = 1 << 31


class SplatResult(NamedTuple):
    image: torch.Tensor  # [B, C, H, W], same dtype as the input colours; 0 where not visible
    visible: torch.Tensor  # [B, H, W] bool: some source surface lands on the pixel and faces the camera
    depth: torch.Tensor | None  # [B, H, W] float32 target z-depth of the winner; 0 where not visible


class _Projection(NamedTuple):
    u: torch.Tensor  # [B, H, W] target column coordinate of each source pixel
    v: torch.Tensor  # [B, H, W] target row coordinate
    z: torch.Tensor  # [B, H, W] target depth
    inv_z: torch.Tensor  # [B, H, W] 1 / target depth (0 behind the camera)
    in_front: torch.Tensor  # [B, H, W] bool


def _project(depth: torch.Tensor, K: torch.Tensor, source_to_target: torch.Tensor) -> _Projection:
    B, H, W = depth.shape
    dev, f32 = depth.device, torch.float32
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
    return _Projection(fx * comp(0) * inv_z + cx, fy * comp(1) * inv_z + cy, zt, inv_z, in_front)


def warp_frames(colors: torch.Tensor, depth: torch.Tensor, K: torch.Tensor, source_to_target: torch.Tensor,
                max_footprint: int = 4, edge_tolerance: float = 0.05, return_depth: bool = True,
                mode: str = "zbuffer") -> SplatResult:
    """Warp a batch of frames into target cameras (see the module docstring for the two `mode`s).

    Args:
        colors: [B, C, H, W] any dtype (e.g. uint8 0–255 or float). `zbuffer` copies source colours unchanged;
            `reference` blends them (rounded back for integer dtypes).
        depth: [B, H, W] float, source z-depth > 0 (larger = farther), same units as the translations.
        K: [3, 3] or [B, 3, 3] float intrinsics in pixels (shared by source and target).
        source_to_target: [B, 4, 4] float rigid transforms, source camera frame → target camera frame (OpenCV axes).
        max_footprint: `zbuffer`: largest point footprint side in pixels (≥ 1); larger magnifications are
            rasterised as triangles.
        edge_tolerance: `zbuffer`: relative depth jump above which grid neighbours count as different surfaces.
        return_depth: also return the target depth (skip to save time).
        mode: `zbuffer` or `reference`.
    """
    if mode == "zbuffer":
        return _zbuffer(colors, depth, K, source_to_target, max_footprint, edge_tolerance, return_depth)
    if mode == "reference":
        return _soft_splat(colors, depth, K, source_to_target, return_depth)
    raise ValueError(f"unknown splat mode {mode!r}; one of {SPLATS}")


# ------------------------------------------------------------------------------------------------ reference splat
def _soft_splat(colors: torch.Tensor, depth: torch.Tensor, K: torch.Tensor, source_to_target: torch.Tensor,
                return_depth: bool) -> SplatResult:
    B, C, H, W = colors.shape
    N = B * H * W
    dev, f32 = colors.device, torch.float32
    p = _project(depth, K, source_to_target)
    # ℓ normalised by its maximum over each frame's points in front of the camera
    ell = torch.log1p(p.z.clamp(0.0, 1000.0))
    ell_max = ell.masked_fill(~p.in_front, 0.0).flatten(1).amax(1).clamp_min(1e-12).view(B, 1, 1)
    w_depth = torch.exp(-50.0 * ell / ell_max).masked_fill_(~p.in_front, 0.0)  # behind the camera: no weight
    uu, vv = p.u - 0.5, p.v - 0.5  # pixel-index space: pixel j sits at j
    # Projections within 1e-3 px of a pixel centre snap to it: float rounding would otherwise hand a neighbour a
    # 1e-7 bilinear share, which the depth weight can magnify by orders of magnitude (the identity warp is exact).
    for c in (uu, vv):
        r = c.round()
        torch.where((c - r).abs() < 1e-3, r, c, out=c)
    j0, i0 = uu.floor(), vv.floor()
    fx, fy = uu - j0, vv - i0
    base = (torch.arange(B, device=dev, dtype=torch.int64) * (H * W)).view(B, 1, 1)
    # each corner's flat target index (N = off-image dump slot) and weight
    corners = []
    for dj, di, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        jj, ii = j0 + dj, i0 + di
        inside = (jj >= 0) & (jj < W) & (ii >= 0) & (ii < H)
        flat = base + ii.clamp(0, H - 1).to(torch.int64) * W + jj.clamp(0, W - 1).to(torch.int64)
        corners.append((flat.masked_fill_(~inside, N).reshape(-1), w.mul_(w_depth).reshape(-1)))

    def splat_sum(values: torch.Tensor | None) -> torch.Tensor:  # Σ weight·value per target pixel, float32 [N]
        acc = torch.zeros(N + 1, device=dev, dtype=f32)
        for idx, wgt in corners:
            acc.scatter_add_(0, idx, wgt if values is None else wgt * values)
        return acc[:N]

    weight = splat_sum(None)
    visible = weight > 0
    norm = 1.0 / weight.clamp_min(1e-38)
    flat_colors = colors.permute(0, 2, 3, 1).reshape(N, C).to(f32)
    mean = torch.stack([splat_sum(flat_colors[:, c].contiguous()) * norm for c in range(C)], 1)
    image = mean.round_() if not colors.dtype.is_floating_point else mean
    image = image.masked_fill_(~visible.unsqueeze(1), 0).to(colors.dtype)
    out_depth = None
    if return_depth:
        out_depth = (splat_sum(p.z.reshape(-1)) * norm).masked_fill_(~visible, 0.0).view(B, H, W)
    return SplatResult(image.view(B, H, W, C).permute(0, 3, 1, 2), visible.view(B, H, W), out_depth)


# ------------------------------------------------------------------------------------------------ z-buffer splat
class _Neighbours(NamedTuple):
    du: torch.Tensor  # signed change of u to the next pixel along the axis (one shorter on that axis)
    dv: torch.Tensor
    edge: torch.Tensor  # bool: the two pixels are different surfaces (or one is behind the camera)


def _neighbours(p: _Projection, z: torch.Tensor, dim: int, edge_tolerance: float) -> _Neighbours:
    n = z.shape[dim]
    za, zb = z.narrow(dim, 0, n - 1), z.narrow(dim, 1, n - 1)
    edge = (za - zb).abs_() > edge_tolerance * torch.minimum(za, zb)
    edge |= ~(p.in_front.narrow(dim, 0, n - 1) & p.in_front.narrow(dim, 1, n - 1))
    return _Neighbours(p.u.diff(dim=dim), p.v.diff(dim=dim), edge)


def _spacing(step: torch.Tensor, edge: torch.Tensor, dim: int, like: torch.Tensor) -> torch.Tensor:
    """Per pixel, the larger |step| to its two grid neighbours along `dim` on the same surface (0 if none)."""
    n = like.shape[dim]
    step = step.abs().masked_fill_(edge, 0.0)
    m = torch.zeros_like(like)
    m.narrow(dim, 0, n - 1).copy_(step)
    back = m.narrow(dim, 1, n - 1)
    torch.maximum(back, step, out=back)
    return m


def _raster_quads(u: torch.Tensor, v: torch.Tensor, attrs: torch.Tensor, H: int, W: int
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scan conversion of quads (corners in polygon order) with attributes interpolated over them.

    u, v: float32 [Q, 4] target pixel coordinates of the corners; attrs: float32 [Q, 4, A], affine in screen space
    (e.g. 1/z). Returns (row [K], col [K], quad [K]) int64 and attributes [K, A] for every pixel centre on or inside
    a quad, within the H×W image.

    Each quad is cut at its corners' sorted v levels into 3 bands; inside a band the span is bounded by one left and
    one right edge (the outermost edges crossing the band's middle), so every row costs a few multiply-adds and the
    total work is proportional to the rows and pixels covered, not to bounding boxes.
    """
    dev = u.device
    Q, A = u.shape[0], attrs.shape[-1]
    if Q == 0:
        empty = torch.empty(0, dtype=torch.int64, device=dev)
        return empty, empty, empty, torch.empty(0, A, device=dev)
    ua, va, aa = u, v, attrs
    ub, vb, ab = u.roll(-1, 1), v.roll(-1, 1), attrs.roll(-1, 1)
    dv = vb - va
    inv = 1.0 / torch.where(dv.abs() < 1e-6, torch.ones_like(dv), dv)
    su, sa = (ub - ua) * inv, (ab - aa) * inv.unsqueeze(-1)  # d/dv of u and of the attributes along each edge
    e_lo, e_hi = torch.minimum(va, vb), torch.maximum(va, vb)
    levels = v.sort(1).values  # [Q, 4]
    top, bot = levels[:, :-1], levels[:, 1:]  # [Q, 3] bands
    mid = 0.5 * (top + bot)
    # edges crossing each band's middle (a nearly horizontal edge spans no band of positive height)
    spans = (e_lo.unsqueeze(1) <= mid.unsqueeze(2)) & (mid.unsqueeze(2) <= e_hi.unsqueeze(1)) & \
        (dv.abs() >= 1e-6).unsqueeze(1)  # [Q, 3, 4]
    x_mid = ua.unsqueeze(1) + (mid.unsqueeze(2) - va.unsqueeze(1)) * su.unsqueeze(1)
    left = torch.where(spans, x_mid, float("inf")).argmin(2)  # [Q, 3]
    right = torch.where(spans, x_mid, float("-inf")).argmax(2)
    valid = spans.any(2)

    def edge_line(i: torch.Tensor) -> torch.Tensor:  # u and attrs at the band top and their d/dv: [Q, 3, 2 + 2A]
        g = i.unsqueeze(-1)
        u0 = ua.gather(1, i) + (top - va.gather(1, i)) * su.gather(1, i)
        s_u = su.gather(1, i)
        a_e = aa.gather(1, g.expand(-1, -1, A)) + (top - va.gather(1, i)).unsqueeze(-1) * sa.gather(
            1, g.expand(-1, -1, A))
        return torch.cat([u0.unsqueeze(-1), s_u.unsqueeze(-1), a_e, sa.gather(1, g.expand(-1, -1, A))], -1)

    # rows of band k: centre v in [top, bot) (the last band also takes its bottom level)
    r0 = torch.ceil(top - 0.5).clamp_(min=0)
    last = torch.zeros_like(top, dtype=torch.bool)
    last[:, -1] = True
    r1 = torch.where(last, torch.floor(bot - 0.5), torch.ceil(bot - 0.5) - 1).clamp_(max=H - 1)
    nr = torch.where(valid, r1 - r0 + 1, torch.zeros_like(r0)).clamp_(min=0).to(torch.int64).reshape(-1)
    band = torch.cat([top.unsqueeze(-1), r0.unsqueeze(-1), edge_line(left), edge_line(right)], -1).reshape(
        3 * Q, -1)  # per band: top, first row, left line, right line
    b = torch.repeat_interleave(torch.arange(3 * Q, device=dev), nr)
    bd = band.index_select(0, b)
    first = (torch.cumsum(nr, 0) - nr).index_select(0, b)
    row_f = bd[:, 1] + (torch.arange(b.numel(), device=dev) - first).to(torch.float32)
    dvc = row_f + 0.5 - bd[:, 0]
    L, R = 2, 4 + 2 * A
    x_lo = bd[:, L] + dvc * bd[:, L + 1]
    x_hi = bd[:, R] + dvc * bd[:, R + 1]
    a_lo = bd[:, L + 2:L + 2 + A] + dvc.unsqueeze(1) * bd[:, L + 2 + A:L + 2 + 2 * A]
    a_hi = bd[:, R + 2:R + 2 + A] + dvc.unsqueeze(1) * bd[:, R + 2 + A:R + 2 + 2 * A]
    c0 = torch.ceil(x_lo - 0.5).clamp_(min=0)
    nc = (torch.floor(x_hi - 0.5).clamp_(max=W - 1) - c0 + 1).clamp_(min=0).to(torch.int64)
    width = x_hi - x_lo
    per_row = torch.cat([row_f.unsqueeze(1), c0.unsqueeze(1), x_lo.unsqueeze(1),
                         (1.0 / torch.where(width > 0, width, torch.ones_like(width))).unsqueeze(1), a_lo,
                         a_hi - a_lo], 1)
    pair = torch.repeat_interleave(torch.arange(b.numel(), device=dev), nc)
    pr = per_row.index_select(0, pair)
    offset = torch.arange(pair.numel(), device=dev) - (torch.cumsum(nc, 0) - nc).index_select(0, pair)
    col = pr[:, 1].to(torch.int64) + offset
    t = ((col.to(torch.float32) + 0.5 - pr[:, 2]) * pr[:, 3]).clamp_(0.0, 1.0)
    a = torch.addcmul(pr[:, 4:4 + A], t.unsqueeze(1), pr[:, 4 + A:4 + 2 * A])
    return pr[:, 0].to(torch.int64), col, (b // 3).index_select(0, pair), a


class _QuadPixels(NamedTuple):
    target: torch.Tensor  # [K] int64 flat target pixel
    depth: torch.Tensor  # [K] float32 perspective-correct target depth
    nearest: torch.Tensor | None  # [K] int64 flat source index of the nearest corner (None for hole quads)


def _quad_pixels(p: _Projection, quads: torch.Tensor, H: int, W: int, nearest: bool) -> _QuadPixels:
    """Rasterise source quads (flat index of their top-left source pixel, [Q] int64) into the target image.
    Depth is perspective-correct (1/z is affine in screen space over a plane); `nearest` also names the corner
    nearest to each covered pixel centre."""
    HW = H * W
    corners = torch.stack([quads, quads + 1, quads + W + 1, quads + W], 1)  # 00, 01, 11, 10: polygon order
    u, v = p.u.reshape(-1)[corners], p.v.reshape(-1)[corners]
    # most magnified quads are slivers whose bounding box holds no pixel centre: drop them before scan conversion
    u_lo, u_hi, v_lo, v_hi = u.amin(1), u.amax(1), v.amin(1), v.amax(1)
    keep = ((torch.ceil(u_lo - 0.5).clamp_(min=0) <= torch.floor(u_hi - 0.5).clamp_(max=W - 1))
            & (torch.ceil(v_lo - 0.5).clamp_(min=0) <= torch.floor(v_hi - 0.5).clamp_(max=H - 1))).nonzero().squeeze(1)
    quads, corners, u, v = quads[keep], corners[keep], u[keep], v[keep]
    u_lo, u_hi, v_lo, v_hi = u_lo[keep], u_hi[keep], v_lo[keep], v_hi[keep]
    attrs = [p.inv_z.reshape(-1)[corners]]
    if nearest:  # source column and row offsets of the corners, to find the nearest one
        attrs += [torch.tensor([0.0, 1.0, 1.0, 0.0], device=u.device).expand_as(u),
                  torch.tensor([0.0, 0.0, 1.0, 1.0], device=u.device).expand_as(u)]
    attrs = torch.stack(attrs, -1)
    # Scanlines run along each quad's longer side (tall quads are rasterised transposed): one span per row of a
    # thin vertical sheet would cost a row per pixel.
    tall = (v_hi - v_lo) > (u_hi - u_lo)
    wide_idx, tall_idx = (~tall).nonzero().squeeze(1), tall.nonzero().squeeze(1)
    r1, c1, q1, a1 = _raster_quads(u[wide_idx], v[wide_idx], attrs[wide_idx], H, W)
    c2, r2, q2, a2 = _raster_quads(v[tall_idx], u[tall_idx], attrs[tall_idx], W, H)
    q = torch.cat([wide_idx[q1], tall_idx[q2]])
    a = torch.cat([a1, a2])
    src = quads[q]
    target = torch.cat([r1, r2]) * W + torch.cat([c1, c2])
    if H * W < p.u.numel():  # several frames: add each quad's frame offset
        target += src // HW * HW
    corner = src + a[:, 1].round().to(torch.int64) + a[:, 2].round().to(torch.int64) * W if nearest else None
    return _QuadPixels(target, 1.0 / a[:, 0].clamp_min(1e-12), corner)


def _zbuffer(colors: torch.Tensor, depth: torch.Tensor, K: torch.Tensor, source_to_target: torch.Tensor,
             max_footprint: int, edge_tolerance: float, return_depth: bool) -> SplatResult:
    B, C, H, W = colors.shape
    N = B * H * W  # pixels in the flat buffer
    if N >= HOLE:
        raise ValueError(f"at most {HOLE - 1} pixels per warp call (got {N}); warp fewer frames at once")
    dev = colors.device
    z = depth.to(torch.float32)
    p = _project(z, K, source_to_target)
    cols, rows = _neighbours(p, z, 2, edge_tolerance), _neighbours(p, z, 1, edge_tolerance)

    # Quads (top-left pixel (i, j), i < H − 1, j < W − 1): continuous ones keep their orientation unless seen from
    # behind; in the source image it is positive (x right, y down: cross((1, 0), (0, 1)) = 1).
    q_edge = cols.edge[:, :-1] | cols.edge[:, 1:] | rows.edge[:, :, :-1] | rows.edge[:, :, 1:]
    cross = cols.du[:, :-1] * rows.dv[:, :, :-1] - cols.dv[:, :-1] * rows.du[:, :, :-1]
    back = (cross < 0) & ~q_edge
    big = ~q_edge & (((cols.du[:, :-1].abs() + rows.du[:, :, :-1].abs()) > max_footprint)
                     | ((cols.dv[:, :-1].abs() + rows.dv[:, :, :-1].abs()) > max_footprint))
    in_front_quad = p.in_front[:, :-1, :-1] & p.in_front[:, 1:, 1:] & p.in_front[:, :-1, 1:] & p.in_front[:, 1:, :-1]
    sheet = q_edge & in_front_quad

    # Axis-aligned extent of the projected pixel: |∂u/∂column| + |∂u/∂row| (and likewise for v), so sheared and
    # rotated footprints stay closed, not just stretched ones. Isolated pixels (no same-surface neighbour, e.g. thin
    # silhouettes) fall back to the depth ratio z / z', the exact magnification of a fronto-parallel patch.
    ratio = z * p.inv_z
    sx = _spacing(cols.du, cols.edge, 2, z).add_(_spacing(rows.du, rows.edge, 1, z))
    sy = _spacing(rows.dv, rows.edge, 1, z).add_(_spacing(cols.dv, cols.edge, 2, z))
    sx = torch.where(sx > 0, sx, ratio).clamp_(1.0, float(max_footprint))
    sy = torch.where(sy > 0, sy, ratio).clamp_(1.0, float(max_footprint))
    # Covered pixel columns j satisfy j + 0.5 ∈ [u − sx/2, u + sx/2): j ∈ [ceil(u − sx/2 − 0.5), ... + n_x).
    ut, vt = p.u - 0.5, p.v - 0.5
    sx.mul_(0.5)
    sy.mul_(0.5)
    j0 = torch.sub(ut, sx).ceil_()
    i0 = torch.sub(vt, sy).ceil_()
    nx = ut.add_(sx).ceil_().sub_(j0).clamp_(1, max_footprint + 1)
    ny = vt.add_(sy).ceil_().sub_(i0).clamp_(1, max_footprint + 1)

    # Point key: (depth bits << 32 | HOLE if seen from behind | source index). Positive float32 bit patterns sort
    # like the floats, so the minimum is the nearest surface; ties go to visible points, then to the lowest index.
    # A point is seen from behind when a continuous quad within one quad of it is: besides its own 4 quads this
    # reaches points whose own quads all straddle depth edges (silhouette pixels), which have no orientation.
    back_pt = torch.zeros_like(p.in_front)
    any_back = bool(back.any())
    if any_back:
        back_pt[:, :-1, :-1] = back
        back_pt[:, 1:, :] |= back_pt[:, :-1, :].clone()
        back_pt[:, :, 1:] |= back_pt[:, :, :-1].clone()
        grown = back_pt.clone()
        grown[:, 1:] |= back_pt[:, :-1]
        grown[:, :-1] |= back_pt[:, 1:]
        back_pt = grown.clone()
        back_pt[:, :, 1:] |= grown[:, :, :-1]
        back_pt[:, :, :-1] |= grown[:, :, 1:]
    key = p.z.contiguous().view(torch.int32).to(torch.int64)
    key.bitwise_left_shift_(32).bitwise_or_(torch.arange(N, device=dev, dtype=torch.int64).view(B, H, W))
    if any_back:
        key.bitwise_or_(back_pt.to(torch.int64) * HOLE)
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
    multi = (((nx > 1) | (ny > 1)) & p.in_front).reshape(-1).nonzero().squeeze(1)
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
    # Quads: too magnified for a footprint (colour; depth-only holes if seen from behind), and rubber sheets across
    # depth discontinuities (depth-only holes, pushed back by edge_tolerance so their own corners win).
    quad_base = batch_base[:, :, :1] + torch.arange(H - 1, device=dev).view(1, -1, 1) * W \
        + torch.arange(W - 1, device=dev).view(1, 1, -1)
    colour_quads = _quad_pixels(p, quad_base[big & ~back], H, W, True) if bool(big.any()) else None
    occluders = [(_quad_pixels(p, quad_base[sel], H, W, False), bias) for sel, bias in (
        (big & back, 0.0), (sheet, edge_tolerance)) if bool(sel.any())]
    if colour_quads is not None:
        total += colour_quads.target.numel()

    all_keys = torch.empty(total, dtype=torch.int64, device=dev)
    all_targets = torch.empty(total, dtype=torch.int64, device=dev)
    all_keys[:N] = flat_key
    target_index(j0.reshape(-1), i0.reshape(-1), p.in_front.reshape(-1), base_all, all_targets[:N])
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
    if colour_quads is not None:
        k = colour_quads.target.numel()
        all_targets[pos:pos + k] = colour_quads.target
        low = flat_key.index_select(0, colour_quads.nearest).bitwise_and_(0xFFFFFFFF)
        all_keys[pos:pos + k] = (colour_quads.depth.view(torch.int32).to(torch.int64) << 32) | low

    sentinel = torch.iinfo(torch.int64).max
    best = torch.full((N + 1,), sentinel, dtype=torch.int64, device=dev)
    best.scatter_reduce_(0, all_targets, all_keys, reduce="amin", include_self=True)
    best = best[:dump]
    # the two 32-bit words of each key: depth bits high, HOLE | source index low (read as views, no shifts)
    lo_word, hi_word = (0, 1) if sys.byteorder == "little" else (1, 0)
    low = best.view(torch.int32).view(N, 2)[:, lo_word]
    hidden = (best == sentinel) | (low < 0)  # the HOLE bit is the int32 sign bit
    win_depth = best.view(torch.float32).view(N, 2)[:, hi_word]
    if occluders:
        # depth-only quads: nearest occluder per pixel; a winner behind it is hidden
        occ = torch.full((N,), float("inf"), device=dev)
        for q, bias in occluders:
            occ.scatter_reduce_(0, q.target, q.depth * (1.0 + bias), reduce="amin", include_self=True)
        hidden |= occ < win_depth
    winner = low.masked_fill(hidden, 0)
    flat_colors = colors.permute(0, 2, 3, 1).reshape(N, C)
    image = flat_colors.index_select(0, winner).masked_fill_(hidden.unsqueeze(1), 0)
    out_depth = None
    if return_depth:
        out_depth = win_depth.masked_fill(hidden, 0.0).view(B, H, W)
    # channels-last memory behind a [B, C, H, W] view: callers that want frames [B, H, W, C] get them without a copy
    return SplatResult(image.view(B, H, W, C).permute(0, 3, 1, 2), ~hidden.view(B, H, W), out_depth)
