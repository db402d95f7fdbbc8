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

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import UserError


class Keyframes(NamedTuple):
    theta: np.ndarray  # [n_θ] degrees
    phi: np.ndarray  # [n_φ] degrees
    r: np.ndarray  # [n_r] fraction of the scene radius


# ---------------------------------------------------------------------------------------------------- intrinsics
def intrinsics(height: int, width: int, mode: str, fov_deg: float = 60.0, focal: float = 500.0,
               cx: float | None = None, cy: float | None = None) -> np.ndarray:
    """K [3, 3] float64 in pixels.

    `fov`: horizontal field of view; `focal`: focal length in pixels; `reference`: the official code's fixed
    f = 500 and principal point (512, 288) for 1024×576 frames. Its warper puts pixel j at coordinate j, where ours
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
def interpolate_keyframes(values: np.ndarray, num_frames: int) -> np.ndarray:
    """Keyframes [n] spread evenly over `num_frames` → [num_frames].

    More than 3 keyframes: cubic smoothing spline (scipy's UnivariateSpline, default smoothing s = n) with the
    end values pinned to the first and last keyframe; otherwise linear (1 keyframe = constant).
    """
    values = np.asarray(values, dtype=np.float64)
    x_new = np.linspace(0.0, 1.0, num_frames)
    if values.size == 1:
        return np.full(num_frames, values[0])
    x = np.linspace(0.0, 1.0, values.size)
    if values.size <= 3:
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


def check_rigid(M: np.ndarray, where: str, tol: float = 1e-4) -> None:
    """Raise UserError unless every M[i] is a rigid 4×4 (orthonormal rotation, det +1, last row 0 0 0 1)."""
    if M.ndim != 3 or M.shape[1:] != (4, 4):
        raise UserError(f"{where}: expected T 4×4 matrices, got an array of shape {tuple(M.shape)}.")
    if not np.isfinite(M).all():
        raise UserError(f"{where}: poses contain NaN or inf.")
    R = M[:, :3, :3]
    err = np.abs(R @ np.swapaxes(R, 1, 2) - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(R)
    bad = np.flatnonzero((err > tol) | (np.abs(det - 1) > tol) | (np.abs(M[:, 3] - [0, 0, 0, 1]).max(1) > tol))
    if bad.size:
        raise UserError(f"{where}: pose {int(bad[0])} is not a rigid camera-to-world matrix (rotation must be "
                        "orthonormal with det +1 and the last row 0 0 0 1; scale or shear is not allowed).")


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


def read_trajectory_file(path: str | Path) -> Keyframes:
    """Parse the 3-line keyframe format (θ line, φ line, r line; numbers separated by spaces or commas)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"trajectory file '{path}' does not exist; fix its 'file' entry under 'trajectories' "
                        "(relative paths are looked up in the config's folder, then the project root).")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"trajectory file '{path}' is not UTF-8 text; it needs 3 lines of numbers.") from None
    except OSError as exc:
        raise UserError(f"trajectory file '{path}' cannot be read ({exc.strerror}).") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) != 3:
        raise UserError(f"trajectory file '{path}' has {len(lines)} non-empty lines; it needs exactly 3: θ "
                        "(elevation keyframes, degrees), φ (azimuth keyframes, degrees), r (radius keyframes, "
                        "fraction of the scene radius).")
    rows = []
    for i, (ln, what) in enumerate(zip(lines, ("θ", "φ", "r"), strict=True)):
        try:
            vals = np.array([float(x) for x in ln.replace(",", " ").split()], dtype=np.float64)
        except ValueError:
            raise UserError(f"trajectory file '{path}', line {i + 1} ({what}): {ln.strip()[:80]!r} is not a list of "
                            "numbers.") from None
        if not np.isfinite(vals).all():
            raise UserError(f"trajectory file '{path}', line {i + 1} ({what}) contains NaN or inf.")
        rows.append(vals)
    return Keyframes(*rows)


def preset_keyframes(preset: str, amount: float) -> Keyframes:
    """Presets, combinable with '+', as two keyframes (start at the source camera, end at `amount`):
    orbit_left/right (φ, degrees), arc_up/down (θ, degrees), dolly_in/out (r, percent of the scene radius)."""
    theta, phi, r = [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    for part in preset.split("+"):
        if part == "orbit_left":
            phi[1] -= amount
        elif part == "orbit_right":
            phi[1] += amount
        elif part == "arc_up":
            theta[1] += amount
        elif part == "arc_down":
            theta[1] -= amount
        elif part in ("dolly_in", "dolly_out"):
            r[1] += amount / 100.0 if part == "dolly_in" else -amount / 100.0
        else:
            raise UserError(f"unknown trajectory preset '{part}'.")
    return Keyframes(np.array(theta), np.array(phi), np.array(r))


def read_pose_json(path: str | Path, num_frames: int) -> np.ndarray:
    """A JSON list of T camera-to-world 4×4 matrices (OpenCV axes, world = any frame) → source_to_target [T,4,4].

    The first pose is taken as the source camera, so `source_to_target[i] = inv(c2w[i]) @ c2w[0]`. The JSON may be a
    bare list or an object with key `camera_to_world`.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"pose file '{path}' {'is a folder' if path.is_dir() else 'does not exist'}; fix the "
                        "trajectory's 'poses' entry (relative paths are looked up in the config's folder, then the "
                        "project root).")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"pose file '{path}' is not readable JSON ({exc}).") from None
    if isinstance(data, dict):
        data = data.get("camera_to_world")
    try:
        c2w = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"pose file '{path}': expected a list of 4×4 number matrices "
                        "(or an object with key 'camera_to_world').") from None
    if c2w.ndim != 3 or c2w.shape[1:] != (4, 4):
        raise UserError(f"pose file '{path}': expected shape [T, 4, 4] camera-to-world matrices, got "
                        f"{tuple(c2w.shape)}.")
    if c2w.shape[0] != num_frames:
        raise UserError(f"pose file '{path}' has {c2w.shape[0]} poses but camera.num_frames is {num_frames}; "
                        "give one camera-to-world matrix per frame.")
    check_rigid(c2w, f"pose file '{path}'")
    return invert_rigid(c2w) @ c2w[0]


MAX_ANGLE, MAX_R = 360.0, 10.0  # sane keyframe bounds: degrees for θ and φ, scene radii for r


def check_keyframes(kf: Keyframes, where: str) -> None:
    """Keyframes must be finite with |θ|, |φ| ≤ 360° and |r| ≤ 10 scene radii; UserError naming the value."""
    for values, what, limit, unit in ((kf.theta, "θ (elevation)", MAX_ANGLE, "°"), (kf.phi, "φ (azimuth)", MAX_ANGLE,
                                                                                  "°"), (kf.r, "r", MAX_R, "")):
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0 or not np.isfinite(values).all():
            raise UserError(f"{where}: the {what} keyframes are empty or not finite ({values.tolist()}).")
        bad = values[np.abs(values) > limit]
        if bad.size:
            raise UserError(f"{where}: {what} keyframe {bad[0]:g}{unit} is out of range; allowed |{what.split()[0]}| ≤ "
                            f"{limit:g}{unit}{' (fraction of the scene radius)' if what == 'r' else ''}. Check the "
                            "units: θ and φ are degrees, r is a fraction of the scene radius.")


def trajectory_keyframes(spec) -> Keyframes:
    """The θ/φ/r keyframes of a config TrajectorySpec that is not `poses`, checked (UserError when malformed)."""
    if spec.kind == "file":
        kf = read_trajectory_file(spec.file)
        where = f"trajectory file '{spec.file}' (trajectory '{spec.name}')"
    elif spec.kind == "preset":
        kf = preset_keyframes(spec.preset, spec.amount)
        where = f"config key 'trajectories.{spec.name}' (preset {spec.preset}, amount {spec.amount:g})"
    else:
        kf = Keyframes(np.asarray(spec.theta, float), np.asarray(spec.phi, float), np.asarray(spec.r, float))
        where = f"config key 'trajectories.{spec.name}'"
    check_keyframes(kf, where)
    return kf


R_SPLINES = ("fraction", "distance")


def trajectory_source_to_target(spec, num_frames: int, radius: float, r_spline: str = "fraction") -> np.ndarray:
    """A config TrajectorySpec → source_to_target [T, 4, 4] float64.

    `r_spline` (`camera.r_spline`): the r keyframes are interpolated as fractions of the scene radius (`fraction`),
    or as distances r·ρ (`distance`, the official code): the smoothing spline is not scale-invariant, so with more
    than 3 keyframes the two differ."""
    if spec.kind == "poses":
        return read_pose_json(spec.poses, num_frames)
    kf = trajectory_keyframes(spec)
    theta, phi = (interpolate_keyframes(v, num_frames) for v in (kf.theta, kf.phi))
    if r_spline == "fraction":
        r = interpolate_keyframes(kf.r, num_frames)
    elif r_spline == "distance":
        r = interpolate_keyframes(np.asarray(kf.r, np.float64) * radius, num_frames) / radius
    else:
        raise ValueError(f"unknown r spline {r_spline!r}; one of {R_SPLINES}")
    return orbit_source_to_target(theta, phi, r, radius=radius)


def scene_radius(first_depth: np.ndarray, radius_scale: float, max_radius: float) -> float:
    """Depth at the first frame's centre pixel × radius_scale, capped at max_radius."""
    h, w = first_depth.shape
    return float(min(first_depth[h // 2, w // 2] * radius_scale, max_radius))
