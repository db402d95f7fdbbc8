"""Camera geometry: intrinsics, keyframe interpolation, trajectories → per-frame `source_to_target` [T, 4, 4].

Conventions (README → Camera conventions): OpenCV camera axes (x right, y down, z forward); 4×4 rigid matrices act
on column vectors; `source_to_target` maps a point in the source camera frame to the target camera frame (it is the
target's world-to-camera when the world is the source camera frame); `camera_to_world` is its inverse.

Orbit model of the keyframe format (θ elevation°, φ azimuth°, r fraction of the scene radius ρ), fixed by the
test vectors of the paper's code and TrajectoryCrafter: the pivot is p = (0, 0, ρ) on the first frame's optical axis.
The camera orbits p, looking at it, by the rotation G = Rx(−θ)·Ry(−φ) (φ > 0 moves the camera right, θ > 0 up), and is
then shifted by r·ρ along the source optical axis (+z; r > 0 moves towards the scene). So the target camera centre is
C = p − G·p + (0, 0, r·ρ), its camera_to_world is [G | C], and source_to_target = inverse(camera_to_world).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Keyframes(NamedTuple):
    theta: np.ndarray  # [n_θ] degrees
    phi: np.ndarray  # [n_φ] degrees
    r: np.ndarray  # [n_r] fraction of the scene radius


# ---------------------------------------------------------------------------------------------------- intrinsics
def intrinsics(height: int, width: int, mode: str, fov_deg: float = 60.0, focal: float = 500.0,
               cx: float | None = None, cy: float | None = None) -> np.ndarray:
    """K [3, 3] float64 in pixels.

    `fov`: horizontal field of view; `focal`: focal length in pixels; `reference`: the official code's fixed
    f = 500 and principal point (512, 288) for 576×1024 frames. Its warper puts pixel j at coordinate j, where ours
    puts pixel centres at j + 0.5 (module docstring of `splat`), so in our convention c = (512.5, 288.5); other sizes
    scale it per axis.
    """
    if mode == "reference":
        sx, sy = width / 1024.0, height / 576.0
        fx, fy, px, py = 500.0 * sx, 500.0 * sy, 512.5 * sx, 288.5 * sy
    else:
        f = (width / 2) / np.tan(np.deg2rad(fov_deg) / 2) if mode == "fov" else float(focal)
        fx = fy = f
        px, py = width / 2, height / 2
    px = px if cx is None else cx
    py = py if cy is None else cy
    return np.array([[fx, 0, px], [0, fy, py], [0, 0, 1]], dtype=np.float64)


# ---------------------------------------------------------------------------------------------- interpolation
def interpolate_keyframes(values: np.ndarray, num_frames: int, linear: str = "numpy") -> np.ndarray:
    """Keyframes [n] spread evenly over `num_frames` → [num_frames].

    More than 3 keyframes: cubic smoothing spline (scipy's UnivariateSpline, default smoothing s = n) with the
    end values pinned to the first and last keyframe; otherwise linear (1 keyframe = constant), by `np.interp`
    (`linear="numpy"`) or by scipy's `interp1d` (`"scipy"`, the official code's: it can round the last bit of a
    value at a keyframe differently). float32 keyframes stay float32 there, as interp1d keeps them (its differences
    of neighbouring keyframes are then float32); anything else is read as float64.
    """
    values = np.asarray(values)
    if values.dtype != np.float32:
        values = values.astype(np.float64)
    x_new = np.linspace(0.0, 1.0, num_frames)
    if values.size == 1:
        return np.full(num_frames, values[0])
    x = np.linspace(0.0, 1.0, values.size)
    if values.size <= 3:
        if linear == "scipy":
            from scipy.interpolate import interp1d

            return interp1d(x, values)(x_new)
        return np.interp(x_new, x, values)
    from scipy.interpolate import UnivariateSpline

    out = UnivariateSpline(x, values, k=3)(x_new)
    out[0], out[-1] = values[0], values[-1]
    return out


# ---------------------------------------------------------------------------------------------------- rigid maths
def rot_x(deg: np.ndarray) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_y(deg: np.ndarray) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rigid(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """R [..., 3, 3], t [..., 3] → [..., 4, 4]."""
    out = np.zeros(R.shape[:-2] + (4, 4))
    out[..., :3, :3] = R
    out[..., :3, 3] = t
    out[..., 3, 3] = 1.0
    return out


def invert_rigid(M: np.ndarray) -> np.ndarray:
    R = np.swapaxes(M[..., :3, :3], -1, -2)
    return rigid(R, -np.einsum("...ij,...j->...i", R, M[..., :3, 3]))


def rigid_problem(M: np.ndarray, tol: float = 1e-4) -> str | None:
    """Why M is not a stack of rigid 4×4 matrices (orthonormal rotation, det +1, last row 0 0 0 1), or None."""
    if M.ndim != 3 or M.shape[1:] != (4, 4):
        return f"expected T 4×4 matrices, got an array of shape {tuple(M.shape)}"
    if not np.isfinite(M).all():
        return "poses contain NaN or inf"
    R = M[:, :3, :3]
    err = np.abs(R @ np.swapaxes(R, 1, 2) - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(R)
    bad = np.flatnonzero((err > tol) | (np.abs(det - 1) > tol) | (np.abs(M[:, 3] - [0, 0, 0, 1]).max(1) > tol))
    if bad.size:
        return (f"pose {int(bad[0])} is not a rigid camera-to-world matrix (rotation must be orthonormal with det +1 "
                "and the last row 0 0 0 1; scale or shear is not allowed)")
    return None


# ---------------------------------------------------------------------------------------------------- trajectories
def orbit_source_to_target(theta: np.ndarray, phi: np.ndarray, r: np.ndarray, radius: float) -> np.ndarray:
    """Per-frame θ, φ (degrees) and r (fraction of `radius`) [T] → source_to_target [T, 4, 4]."""
    theta, phi, r = (np.asarray(a, dtype=np.float64) for a in (theta, phi, r))
    pivot = np.array([0.0, 0.0, radius])
    G = rot_x(-theta) @ rot_y(-phi)
    shift = np.stack([np.zeros_like(r), np.zeros_like(r), r * radius], -1)
    center = pivot - np.einsum("tij,j->ti", G, pivot) + shift
    camera_to_world = rigid(G, center)
    return invert_rigid(camera_to_world)


OFFICIAL_RADIUS_CAP = 5.0  # the official code's ρ: a float32 tensor below 5, else the integer 5


def reference_orbit_source_to_target(theta: np.ndarray, phi: np.ndarray, r_distance: np.ndarray,
                                     radius: float) -> np.ndarray:
    """The orbit model as the official code computes it, in float32: per-frame θ, φ (degrees) and r·ρ [T] (each
    rounded to float32) and the scene radius ρ → source_to_target [T, 4, 4] (float32 values in a float64 array).

    Per frame, in the official [1, 4, 4] shapes and torch's float32 operations: the camera-to-world pose starts as
    diag(−1, 1, −1, 1), its z translation becomes −r·ρ, it is multiplied on the left by the rotation of θ about x and
    then by that of φ about y (sin and cos of the float32 radians), and ρ is added to its z translation; the
    relative pose is pose_t · inverse(pose_0) (`torch.linalg.inv`, `torch.bmm`). So the path's first frame is the
    source camera (up to float32 rounding) even where the first keyframe is not 0. Where the path starts at
    θ = φ = r = 0 it agrees with `orbit_source_to_target` to float32 rounding (tests/core/test_camera.py)."""
    import torch

    def rotation(degrees: np.float32, axis: str) -> torch.Tensor:  # [1, 4, 4]
        a = torch.deg2rad(torch.tensor(degrees))
        s, c = torch.sin(a), torch.cos(a)
        R = torch.eye(4)[None]
        if axis == "x":
            R[0, 1, 1], R[0, 1, 2], R[0, 2, 1], R[0, 2, 2] = c, -s, s, c
        else:
            R[0, 0, 0], R[0, 0, 2], R[0, 2, 0], R[0, 2, 2] = c, s, -s, c
        return R

    rho = torch.tensor(radius, dtype=torch.float32)
    poses = []
    for th, ph, rd in zip(np.float32(theta), np.float32(phi), np.float32(r_distance), strict=True):
        c2w = torch.diag(torch.tensor([-1.0, 1.0, -1.0, 1.0]))[None]
        c2w[:, 2, 3] -= torch.tensor(rd)
        c2w = torch.matmul(rotation(ph, "y"), torch.matmul(rotation(th, "x"), c2w))
        c2w[:, 2, 3] = c2w[:, 2, 3] + rho
        poses.append(c2w)
    source_inv = torch.linalg.inv(poses[0])
    return torch.cat([torch.bmm(p, source_inv) for p in poses]).double().numpy()


# Presets, combinable with '+': (keyframe row, sign, `amount` per unit) — θ and φ in degrees, r in percent of ρ.
PRESETS = {"orbit_left": ("phi", -1.0, 1.0), "orbit_right": ("phi", 1.0, 1.0), "arc_up": ("theta", 1.0, 1.0),
           "arc_down": ("theta", -1.0, 1.0), "dolly_in": ("r", 1.0, 100.0), "dolly_out": ("r", -1.0, 100.0)}


def preset_keyframes(preset: str, amount: float) -> Keyframes:
    """Presets, combinable with '+', as two keyframes (start at the source camera, end at `amount`):
    orbit_left/right (φ, degrees), arc_up/down (θ, degrees), dolly_in/out (r, percent of the scene radius)."""
    ends = {"theta": 0.0, "phi": 0.0, "r": 0.0}
    for part in preset.split("+"):
        if part not in PRESETS:
            raise ValueError(f"unknown trajectory preset {part!r}; one of {', '.join(PRESETS)}")
        row, sign, per_unit = PRESETS[part]
        ends[row] += sign * amount / per_unit
    return Keyframes(*(np.array([0.0, ends[row]]) for row in ("theta", "phi", "r")))


MAX_ANGLE, MAX_R = 360.0, 10.0  # sane keyframe bounds: degrees for θ and φ, scene radii for r


def keyframes_problem(kf: Keyframes) -> str | None:
    """Why keyframes are unusable — empty or non-finite, or |θ|, |φ| > 360° or |r| > 10 scene radii — or None."""
    for values, what, limit, unit in ((kf.theta, "θ (elevation)", MAX_ANGLE, "°"), (kf.phi, "φ (azimuth)", MAX_ANGLE,
                                                                                  "°"), (kf.r, "r", MAX_R, "")):
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0 or not np.isfinite(values).all():
            return f"the {what} keyframes are empty or not finite ({values.tolist()})"
        bad = values[np.abs(values) > limit]
        if bad.size:
            return (f"{what} keyframe {bad[0]:g}{unit} is out of range; allowed |{what.split()[0]}| ≤ {limit:g}{unit}"
                    f"{' (fraction of the scene radius)' if what == 'r' else ''}. Check the units: θ and φ are "
                    "degrees, r is a fraction of the scene radius")
    return None


R_SPLINES = ("fraction", "distance")
POSE_ARITHMETIC = ("float64", "reference")


def keyframe_path(kf: Keyframes, num_frames: int, radius: float, r_spline: str = "fraction",
                  arithmetic: str = "float64") -> np.ndarray:
    """Keyframes → source_to_target [T, 4, 4] float64 along the orbit model.

    `r_spline` (`camera.r_spline`): the r keyframes are interpolated as fractions of the scene radius (`fraction`),
    or as distances r·ρ (`distance`, the official code): the smoothing spline is not scale-invariant, so with more
    than 3 keyframes the two differ.
    `arithmetic` (`camera.pose_arithmetic`): `float64` (`orbit_source_to_target`), or `reference`, the official
    code's construction (`reference_orbit_source_to_target`, linear keyframes by scipy's interp1d): with
    `distance`, the r·ρ keyframes are float32 products where ρ is below the official cap of 5 (there ρ is a float32
    tensor) and float64 ones at the cap (there it is the integer 5)."""
    if r_spline not in R_SPLINES:
        raise ValueError(f"unknown r spline {r_spline!r}; one of {R_SPLINES}")
    if arithmetic not in POSE_ARITHMETIC:
        raise ValueError(f"unknown pose arithmetic {arithmetic!r}; one of {POSE_ARITHMETIC}")
    if arithmetic == "float64":
        theta, phi = (interpolate_keyframes(v, num_frames) for v in (kf.theta, kf.phi))
        if r_spline == "fraction":
            r = interpolate_keyframes(kf.r, num_frames)
        else:
            r = interpolate_keyframes(np.asarray(kf.r, np.float64) * radius, num_frames) / radius
        return orbit_source_to_target(theta, phi, r, radius=radius)
    theta, phi = (interpolate_keyframes(v, num_frames, "scipy") for v in (kf.theta, kf.phi))
    r = np.asarray(kf.r, np.float64)
    if r_spline == "fraction":
        r_distance = interpolate_keyframes(r, num_frames, "scipy") * radius
    else:
        official = np.float32(r) * np.float32(radius) if radius < OFFICIAL_RADIUS_CAP else r * radius
        r_distance = interpolate_keyframes(official, num_frames, "scipy")
    return reference_orbit_source_to_target(theta, phi, r_distance, radius)


def scene_radius(first_depth: np.ndarray, radius_scale: float, max_radius: float) -> float:
    """Depth at the first frame's centre pixel × radius_scale, capped at max_radius."""
    h, w = first_depth.shape
    return float(min(first_depth[h // 2, w // 2] * radius_scale, max_radius))
