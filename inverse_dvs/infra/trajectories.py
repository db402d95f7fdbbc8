"""Camera paths from the config: trajectory files (3 lines θ/φ/r), pose files (JSON camera-to-world), presets and
inline keyframes → checked keyframes and per-frame `source_to_target`; every problem a UserError naming the file or
key. The maths is `core.camera`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.camera import Keyframes, invert_rigid, keyframe_path, keyframes_problem, preset_keyframes, rigid_problem
from .errors import UserError


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


def read_pose_json(path: str | Path, num_frames: int | None) -> np.ndarray:
    """A JSON list of T camera-to-world 4×4 matrices (OpenCV axes, world = any frame) → source_to_target [T,4,4].

    The first pose is taken as the source camera, so `source_to_target[i] = inv(c2w[i]) @ c2w[0]`. The JSON may be a
    bare list or an object with key `camera_to_world`. `num_frames`: the clip's frame count the file must match (None:
    not checked, e.g. `camera.num_frames: all` before the video is read).
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
    if num_frames is not None and c2w.shape[0] != num_frames:
        raise UserError(f"pose file '{path}' has {c2w.shape[0]} poses but the clip has {num_frames} frames "
                        "(camera.num_frames, or the video's frame count with `all`); give one camera-to-world matrix "
                        "per frame.")
    problem = rigid_problem(c2w)
    if problem:
        raise UserError(f"pose file '{path}': {problem}.")
    return invert_rigid(c2w) @ c2w[0]


def check_keyframes(kf: Keyframes, where: str) -> None:
    """UserError naming `where` when the keyframes are unusable (`core.camera.keyframes_problem`)."""
    problem = keyframes_problem(kf)
    if problem:
        raise UserError(f"{where}: {problem}.")


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




def trajectory_source_to_target(spec, num_frames: int, radius: float, r_spline: str = "fraction",
                                arithmetic: str = "float64") -> np.ndarray:
    """A config TrajectorySpec → source_to_target [T, 4, 4] float64 (`core.camera.keyframe_path`)."""
    if spec.kind == "poses":
        return read_pose_json(spec.poses, num_frames)
    return keyframe_path(trajectory_keyframes(spec), num_frames, radius, r_spline, arithmetic)
