"""The method's pixel-side steps over whole clips (paper §4.1–4.2): disparity → checked depth, the trajectory's
cameras, and the forward warp of every frame into its camera, resized to the model size. Arrays in and out; the
maths is `core` (disparity, camera, splat), the file formats `infra`.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import NamedTuple

import numpy as np

from ..core.camera import Keyframes, intrinsics, invert_rigid, keyframe_path, rigid_problem, scene_radius
from ..core.disparity import depth_from_disparity
from ..infra.errors import UserError
from ..infra.trajectories import check_keyframes, trajectory_source_to_target
from ..infra.video_io import to_model_size


# ----------------------------------------------------------------------------------------------------------- depth
def _repair(values: np.ndarray, bad: np.ndarray, where: str, what: str, repair: bool,
            log: logging.Logger) -> np.ndarray:
    """Replace `bad` entries of values [T, H, W] by each frame's median valid value (depth.repair_invalid), or fail."""
    if not bad.any():
        return values
    frames = sorted({int(i) for i in np.nonzero(bad)[0]})
    msg = (f"{where}: {int(bad.sum())} {what} values are invalid (frames {frames[:5]}"
           f"{'…' if len(frames) > 5 else ''}).")
    if not repair:
        raise UserError(msg + " Fix the depth source, or set depth.repair_invalid: true to replace them with "
                              f"each frame's median valid {what}.")
    log.warning("%s Replaced with each frame's median valid %s (depth.repair_invalid).", msg, what)
    values = values.copy()
    for t in frames:
        good = values[t][~bad[t]]
        if good.size == 0:
            raise UserError(f"{where}: frame {t} has no valid {what} value at all; cannot repair. Fix the depth "
                            "source for that frame.")
        values[t][bad[t]] = np.median(good)
    return values


def validate_depth(depth: np.ndarray, where: str, repair: bool, log: logging.Logger) -> np.ndarray:
    """Depth [T, H, W] must be finite and > 0 everywhere. Repair (if enabled) replaces bad pixels with the frame
    median; otherwise a UserError naming `where`."""
    return _repair(depth, ~np.isfinite(depth) | (depth <= 0), where, "depth (NaN, inf or <= 0)", repair, log)


def validate_disparity(disp: np.ndarray, where: str, repair: bool, log: logging.Logger) -> np.ndarray:
    """Disparity [T, H, W] must be finite (NaN/inf repaired like depth with repair_invalid) and must vary: a constant
    or all-zero map has no geometry (a failed estimate or the wrong array)."""
    disp = _repair(disp, ~np.isfinite(disp), where, "disparity (NaN or inf)", repair, log)
    flat = [t for t in range(len(disp)) if float(disp[t].max() - disp[t].min()) <= 1e-12 * max(1.0, abs(
        float(disp[t].max())))]
    if len(flat) == len(disp):
        raise UserError(f"{where}: the disparity is constant{' zero' if not disp.any() else ''} in every frame, so it "
                        "carries no geometry. Check the depth file (its key with depth.npz_key, its kind with "
                        "depth.npz_kind) or the depth model.")
    if flat:
        msg = f"{where}: the disparity is constant in frames {flat[:5]}{'…' if len(flat) > 5 else ''} (no geometry)."
        if not repair:
            raise UserError(msg + " Fix the depth source, or set depth.repair_invalid: true to give those frames the "
                                  "nearest valid frame's disparity.")
        log.warning("%s Using the nearest valid frame's disparity (depth.repair_invalid).", msg)
        disp = disp.copy()
        valid = [t for t in range(len(disp)) if t not in flat]
        for t in flat:
            disp[t] = disp[min(valid, key=lambda v, t=t: abs(v - t))]
    return disp


def depth_of_disparity(cfg, disp: np.ndarray, where: str, log: logging.Logger,
                       value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Relative disparity [T, H, W] (larger = nearer) → checked depth [T, H, W] float32 with the config's mapping
    (`depth.mapping`, stabilisation, near/far; `value_range`: the (min, max) of the whole file it was selected from,
    which the `reference` mapping normalises over)."""
    d = cfg.depth
    disp = validate_disparity(disp, where, d.repair_invalid, log)
    depth = depth_from_disparity(disp, d.mapping, d.near, d.far, d.stabilize, d.ema, value_range)
    return validate_depth(depth, where, d.repair_invalid, log).astype(np.float32)


# --------------------------------------------------------------------------------------------------------- cameras
def camera_geometry(cfg, hw: tuple[int, int], first_depth: np.ndarray) -> tuple[np.ndarray, float]:
    """The intrinsics K [3, 3] at the warp size `hw` (`camera.intrinsics`, `fov_deg`, `focal`, `cx`, `cy`) and the
    scene radius ρ a trajectory's r is a fraction of (`camera.radius_scale`, `max_radius`, from the first frame's
    depth [h, w])."""
    c = cfg.camera
    return (intrinsics(hw[0], hw[1], c.intrinsics, c.fov_deg, c.focal, c.cx, c.cy),
            scene_radius(first_depth, c.radius_scale, c.max_radius))


def source_to_target(trajectory, num_frames: int, radius: float, r_spline: str,
                     arithmetic: str = "float64") -> np.ndarray:
    """The per-frame cameras of a trajectory → source_to_target [T, 4, 4] float64 (keyframes: `camera.r_spline`,
    `camera.pose_arithmetic`, see `core.camera.keyframe_path`).

    `trajectory`: a config `TrajectorySpec`; `core.camera.Keyframes`; or camera-to-world poses [T, 4, 4] (OpenCV
    axes, the first is the source camera, as in a JSON pose file). UserError naming `trajectory` when it is unusable
    (keyframes out of range, poses that are not rigid or of another frame count)."""
    if isinstance(trajectory, Keyframes):
        check_keyframes(trajectory, "trajectory")
        return keyframe_path(trajectory, num_frames, radius, r_spline, arithmetic)
    if isinstance(trajectory, np.ndarray):
        c2w = check_poses(trajectory, num_frames)
        return invert_rigid(c2w) @ c2w[0]
    return trajectory_source_to_target(trajectory, num_frames, radius, r_spline, arithmetic)


def check_poses(poses: np.ndarray, num_frames: int) -> np.ndarray:
    """Camera-to-world poses given as the `trajectory` → float64 [T, 4, 4], checked: one per frame of the clip
    (`num_frames`), each a rigid transform; UserError naming `trajectory` otherwise."""
    c2w = np.asarray(poses, dtype=np.float64)
    if c2w.shape != (num_frames, 4, 4):
        raise UserError(f"trajectory: camera-to-world poses must be [T, 4, 4] with T = {num_frames} (one per frame "
                        f"of the clip), got {tuple(c2w.shape)}.")
    if problem := rigid_problem(c2w):
        raise UserError(f"trajectory: the poses are not rigid camera-to-world matrices: {problem}.")
    return c2w


# ------------------------------------------------------------------------------------------------------------ warp
def _warp_batch(start: int, frames: np.ndarray, depth: np.ndarray, K, source_to_target: np.ndarray, device,
                batch_size: int, max_footprint: int, edge_tolerance: float, splat: str
                ) -> tuple[np.ndarray, np.ndarray]:
    """Frames [start, start + batch_size) → (render [b, H, W, 3], visible [b, H, W] bool); K: [3, 3] float32 tensor
    on `device`, the other arrays as in `warp_video`."""
    import torch

    from ..core.splat import warp_frames

    end = start + batch_size
    with torch.no_grad():  # grad mode is per thread
        res = warp_frames(torch.as_tensor(frames[start:end], device=device).permute(0, 3, 1, 2),
                          torch.as_tensor(depth[start:end], device=device), K,
                          torch.as_tensor(source_to_target[start:end], device=device), max_footprint,
                          edge_tolerance, return_depth=False, mode=splat)
    return res.image.permute(0, 2, 3, 1).cpu().numpy(), res.visible.cpu().numpy()


def warp_video(frames: np.ndarray, depth: np.ndarray, K: np.ndarray, source_to_target: np.ndarray, device,
               batch_size: int, max_footprint: int, edge_tolerance: float = 0.05, progress: bool = False,
               splat: str = "zbuffer") -> tuple[np.ndarray, np.ndarray]:
    """frames [T, H, W, 3] (uint8, or float in [0, 1]), depth [T, H, W] → (render [T, H, W, 3] of the frames' dtype,
    visible [T, H, W] bool). The inputs are never changed.

    On CPU the batches run in parallel, one per thread of torch's intra-op pool, each on a single intra-op thread:
    much of a warp is ops that run on one core anyway (cumulative sums, sorts, scatters, compaction), so this
    uses the cores better than splitting every op (2 cores: 1.1–1.3× for the z-buffer, ~1.8× for the soft splat)."""
    import torch
    from tqdm import tqdm

    one = partial(_warp_batch, frames=frames, depth=depth,
                  K=torch.as_tensor(K, dtype=torch.float32, device=device), source_to_target=source_to_target,
                  device=device, batch_size=batch_size, max_footprint=max_footprint, edge_tolerance=edge_tolerance,
                  splat=splat)
    starts = range(0, len(frames), batch_size)
    threads = torch.get_num_threads()
    parallel = torch.device(device).type == "cpu" and threads > 1 and len(starts) > 1
    parts = []
    with tqdm(total=len(starts), desc="warp", unit="batch", disable=not progress) as bar, \
            ThreadPoolExecutor(threads if parallel else 1) as pool:
        if parallel:
            torch.set_num_threads(1)
        try:
            for part in pool.map(one, starts) if parallel else map(one, starts):  # CUDA work stays on this thread
                parts.append(part)
                bar.update()
        finally:
            if parallel:
                torch.set_num_threads(threads)
    return np.concatenate([r for r, _ in parts]), np.concatenate([v for _, v in parts])


class Rendered(NamedTuple):
    render: np.ndarray  # [T, H, W, 3] uint8 at the model size
    visibility: np.ndarray  # [T, H, W] float32 in [0, 1] at the model size (fractional where the sizes differ)
    visible_warp: np.ndarray  # [T, h, w] bool at the warp size: the splat's own mask


def render_path(cfg, frames: np.ndarray, depth: np.ndarray, K: np.ndarray, source_to_target: np.ndarray, device,
                model_hw: tuple[int, int], progress: bool = False) -> Rendered:
    """Warp frames [T, h, w, 3] uint8 with their depth [T, h, w] into the cameras (source_to_target [T, 4, 4], K at
    h × w), then resize to `model_hw` as the config says (`camera.render_resize`, `mask_resize`, `warp.*`)."""
    c, w = cfg.camera, cfg.warp
    # the official resize works on the float render (colours in [0, 1]) and truncates once at the model size
    colors = frames.astype(np.float32) / 255.0 if c.render_resize == "reference" else frames
    render, visible = warp_video(colors, depth, K, source_to_target, device, w.batch_size, w.max_footprint,
                                 w.edge_tolerance, progress=progress, splat=w.splat)
    render, visibility = to_model_size(render, visible, model_hw, c.render_resize, c.mask_resize)
    return Rendered(render, visibility, visible)


def visible_fractions(visibility: np.ndarray) -> np.ndarray:
    """The visible fraction of each frame: visibility [T, H, W] → [T] float."""
    return visibility.reshape(len(visibility), -1).mean(1)


def visibility_report(fractions: np.ndarray, warn_below: float, where: str) -> tuple[list[str], str | None]:
    """What a warp's per-frame visible fractions [T] call for: warnings for frames below `warn_below`, and the error
    for frames with nothing visible (SLM has nothing to fill them from), or None."""
    error = None
    empty = np.flatnonzero(fractions <= 0)
    if empty.size:
        listed = ", ".join(map(str, empty[:8])) + ("…" if empty.size > 8 else "")
        error = (f"{where}: frame(s) {listed} are fully occluded after warping — the camera sees nothing the source "
                 "saw (e.g. it turned away or went behind a surface). Use smaller angles or radius (θ/φ/r keyframes, "
                 "or the preset's amount), or check the depth of those frames.")
    warnings = []
    low = np.flatnonzero(fractions < warn_below)
    if low.size:
        warnings.append(f"{where}: {low.size} frame(s) less than {100 * warn_below:.0f}% visible (lowest "
                        f"{100 * fractions.min():.1f}% at frame {int(fractions.argmin())}); large disocclusions are "
                        "where SLM struggles (paper §5).")
    return warnings, error
