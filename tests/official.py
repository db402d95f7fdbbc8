"""The official code's render side (github.com/yesiltepe-hidir/inverse-dvs, warper_utils.py), step by step in its
float32 operations and tensor shapes, written from a reading of it (never copied): the oracle the reference method's
tests compare with bit for bit. Slow on purpose: per-pixel column vectors through batched matmuls, `index_put_`
accumulation, one frame at a time."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.interpolate import UnivariateSpline, interp1d


def depth_from_disparity(disparity: np.ndarray) -> np.ndarray:
    """Disparity [T, H, W] float32 (the whole file) → depth: numpy min–max normalisation, then in torch ×3900 in place,
    values below 1e-5 set to 1e-5, 10000 / t, clipped to [1e-4, 1e4]."""
    n = (disparity - disparity.min()) / (disparity.max() - disparity.min())
    t = torch.from_numpy(n)
    t *= 3900
    t[t < 1e-5] = 1e-5
    return (10000.0 / t).clip(0.0001, 10000.0).numpy()


def relative_poses(theta_keys, phi_keys, r_keys, radius, n: int) -> np.ndarray:
    """The official trajectory construction, step by step as a reading of it has it: keyframe lists interpolated
    (scipy interp1d for up to 3 keyframes, else UnivariateSpline with the ends pinned), r multiplied by ρ first (ρ a
    float32 tensor below the cap, else the integer 5), per frame a [1, 4, 4] float32 camera-to-world from
    diag(−1, 1, −1, 1) moved by −r·ρ along z, rotated by Rx(θ) then Ry(φ) built from float32 sin and cos, ρ added to
    every pose's z, and each relative pose pose_t · inv(pose_0)."""
    def spread(values):
        x, x_new = np.linspace(0, 1, len(values)), np.linspace(0, 1, n)
        if len(values) <= 3:
            return interp1d(x, values)(x_new)
        out = UnivariateSpline(x, values, k=3)(x_new)
        out[0], out[-1] = values[0], values[-1]
        return out

    thetas, phis = spread(list(theta_keys)), spread(list(phi_keys))
    rs = spread([float(k) * radius for k in r_keys])
    poses = []
    for th, ph, r in zip(thetas, phis, rs, strict=True):
        c2w = torch.tensor([[-1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, 0], [0, 0, 0, 1]])[None]
        c2w[:, 2, 3] -= np.float32(r)
        a = torch.deg2rad(torch.tensor(np.float32(th)))
        rx = torch.tensor([[1, 0, 0, 0], [0, torch.cos(a), -torch.sin(a), 0], [0, torch.sin(a), torch.cos(a), 0],
                           [0, 0, 0, 1]])[None]
        b = torch.deg2rad(torch.tensor(np.float32(ph)))
        ry = torch.tensor([[torch.cos(b), 0, torch.sin(b), 0], [0, 1, 0, 0], [-torch.sin(b), 0, torch.cos(b), 0],
                           [0, 0, 0, 1]])[None]
        poses.append(torch.matmul(ry, torch.matmul(rx, c2w)))
    poses = torch.cat(poses)
    poses[:, 2, 3] = poses[:, 2, 3] + radius
    return torch.cat([torch.bmm(poses[i:i + 1], torch.linalg.inv(poses[0:1])) for i in range(n)]).double().numpy()


def warp_frame(frame: torch.Tensor, depth: torch.Tensor, K: torch.Tensor, M: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One frame warped as the official warper does it, written from a reading of it, slowly, in float32 and in its
    tensor shapes: per-pixel column vectors through batched matmuls, and corner by corner `index_put_` accumulation.
    frame [3, H, W] colours in [0, 1]; depth [H, W]; K [3, 3] pixel-index intrinsics (pixel j at j); M [4, 4] source →
    target. Returns (image [3, H, W] in [0, 1], mask [H, W] bool)."""
    H, W = depth.shape
    f32 = torch.float32
    cols = torch.arange(W, dtype=f32).expand(H, W)
    rows = torch.arange(H, dtype=f32)[:, None].expand(H, W)
    ones = torch.ones(H, W)
    pixel = torch.stack([cols, rows, ones], -1)[..., None]  # [H, W, 3, 1]
    ray = torch.matmul(torch.linalg.inv(K)[None, None], pixel)
    point = depth[..., None, None] * ray
    moved = torch.matmul(M[None, None], torch.cat([point, ones[..., None, None]], -2))[..., :3, :]
    image_point = torch.matmul(K[None, None], moved)[..., 0]  # [H, W, 3]
    coords = image_point[..., :2] / image_point[..., 2:]
    grid = torch.stack([cols, rows], -1)
    pos = (coords - grid) + grid + 1  # the flow and back, then the one-pixel margin
    lo, hi = pos.floor().long(), pos.ceil().long()
    limit = torch.tensor([W + 1, H + 1])
    pos = torch.minimum(pos.clamp_min(0), limit.to(f32))
    lo, hi = torch.minimum(lo.clamp_min(0), limit), torch.minimum(hi.clamp_min(0), limit)
    near = 1 - (pos - lo)  # per axis (x, y): the share at the floor, and below at the ceiling
    far = 1 - (hi - pos)
    log_z = torch.log(1 + image_point[..., 2].clamp(0, 1000))
    depth_weight = torch.exp(log_z / log_z.max() * 50)
    colours = (frame * 2.0 - 1.0).permute(1, 2, 0)  # [H, W, 3] in [−1, 1]
    acc = torch.zeros(H + 2, W + 2, 3)
    weights = torch.zeros(H + 2, W + 2, 1)
    (xl, yl), (xh, yh) = lo.unbind(-1), hi.unbind(-1)
    (nx, ny), (fx, fy) = near.unbind(-1), far.unbind(-1)
    corners = [(yl, xl, ny * nx), (yh, xl, fy * nx), (yl, xh, ny * fx), (yh, xh, fy * fx)]  # nw, sw, ne, se
    for r, c, share in corners:
        acc.index_put_((r, c), colours * (share / depth_weight)[..., None], accumulate=True)
    for r, c, share in corners:
        weights.index_put_((r, c), (share / depth_weight)[..., None], accumulate=True)
    acc, weights = acc[1:-1, 1:-1], weights[1:-1, 1:-1]
    mask = weights > 0
    image = torch.where(mask, acc / weights, torch.tensor(-1.0)).clamp(-1, 1)
    return ((image + 1.0) / 2.0).permute(2, 0, 1), mask[..., 0]


def to_model_size(images: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
    """Renders [T, 3, h, w] in [0, 1] → uint8 [T, H, W, 3]: float bilinear resize, ×255 truncated."""
    x = F.interpolate(images, size=hw, mode="bilinear", align_corners=False)
    return (x * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def slm(x: torch.Tensor, eps: torch.Tensor, mask: torch.Tensor, mask_eps: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """One round of the official SLM on [B, F, C, H, W] latents (masks bool, True = occluded), drawing from torch's
    global generator of the masks' device: ε first, each occluded element (row-major order) gets the value at a
    uniformly drawn index into the visible elements (row-major order), then x0 the same on its own mask."""
    x, eps = x.clone(), eps.clone()
    for values, occluded in ((eps, mask_eps), (x, mask)):
        visible = torch.nonzero(~occluded, as_tuple=True)
        target = torch.nonzero(occluded, as_tuple=True)
        pick = torch.randint(0, len(visible[0]), (int(occluded.sum().item()),), device=occluded.device)
        values[target] = values[tuple(v[pick] for v in visible)]
    return x, eps
