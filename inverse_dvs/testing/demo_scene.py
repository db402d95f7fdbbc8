"""A procedural 3D scene with exact geometry: textured ground, back wall, and a sphere moving in front.

Everything is ray-cast analytically, so any camera gets an exact image and exact depth. World coordinates are the
source camera's (OpenCV: x right, y down, z forward); the demo video is seen from the identity camera, and the warp
tests re-render the scene from target cameras (`camera_to_world` = inverse of `source_to_target`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

GROUND_Y = 1.0  # ground plane y = +1 (below the camera, y points down)
WALL_Z = 4.5  # back wall plane z = 4.5
SPHERE_RADIUS = 0.55
SPHERE_Y = 0.25
SPHERE_Z = 2.6


class SceneRender(NamedTuple):
    rgb: np.ndarray  # [H, W, 3] uint8
    depth: np.ndarray  # [H, W] float32, z in the rendering camera (larger = farther)
    points: np.ndarray  # [H, W, 3] float64 world points hit by each pixel's ray
    material: np.ndarray  # [H, W] int: 0 ground, 1 wall, 2 sphere


def intrinsics_from_fov(height: int, width: int, fov_deg: float) -> np.ndarray:
    """K [3, 3] in pixels for a horizontal field of view, principal point at the image centre."""
    f = (width / 2) / np.tan(np.deg2rad(fov_deg) / 2)
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=np.float64)


def sphere_center(t: float) -> np.ndarray:
    """Centre of the moving sphere at normalised time t ∈ [0, 1]."""
    return np.array([-1.1 + 2.0 * t, SPHERE_Y + 0.15 * np.sin(2 * np.pi * t), SPHERE_Z])


def _shade(points: np.ndarray, material: np.ndarray, t: float) -> np.ndarray:
    """Smooth (low-frequency) procedural textures, so resampling error stays small in the warp tests."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    rgb = np.zeros(points.shape, np.float64)
    g = material == 0
    stripes = 0.5 + 0.5 * np.sin(2.2 * x[g]) * np.cos(1.7 * z[g])
    rgb[g] = np.stack([0.25 + 0.35 * stripes, 0.45 + 0.25 * stripes, 0.20 + 0.1 * stripes], -1)
    w = material == 1
    wave = 0.5 + 0.5 * np.sin(1.3 * x[w] + 0.8 * np.sin(1.1 * y[w]))
    rgb[w] = np.stack([0.75 - 0.3 * wave, 0.55 + 0.1 * wave, 0.35 + 0.45 * wave], -1)
    s = material == 2
    c = sphere_center(t)
    n = (points[s] - c) / SPHERE_RADIUS
    light = np.clip(0.35 + 0.65 * (n @ np.array([-0.4, -0.7, -0.6]) / np.linalg.norm([-0.4, -0.7, -0.6])), 0, 1)
    band = 0.5 + 0.5 * np.sin(3.0 * n[:, 1])
    rgb[s] = np.stack([0.9 * light, (0.3 + 0.4 * band) * light, 0.25 * light], -1)
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def _cast(o: np.ndarray, d: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """First hit along rays o + s·d (d [..., 3]); returns (s_hit [...], material [...]: 0 ground, 1 wall, 2 sphere)."""
    inf = np.full(d.shape[:-1], np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(d[..., 1] > 1e-9, (GROUND_Y - o[1]) / d[..., 1], inf)
        t_wall = np.where(d[..., 2] > 1e-9, (WALL_Z - o[2]) / d[..., 2], inf)
    oc = o - sphere_center(t)
    a = np.einsum("...k,...k->...", d, d)
    b = 2 * d @ oc
    disc = b * b - 4 * a * (oc @ oc - SPHERE_RADIUS**2)
    with np.errstate(invalid="ignore"):
        t_sphere = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a), inf)
    stack = np.stack([np.where(x > 1e-6, x, inf) for x in (t_ground, t_wall, t_sphere)], -1)
    return np.min(stack, -1), np.argmin(stack, -1)


def render(camera_to_world: np.ndarray, K: np.ndarray, height: int, width: int, t: float) -> SceneRender:
    """Ray-cast the scene at time t from a camera with pose `camera_to_world` [4, 4] (OpenCV axes)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    dirs_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    R, o = camera_to_world[:3, :3], camera_to_world[:3, 3]
    d = dirs_cam @ R.T  # world directions, scaled so that the camera-z component is 1
    t_hit, material = _cast(o, d, t)
    if not np.isfinite(t_hit).all():
        raise ValueError("camera sees past the scene; keep demo cameras in front of the back wall")
    points = o + d * t_hit[..., None]
    # d has camera-z component 1, so the ray parameter is exactly the z-depth in the rendering camera.
    return SceneRender(_shade(points, material, t), t_hit.astype(np.float32), points, material)


def render_video(camera_to_world: np.ndarray, K: np.ndarray, height: int, width: int,
                 num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """camera_to_world [T, 4, 4] (or [4, 4] for a static camera) → (rgb [T, H, W, 3] uint8, depth [T, H, W] f32)."""
    c2w = np.broadcast_to(camera_to_world, (num_frames, 4, 4))
    rgb = np.empty((num_frames, height, width, 3), np.uint8)
    depth = np.empty((num_frames, height, width), np.float32)
    for i in range(num_frames):
        rgb[i], depth[i], _, _ = render(c2w[i], K, height, width, i / max(num_frames - 1, 1))
    return rgb, depth


def visible_from_source(points: np.ndarray, K: np.ndarray, height: int, width: int, t: float,
                        rtol: float = 1e-4) -> np.ndarray:
    """Exact disocclusion test: which world points [..., 3] (world = source camera frame) the source camera sees.

    A point is seen when it projects inside the source image and the source camera's ray through it first hits the
    scene at the point itself (analytic ray cast at time t), so no pixel sampling enters the ground truth.
    """
    z = points[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K[0, 0] * points[..., 0] / z + K[0, 2]
        v = K[1, 1] * points[..., 1] / z + K[1, 2]
    inside = (z > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    with np.errstate(divide="ignore", invalid="ignore"):
        dirs = points / z[..., None]  # camera-z component 1: the hit parameter is the z-depth
    hit, _ = _cast(np.zeros(3), np.nan_to_num(dirs), t)
    return inside & (np.abs(hit - z) <= rtol * np.abs(z))


class WarpCheck(NamedTuple):
    """How a warp of one source frame compares with the exact view from the target camera."""

    psnr: float  # on pixels the warp marks visible whose true surface the source saw
    hole_iou: float  # warp holes vs exact disocclusions (true surfaces the source did not see)
    ball_leak: float  # share of seen sphere pixels marked visible but showing another surface (a channel off by > 60)
    seen_ball: int  # number of such sphere pixels


def check_warp(image: np.ndarray, visible: np.ndarray, source_to_target: np.ndarray, K: np.ndarray, t: float
               ) -> WarpCheck:
    """Compare a warped frame (image [H, W, 3] uint8, visible bool [H, W]) of the demo scene at time t with the
    ray-cast truth from the camera `source_to_target` [4, 4] (world = the source camera frame)."""
    height, width = visible.shape
    tgt = render(np.linalg.inv(source_to_target), K, height, width, t)
    seen = visible_from_source(tgt.points, K, height, width, t)
    both = visible & seen
    err = (image.astype(np.float64) - tgt.rgb.astype(np.float64))
    mse = float(np.mean(err[both] ** 2)) if both.any() else 0.0
    psnr = 10 * np.log10(255.0**2 / mse) if mse > 0 else float("inf")
    holes = ~visible
    union = (holes | ~seen).sum()
    iou = float((holes & ~seen).sum() / union) if union else 1.0
    ball = (tgt.material == 2) & seen
    wrong = visible & (np.abs(err) > 60).any(-1)
    return WarpCheck(psnr, iou, float((ball & wrong).sum() / max(ball.sum(), 1)), int(ball.sum()))
