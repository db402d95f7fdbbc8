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

`reference` — the official code's soft splat, written from its description: each point goes to the pixels at the
floor and the ceiling of its projection on each axis (pixel-index coordinates, pixel j at j) with the weights
1 − (x − ⌊x⌋) and 1 − (⌈x⌉ − x), times exp(−50·ℓ/ℓ_max), ℓ = log(1 + clamp(z', 0, 1000)) and ℓ_max its maximum over
the frame, so nearer points dominate; colour = Σ w·c / Σ w, visible = Σ w > 0. Two official quirks are kept on
purpose: a coordinate that is exactly an integer has ⌊x⌋ = ⌈x⌉ and deposits its weight twice on that axis (colour
only), and a point behind the camera (z' < 0) is not dropped: it projects mirrored through the centre and, with z'
clamped to 0, splats at the largest weight. There is no snapping of projections to pixel centres. Projection and
splat are computed in the official float32 operations and their order (colours blended in [−1, 1], float colours
must be in [0, 1]), so that on a CPU the render is bitwise the official one for the same depth and relative pose
(tests/core/test_splat.py); a GPU run, ours or theirs (cuBLAS, atomic adds), may round differently.

Pixel centres: pixel (row i, column j) has image coordinates (u, v) = (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import math
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
    """Points behind the camera (or at a non-finite depth) get inv_z = 0 and u = v = 0."""
    B, H, W = depth.shape
    dev, f32 = depth.device, torch.float32
    K = K.to(dev, f32).expand(B, 3, 3)
    P = K @ source_to_target.to(dev, f32)[:, :3]  # [B, 3, 4]: source camera point → homogeneous target pixel
    z = depth.to(f32)
    a = (torch.arange(W, device=dev, dtype=f32) + 0.5 - K[:, 0, 2, None]) / K[:, 0, 0, None]  # [B, W] x/z per column
    b = (torch.arange(H, device=dev, dtype=f32) + 0.5 - K[:, 1, 2, None]) / K[:, 1, 1, None]  # [B, H] y/z per row

    def comp(i: int) -> torch.Tensor:  # (P·(a·z, b·z, z, 1))_i: the ray term is a row plus a column vector
        ray = (P[:, i, 0, None] * a + P[:, i, 2, None]).view(B, 1, W) + (P[:, i, 1, None] * b).view(B, H, 1)
        return torch.addcmul(P[:, i, 3].view(B, 1, 1), ray, z)

    zt = comp(2)
    in_front = (zt > 1e-6) & (zt < float("inf"))  # in front of the camera at a finite depth
    inv_z = torch.where(in_front, zt.reciprocal(), 0.0)
    return _Projection(comp(0).mul_(inv_z), comp(1).mul_(inv_z), zt, inv_z, in_front)


def warp_frames(colors: torch.Tensor, depth: torch.Tensor, K: torch.Tensor, source_to_target: torch.Tensor,
                max_footprint: int = 4, edge_tolerance: float = 0.05, return_depth: bool = True,
                mode: str = "zbuffer") -> SplatResult:
    """Warp a batch of frames into target cameras (see the module docstring for the two `mode`s).

    Args:
        colors: [B, C, H, W] any dtype (e.g. uint8 0–255 or float). `zbuffer` copies source colours unchanged;
            `reference` blends them: uint8 read as c / 255 and rounded back, float colours in [0, 1].
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


def _any(mask: torch.Tensor) -> bool:
    """mask.any() for a bool tensor, read as bytes: on CPU many times faster than the bool reduction."""
    return mask.numel() > 0 and bool(mask.view(torch.uint8).max())


def _padded_index(j: torch.Tensor, i: torch.Tensor, pitch: int, frame: int, margin: int) -> torch.Tensor:
    """Flat int64 index [B·H·W] of pixel (row i, column j) — float [B, H, W] with integral values, inside the
    margin — in a buffer of B frames of `frame` elements each, with row pitch `pitch` and `margin` pixels before
    the first row and column."""
    origin = margin * pitch + margin
    if frame < FLOAT_INDEX_LIMIT:  # exact in float32
        flat = torch.add(j, i, alpha=pitch).add_(origin).to(torch.int64)
    else:
        flat = torch.add(j.to(torch.int64), i.to(torch.int64), alpha=pitch).add_(origin)
    if flat.shape[0] > 1:
        flat += (torch.arange(flat.shape[0], device=flat.device) * frame).view(-1, 1, 1)
    return flat.reshape(-1)


# ------------------------------------------------------------------------------------------------ reference splat
def _sum_of_products(terms: list[tuple[torch.Tensor | None, torch.Tensor]]) -> torch.Tensor:
    """Σ c·v summed left to right with every product rounded, as torch's small-matrix CPU matmul accumulates
    (0 + c₀v₀ + c₁v₁ + …). c: [B, 1, 1] per-frame coefficients (None: 1). A term whose coefficient is exactly 0 in
    every frame adds ±0 and is skipped, a coefficient exactly 1 is not multiplied: the sum is bitwise unchanged."""
    acc = None
    for c, v in terms:
        if c is not None and not _any(c != 0):
            continue
        t = v if c is None or not _any(c != 1) else v * c
        acc = t if acc is None else acc + t
    return acc if acc is not None else torch.zeros_like(terms[0][1])


def _reference_project(depth: torch.Tensor, K: torch.Tensor, source_to_target: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The official projection, in its float32 operations and their order → (x, y, z') [B, H, W] with (x, y) in
    pixel-index coordinates (pixel j at j): K in that convention (principal point − 0.5) and its inverse by
    `torch.linalg.inv`; per pixel d = K⁻¹·(j, i, 1), p = z·d, q = M·(p, 1), s = K·q (each a matrix product summed
    left to right), x = s₀ / s₂ (a division), then the flow x − j and back, (x − j) + j, which rounds too. Written out
    per component on row and column vectors where the operands allow: bitwise what the official per-pixel batched
    matmuls give on a CPU (tests/core/test_splat.py), several times faster."""
    B, H, W = depth.shape
    dev, f32 = depth.device, torch.float32
    K = K.to(dev, f32).expand(B, 3, 3).clone()
    K[:, :2, 2] -= 0.5
    K_inv = torch.linalg.inv(K.cpu()).to(dev)  # LAPACK's inverse, as the official code computes it on a CPU
    M = source_to_target.to(dev, f32)
    j = torch.arange(W, device=dev, dtype=f32).view(1, 1, W)
    i = torch.arange(H, device=dev, dtype=f32).view(1, H, 1)
    one = torch.ones(1, 1, 1, device=dev)

    def c(A: torch.Tensor, r: int, k: int) -> torch.Tensor:
        return A[:, r, k].view(B, 1, 1)

    z = depth.to(f32)
    d = [_sum_of_products([(c(K_inv, r, 0), j), (c(K_inv, r, 1), i), (c(K_inv, r, 2), one)]) for r in range(3)]
    p = [z * dr for dr in d]
    q = [_sum_of_products([(c(M, r, 0), p[0]), (c(M, r, 1), p[1]), (c(M, r, 2), p[2]), (None, c(M, r, 3))])
         for r in range(3)]
    s = [_sum_of_products([(c(K, r, 0), q[0]), (c(K, r, 1), q[1]), (c(K, r, 2), q[2])]) for r in range(3)]
    x = (s[0] / s[2]).sub_(j).add_(j)
    y = (s[1] / s[2]).sub_(i).add_(i)
    return x, y, s[2]


def _soft_splat(colors: torch.Tensor, depth: torch.Tensor, K: torch.Tensor, source_to_target: torch.Tensor,
                return_depth: bool) -> SplatResult:
    """The official soft splat in its float32 operations (so the render bytes after the reference resize and
    truncation match a CPU run of the official code): colours mapped to [−1, 1] (c·2 − 1), a buffer with a one-pixel
    margin (position o = x + 1 clamped to [0, W + 1]), corner weights (1 − (o − ⌊o⌋)) and (1 − (⌈o⌉ − o)) per axis,
    y factor times x factor, divided by exp(ℓ / ℓ_max · 50), accumulated corner by corner (⌊⌋⌊⌋, ⌈⌉y⌊⌋x, ⌊⌋y⌈⌉x,
    ⌈⌉⌈⌉) in source order, then Σ c·w / Σ w clamped to [−1, 1] and mapped back, (x + 1) / 2."""
    B, C, H, W = colors.shape
    dev, f32 = colors.device, torch.float32
    x, y, zt = _reference_project(depth, K, source_to_target)
    projected = (zt.abs() > 1e-6) & torch.isfinite(zt)
    # ℓ over each frame, with z' clamped to [0, 1000]: a point behind the camera has ℓ = 0, the largest weight
    ell = torch.where(projected, torch.log(zt.clamp(0.0, 1000.0).add_(1.0)), 0.0)
    ell_max = ell.flatten(1).amax(1).clamp_min(1e-12).view(B, 1, 1)
    w_depth = torch.exp(ell.div_(ell_max).mul_(50.0))
    # buffer coordinates (margin 1); points without a projection are parked in the margin (they weigh nothing there)
    ox = torch.where(projected, x.add_(1.0), 0.0).clamp_(0, W + 1)
    oy = torch.where(projected, y.add_(1.0), 0.0).clamp_(0, H + 1)
    fx, fy, cx, cy = ox.floor(), oy.floor(), ox.ceil(), oy.ceil()
    ax_f, ax_c = torch.sub(ox, fx).neg_().add_(1.0), torch.sub(cx, ox).neg_().add_(1.0)
    ay_f, ay_c = torch.sub(oy, fy).neg_().add_(1.0), torch.sub(cy, oy).neg_().add_(1.0)
    pitch, frame = W + 2, (H + 2) * (W + 2)
    src = colors.to(f32)
    if not colors.dtype.is_floating_point:
        src = src / 255.0
    planes = [src[:, ch].mul(2.0).sub_(1.0) for ch in range(C)]
    if return_depth:
        planes.append(zt)
    acc = torch.zeros(1 + len(planes), B * frame, device=dev)
    for row, col, prox in ((fy, fx, ay_f * ax_f), (cy, fx, ay_c * ax_f), (fy, cx, ay_f * ax_c), (cy, cx, ay_c * ax_c)):
        index = _padded_index(col, row, pitch, frame, 0)
        w = prox.div_(w_depth)
        acc[0].scatter_add_(0, index, w.reshape(-1))
        for a, plane in zip(acc[1:], planes, strict=True):
            a.scatter_add_(0, index, (plane * w).reshape(-1))
    acc = acc.view(-1, B, H + 2, pitch)[:, :, 1:1 + H, 1:1 + W]
    weight = acc[0]
    visible = weight > 0
    mean = torch.where(visible, acc[1:1 + C] / weight, -1.0).clamp_(-1.0, 1.0).add_(1.0).div_(2.0)
    image = mean if colors.dtype.is_floating_point else mean.mul_(255.0).round_()
    out_depth = torch.where(visible, acc[-1] / weight, 0.0) if return_depth else None
    return SplatResult(image.to(colors.dtype).permute(1, 0, 2, 3), visible, out_depth)


# ------------------------------------------------------------------------------------------------ z-buffer splat
class _Neighbours(NamedTuple):
    du: torch.Tensor  # signed change of u to the next pixel along the axis (one shorter on that axis)
    dv: torch.Tensor
    adu: torch.Tensor  # |du|, 0 across an edge
    adv: torch.Tensor
    edge: torch.Tensor  # bool: the two pixels are different surfaces (or one is behind the camera)


def _neighbours(p: _Projection, log_z: torch.Tensor, dim: int, log_tolerance: float) -> _Neighbours:
    """log_z: log source depth, 1e30 where the point is behind the target camera (an edge to any point in front).
    Two depths are one surface when their ratio is at most 1 + edge_tolerance, i.e. |Δ log z| ≤ log_tolerance."""
    edge = log_z.diff(dim=dim).abs_() > log_tolerance
    du, dv = p.u.diff(dim=dim), p.v.diff(dim=dim)
    same = ~edge
    return _Neighbours(du, dv, torch.where(same, du.abs(), 0.0), torch.where(same, dv.abs(), 0.0), edge)


def _spacing(step: torch.Tensor, dim: int) -> torch.Tensor:
    """Per pixel, the larger of its two steps along `dim` (`step`: [B, H, W] one shorter on `dim`, ≥ 0)."""
    padded = torch.nn.functional.pad(step, (1, 1) if dim == 2 else (0, 0, 1, 1))
    n = padded.shape[dim]
    return torch.maximum(padded.narrow(dim, 0, n - 1), padded.narrow(dim, 1, n - 1))


def _repeat_index(counts: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """torch.repeat_interleave(arange(n), counts) for counts [n] int64 ≥ 0 and their run starts [n]
    (cumsum(counts) − counts, which callers also need): a marker at each run's start, summed up (about twice as fast
    on CPU)."""
    n = counts.numel()
    total = int(counts.sum())
    marks = torch.zeros(total + 1, dtype=torch.int64, device=counts.device)
    marks.index_add_(0, starts, torch.ones(n, dtype=torch.int64, device=counts.device))
    return torch.cumsum(marks[:total], 0).sub_(1)


def _first_extreme(values: torch.Tensor, better) -> torch.Tensor:
    """argmin (better=torch.lt) or argmax (torch.gt) over dim 1 of values [n, m, Q] → [n, Q] int64, the first index
    on ties; written out, as a reduction over a short leading dim is slow on CPU."""
    best = values[:, 0]
    index = torch.zeros(best.shape, dtype=torch.int64, device=values.device)
    for e in range(1, values.shape[1]):
        take = better(values[:, e], best)
        best = torch.where(take, values[:, e], best)
        index = torch.where(take, e, index)
    return index


class _Raster(NamedTuple):
    index: torch.Tensor  # [K] int64 flat pixel index: offset + row · pitch + column
    attrs: torch.Tensor  # [K, A] float32 attributes at the pixel centre
    quad: torch.Tensor | None  # [K] int64 the quad covering the pixel (if asked for)


def raster_quads(u: torch.Tensor, v: torch.Tensor, attrs: torch.Tensor, H: int, W: int, pitch: int | None = None,
                  offset: torch.Tensor | int = 0, with_quad: bool = False, by_columns: bool = False) -> _Raster:
    """Scan conversion of quads (corners in polygon order) with attributes interpolated over them.

    u, v: float32 [4, Q] target pixel coordinates of the corners; attrs: float32 [4, A, Q], affine in screen space
    (e.g. 1/z); corner-major, so that per-quad kernels run long contiguous loops over the quads on CPU. Every pixel
    centre on or inside a quad within the H×W image is returned as the flat index
    offset + row · pitch + column of a buffer with row pitch `pitch` (default W); offset: int or [Q] int64 per quad.
    by_columns: scan columns instead of rows (same pixels; cheaper for tall quads, see `_quad_pixels`).

    Each quad is cut at its corners' sorted levels across the scanlines into 3 bands; inside a band the span is
    bounded by one left and one right edge (the outermost edges crossing the band's middle). A span is then its
    first pixel's index and attributes plus multiples of a per-span step, so the total work is proportional to the
    lines and pixels covered, not to bounding boxes.
    """
    dev, f32 = u.device, torch.float32
    Q, A = u.shape[1], attrs.shape[1]
    pitch = W if pitch is None else pitch
    if Q == 0:
        empty = torch.empty(0, dtype=torch.int64, device=dev)
        return _Raster(empty, torch.empty(0, A, device=dev), empty if with_quad else None)
    # in scan space x runs along a line and y across lines; per-quad tables are [corner or band, ..., Q]
    if by_columns:
        x, y, n_lines, n_along, line_step, step = v, u, W, H, 1, pitch
    else:
        x, y, n_lines, n_along, line_step, step = u, v, H, W, pitch, 1
    x, y, attrs = x.contiguous(), y.contiguous(), attrs.contiguous()
    xb, yb, ab = x.roll(-1, 0), y.roll(-1, 0), attrs.roll(-1, 0)
    dy = yb - y
    flat_edge = dy.abs() < 1e-6
    inv = 1.0 / torch.where(flat_edge, torch.ones_like(dy), dy)
    sx, sa = (xb - x) * inv, (ab - attrs) * inv.unsqueeze(1)  # d/dy of x and of the attributes along each edge
    e_lo, e_hi = torch.minimum(y, yb), torch.maximum(y, yb)
    levels = y.sort(0).values  # [4, Q]
    top, bot = levels[:-1], levels[1:]  # [3, Q] bands
    mid = 0.5 * (top + bot)
    # edges crossing each band's middle (a nearly flat edge spans no band of positive height)
    spans = (e_lo <= mid.unsqueeze(1)) & (mid.unsqueeze(1) <= e_hi) & ~flat_edge  # [3, 4, Q]
    x_mid = x + (mid.unsqueeze(1) - y) * sx
    left = _first_extreme(torch.where(spans, x_mid, float("inf")), torch.lt)  # [3, Q]
    right = _first_extreme(torch.where(spans, x_mid, float("-inf")), torch.gt)
    valid = spans.any(1)

    # per band (flat index k·Q + quad): its first line r0, x and the attributes where that line's centre crosses
    # the left and the right edge, and their change per line
    r0 = torch.ceil(top - 0.5).clamp_(min=0)
    r1 = torch.ceil(bot - 0.5) - 1
    r1[-1] = torch.floor(bot[-1] - 0.5)  # the last band also takes its bottom level
    nr = torch.where(valid, r1.clamp_(max=n_lines - 1) - r0 + 1, 0.0).clamp_(min=0).to(torch.int64).reshape(-1)
    xa = torch.cat([x.unsqueeze(1), attrs], 1)  # [4, 1 + A, Q] at each edge's first corner
    sxa = torch.cat([sx.unsqueeze(1), sa], 1)  # and its d/dy along the edge
    quad = torch.arange(Q, device=dev)

    def on_edge(i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # at line r0 of each band, and d/dy
        # flat 1-D gathers: much faster on CPU than gather() along a leading dim
        flat = ((i.unsqueeze(1) * (1 + A) + torch.arange(1 + A, device=dev).view(1, -1, 1)) * Q + quad).reshape(-1)
        slope = sxa.reshape(-1).index_select(0, flat).view(3, 1 + A, Q)
        y_edge = y.reshape(-1).index_select(0, (i * Q + quad).reshape(-1)).view(3, 1, Q)
        return torch.addcmul(xa.reshape(-1).index_select(0, flat).view(3, 1 + A, Q), r0.unsqueeze(1) + 0.5 - y_edge,
                             slope), slope

    (l0, ls), (q0, qs) = on_edge(left), on_edge(right)
    band_f = torch.cat([l0, q0, ls, qs], 1).permute(0, 2, 1).reshape(3 * Q, -1)
    band_base = torch.add(offset, r0.to(torch.int64) * line_step).reshape(-1)  # index of each band's line r0
    # per line: x and attributes on both edges, the pixel span [c0, c0 + nc), the attributes at its first pixel
    # centre and their change per pixel (a span narrower than a pixel holds at most one centre, placed exactly:
    # the clamp keeps it inside the span, and the slope, however steep, is never used there).
    # Narrow per-line and per-pixel tables are gathered a column at a time: on CPU that is several times faster
    # than gathering rows of an [n, columns] table.
    band_start = torch.cumsum(nr, 0).sub_(nr)
    b = _repeat_index(nr, band_start)
    li = torch.arange(b.numel(), device=dev).sub_(band_start.index_select(0, b))  # line in its band
    bf = band_f.index_select(0, b)
    n = 2 * (1 + A)
    ends = torch.addcmul(bf[:, :n], li.to(f32).unsqueeze(1), bf[:, n:])
    x_lo, a_lo, x_hi, a_hi = ends[:, 0], ends[:, 1:1 + A], ends[:, 1 + A], ends[:, 2 + A:]
    c0 = (x_lo - 0.5).ceil_().clamp_(min=0)
    nc = (x_hi - 0.5).floor_().clamp_(max=n_along - 1).sub_(c0).add_(1).clamp_(min=0).to(torch.int64)
    width = x_hi - x_lo
    da = a_hi - a_lo
    inv_w = width.clamp_min_(1e-12).reciprocal_()
    t0 = (c0 + 0.5).sub_(x_lo).mul_(inv_w).clamp_(0.0, 1.0)
    a0 = torch.addcmul(a_lo, t0.unsqueeze(1), da)
    slope = da.mul_(inv_w.unsqueeze(1))
    first = band_base.index_select(0, b).add_(li, alpha=line_step).add_(c0.to(torch.int64), alpha=step)
    start = torch.cumsum(nc, 0).sub_(nc)
    # per pixel
    px = _repeat_index(nc, start)
    k = torch.arange(px.numel(), device=dev).sub_(start.index_select(0, px))  # pixel number within its span
    index = first.index_select(0, px).add_(k, alpha=step)
    kf = k.to(f32)
    a = [torch.addcmul(a0[:, i].index_select(0, px), kf, slope[:, i].index_select(0, px)) for i in range(A)]
    return _Raster(index, a[0].unsqueeze(1) if A == 1 else torch.stack(a, 1),
                   (b % Q).index_select(0, px) if with_quad else None)


class _QuadPixels(NamedTuple):
    target: torch.Tensor  # [K] int64 flat target pixel
    depth: torch.Tensor  # [K] float32 perspective-correct target depth (times depth_scale)
    nearest: torch.Tensor | None  # [K] int64 flat source index of the nearest corner (None for hole quads)


def _quad_pixels(p: _Projection, quads: torch.Tensor, H: int, W: int, nearest: bool, depth_scale: float = 1.0,
                 padding: int = 0) -> list[_QuadPixels]:
    """Rasterise source quads (flat index of their top-left source pixel, [Q] int64) into the target image, or
    into a buffer of frames with `padding` pixels of margin on every side. Depth is perspective-correct (1/z is
    affine in screen space over a plane); `nearest` also names the corner nearest to each covered pixel centre.
    Two parts: wide quads scanned by rows, tall ones by columns (one span per row of a thin vertical sheet would
    cost a span per pixel)."""
    HW = H * W
    corners = torch.stack([quads, quads + 1, quads + W + 1, quads + W])  # [4, Q] 00, 01, 11, 10: polygon order

    def at_corners(values: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # [4, Q] values of [B, H, W] at corners
        return values.reshape(-1).index_select(0, c.reshape(-1)).view(c.shape)

    u, v = at_corners(p.u, corners), at_corners(p.v, corners)
    u_lo, u_hi, v_lo, v_hi = u.amin(0), u.amax(0), v.amin(0), v.amax(0)
    # most magnified quads are slivers whose bounding box holds no pixel centre: drop them before scan conversion
    keep = ((u_lo - 0.5).ceil_().clamp_(min=0) <= (u_hi - 0.5).floor_().clamp_(max=W - 1)) \
        & ((v_lo - 0.5).ceil_().clamp_(min=0) <= (v_hi - 0.5).floor_().clamp_(max=H - 1))
    tall = (v_hi - v_lo) > (u_hi - u_lo)
    pitch = W + 2 * padding
    parts = []
    for by_columns in (False, True):
        sel = (keep & (tall if by_columns else ~tall)).nonzero().squeeze(1)
        if sel.numel() == 0:
            continue
        q, c = quads.index_select(0, sel), corners.index_select(1, sel)
        attrs = [at_corners(p.inv_z, c) * (1.0 / depth_scale)]
        if nearest:  # source column and row offsets of the corners, to find the nearest one
            attrs += [torch.tensor([[0.0], [1.0], [1.0], [0.0]], device=q.device).expand_as(c),
                      torch.tensor([[0.0], [0.0], [1.0], [1.0]], device=q.device).expand_as(c)]
        offset = padding * pitch + padding
        if HW < p.u.numel():  # several frames: each quad's frame
            offset = q // HW * ((H + 2 * padding) * pitch) + offset
        r = raster_quads(u.index_select(1, sel), v.index_select(1, sel), torch.stack(attrs, 1), H, W, pitch, offset,
                          nearest, by_columns)
        corner = None
        if nearest:
            corner = q.index_select(0, r.quad) + r.attrs[:, 1].round().to(torch.int64) \
                + r.attrs[:, 2].round().to(torch.int64) * W
        parts.append(_QuadPixels(r.index, r.attrs[:, 0].clamp_min(1e-12).reciprocal_(), corner))
    return parts


def _zbuffer(colors: torch.Tensor, depth: torch.Tensor, K: torch.Tensor, source_to_target: torch.Tensor,
             max_footprint: int, edge_tolerance: float, return_depth: bool) -> SplatResult:
    B, C, H, W = colors.shape
    N = B * H * W  # pixels in the flat buffer
    if N >= HOLE:
        raise ValueError(f"at most {HOLE - 1} pixels per warp call (got {N}); warp fewer frames at once")
    dev = colors.device
    z = depth.to(torch.float32)
    p = _project(z, K, source_to_target)
    log_z = torch.where(p.in_front, z.log(), 1e30)
    log_tol = math.log1p(edge_tolerance)
    cols, rows = _neighbours(p, log_z, 2, log_tol), _neighbours(p, log_z, 1, log_tol)

    # Quads (top-left pixel (i, j), i < H − 1, j < W − 1): continuous ones keep their orientation unless seen from
    # behind; in the source image it is positive (x right, y down: cross((1, 0), (0, 1)) = 1).
    q_edge = cols.edge[:, :-1] | cols.edge[:, 1:] | rows.edge[:, :, :-1] | rows.edge[:, :, 1:]
    cross = cols.du[:, :-1] * rows.dv[:, :, :-1] - cols.dv[:, :-1] * rows.du[:, :, :-1]
    back = (cross < 0) & ~q_edge
    big = ~q_edge & (((cols.adu[:, :-1] + rows.adu[:, :, :-1]) > max_footprint)
                     | ((cols.adv[:, :-1] + rows.adv[:, :, :-1]) > max_footprint))
    in_front_quad = p.in_front[:, :-1, :-1] & p.in_front[:, 1:, 1:] & p.in_front[:, :-1, 1:] & p.in_front[:, 1:, :-1]
    sheet = q_edge & in_front_quad

    # Axis-aligned extent of the projected pixel: |∂u/∂column| + |∂u/∂row| (and likewise for v), so sheared and
    # rotated footprints stay closed, not just stretched ones. Isolated pixels (no same-surface neighbour, e.g. thin
    # silhouettes) fall back to the depth ratio z / z', the exact magnification of a fronto-parallel patch.
    ratio = z * p.inv_z
    sx = _spacing(cols.adu, 2).add_(_spacing(rows.adu, 1))
    sy = _spacing(rows.adv, 1).add_(_spacing(cols.adv, 2))
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
    any_back = _any(back)
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
    # the two 32-bit words of a key, written as views: depth bits high, HOLE | source index low
    lo_word, hi_word = (0, 1) if sys.byteorder == "little" else (1, 0)
    flat_key = torch.empty(N, dtype=torch.int64, device=dev)
    words = flat_key.view(torch.int32).view(N, 2)
    words[:, hi_word] = p.z.reshape(-1).view(torch.int32)
    index_word = torch.arange(N, device=dev, dtype=torch.int32)
    if any_back:
        index_word.bitwise_or_(back_pt.reshape(-1).to(torch.int32) * -HOLE)  # -2^31: the int32 sign bit
    words[:, lo_word] = index_word

    # One padded z-buffer: a margin of P = max_footprint + 1 pixels around each frame takes the footprint pixels
    # that fall off the image, so no candidate needs an inside test (points farther off are clamped into the margin,
    # where their whole footprint stays). Points behind the camera go to a dump slot after the last frame.
    P = int(max_footprint) + 1
    pitch, frame = W + 2 * P, (H + 2 * P) * (W + 2 * P)
    dump = B * frame
    first = torch.where(p.in_front.reshape(-1), _padded_index(j0.clamp_(-P, W), i0.clamp_(-P, H), pitch, frame, P),
                        dump)

    # Larger footprints are handled per shape class (nx, ny), so each point visits exactly the nx·ny pixels of its
    # footprint (most moving points need 2; a few near-camera or grazing ones more): sorted by class, every class
    # is a slice, and each of its other footprint pixels one scatter of the slice at a fixed index offset.
    code = torch.add(ny, nx, alpha=P).reshape(-1)  # (nx, ny) as one number: P + 1 for a single pixel
    multi = ((code > P + 1) & p.in_front.reshape(-1)).nonzero().squeeze(1)
    code = code.index_select(0, multi).sub_(P + 1).to(
        torch.uint8 if P * P <= 256 else torch.int64)  # (nx − 1)·P + ny − 1; sorting bytes is several times faster
    code, order = code.sort()
    multi = multi.index_select(0, order)
    first_multi, key_multi = first.index_select(0, multi), flat_key.index_select(0, multi)
    sentinel = torch.iinfo(torch.int64).max
    best = torch.full((dump + 1,), sentinel, dtype=torch.int64, device=dev)
    best.scatter_reduce_(0, first, flat_key, reduce="amin")
    at = 0
    for c, m in enumerate(torch.bincount(code.to(torch.int64), minlength=P * P).tolist()):
        if m:
            cx_n, cy_n = c // P + 1, c % P + 1
            for g in range(1, cx_n * cy_n):  # the class's other footprint pixels, row by row
                best.scatter_reduce_(0, first_multi[at:at + m] + (g // cx_n * pitch + g % cx_n),
                                     key_multi[at:at + m], reduce="amin")
        at += m
    # Quads: too magnified for a footprint (colour; depth-only holes if seen from behind), and rubber sheets across
    # depth discontinuities (depth-only holes, pushed back by edge_tolerance so their own corners win).
    raster = (big | sheet).reshape(-1).nonzero().squeeze(1)  # flat index over [B, H − 1, W − 1]
    quad_row = raster // (W - 1)
    quads = (quad_row + quad_row // (H - 1)) * W + raster % (W - 1)  # source index of each quad's top-left pixel
    is_big, is_back = big.reshape(-1)[raster], back.reshape(-1)[raster]
    colour = is_big & ~is_back
    for q in _quad_pixels(p, quads[colour], H, W, True, padding=P) if _any(colour) else []:
        nearest_word = flat_key.index_select(0, q.nearest).bitwise_and_(0xFFFFFFFF)
        best.scatter_reduce_(0, q.target, (q.depth.view(torch.int32).to(torch.int64) << 32) | nearest_word,
                             reduce="amin")
    # the winners' key words, read in place from the frames inside the margin
    words = best[:dump].view(torch.int32).view(B, H + 2 * P, pitch, 2)[:, P:P + H, P:P + W]
    low = words[..., lo_word]
    hidden = low < 0  # the HOLE bit is the int32 sign bit; the sentinel's low word is −1 too
    win_depth = words[..., hi_word].view(torch.float32)
    occ = None
    for sel, bias in ((is_big & is_back, 0.0), (~is_big, edge_tolerance)):
        for q in _quad_pixels(p, quads[sel], H, W, False, 1.0 + bias) if _any(sel) else []:
            # depth-only quads: nearest occluder per pixel; a winner behind it is hidden
            occ = torch.full((N,), float("inf"), device=dev) if occ is None else occ
            occ.scatter_reduce_(0, q.target, q.depth, reduce="amin")
    if occ is not None:
        hidden |= occ.view(B, H, W) < win_depth
    # colours with a blank row N that hidden pixels fetch (cheaper than blanking them after the gather)
    flat_colors = torch.cat([colors.permute(0, 2, 3, 1).reshape(N, C), colors.new_zeros(1, C)])
    visible = ~hidden
    image = flat_colors.index_select(0, torch.where(visible, low, N).reshape(-1))
    out_depth = torch.where(visible, win_depth, 0.0) if return_depth else None
    # channels-last memory behind a [B, C, H, W] view: callers that want frames [B, H, W, C] get them without a copy
    return SplatResult(image.view(B, H, W, C).permute(0, 3, 1, 2), visible, out_depth)
