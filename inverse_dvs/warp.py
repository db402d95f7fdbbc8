"""Stage 2 — warp every source frame into its target camera → `{work_dir}/results/{trajectory}/{video}/`.

The warp happens at `camera.warp_size` (default: the model size); render and visibility are then resized to the
model size (`camera.render_resize`, `camera.mask_resize`). Writes render.npz (`frames` uint8 [T, H, W, 3], lossless:
what the later stages read), render.mp4 and input.mp4 (for viewing), mask.mp4 (white = visible), masks.npz
(`visibility` float32 [T, H, W] in [0, 1] and `visible` bool = visibility ≥ 0.5 at the model size, `visible_warp`
bool [T, h, w] at the warp size: the splat's own mask, before any resize), cameras.json and trajectory.png (top-down
and side view of the camera path over the first frame's points).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .config import Config, TrajectorySpec, VideoSpec, select
from .core.camera import intrinsics, invert_rigid, scene_radius
from .infra.artifacts import save_npz, write_json
from .infra.cli import get_logger, run_stage
from .infra.errors import UserError
from .infra.layout import depth_dir, result_dir
from .infra.records import depth_chain, warp_depends
from .infra.trajectories import trajectory_source_to_target
from .infra.video_io import Clip, FrameSelection, read_clip, to_model_size, write_video
from .infra.workqueue import StageRunner, process_state

STAGE = "warp"


def load_depth(path: Path, expected: tuple[int, int, int]) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"depth '{path}' is missing; run `python -m inverse_dvs.depth` first.")
    with np.load(path, allow_pickle=False) as z:
        depth = np.asarray(z["depth"], dtype=np.float32)
    if depth.shape != expected:
        raise UserError(f"depth '{path}' has shape {depth.shape} but the video gives {expected} (frames, height, "
                        "width); rerun the depth stage with the same camera settings (--force).")
    if not np.isfinite(depth).all() or (depth <= 0).any():
        raise UserError(f"depth '{path}' contains NaN/inf or values <= 0; rerun the depth stage "
                        "(or set depth.repair_invalid: true).")
    return depth


def _warp_batch(start: int, frames: np.ndarray, depth: np.ndarray, K, source_to_target: np.ndarray, device,
                batch_size: int, max_footprint: int, edge_tolerance: float, splat: str
                ) -> tuple[np.ndarray, np.ndarray]:
    """Frames [start, start + batch_size) → (render [b, H, W, 3] uint8, visible [b, H, W] bool); K: [3, 3] float32
    tensor on `device`, the other arrays as in `warp_video`."""
    import torch

    from .core.splat import warp_frames

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
    """frames [T, H, W, 3] uint8, depth [T, H, W] → (render [T, H, W, 3] uint8, visible [T, H, W] bool).

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


def plot_trajectory(path: Path, first_frame: np.ndarray, first_depth: np.ndarray, K: np.ndarray,
                    camera_to_world: np.ndarray, radius: float) -> None:
    """Top-down and side view of the camera path over the first frame's points: the path coloured by frame (colour
    bar), the pivot the orbit turns around, and the source camera; the legend sits outside the plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .infra.artifacts import atomic_path

    h, w = first_depth.shape
    step = max(1, int(np.sqrt(h * w / 6000)))
    v, u = np.mgrid[0:h:step, 0:w:step] + 0.5
    z = first_depth[::step, ::step]
    x, y = (u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z
    col = first_frame[::step, ::step].reshape(-1, 3) / 255.0
    centers = camera_to_world[:, :3, 3]
    frames = np.arange(len(centers))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    path_points = None
    for ax, (a, b, la, lb) in zip(axes, ((x, z, "x (right)", "z (forward)"), (z, y, "z (forward)", "y (down)")),
                                  strict=True):
        ax.scatter(a.ravel(), b.ravel(), c=col, s=1, rasterized=True)
        ia, ib = (0, 2) if la.startswith("x") else (2, 1)
        ax.plot(centers[:, ia], centers[:, ib], "-", color="0.3", lw=0.8, zorder=3)
        path_points = ax.scatter(centers[:, ia], centers[:, ib], c=frames, cmap="viridis", s=14, zorder=4,
                                 label="camera path")
        pivot = (0.0, radius) if ia == 0 else (radius, 0.0)
        ax.scatter([pivot[0]], [pivot[1]], marker="+", s=120, c="tab:red", zorder=5, label="pivot (orbit centre)")
        ax.scatter([0], [0], marker="*", s=90, c="k", zorder=5, label="source camera")
        ax.set_xlabel(la)
        ax.set_ylabel(lb)
        ax.set_aspect("equal", adjustable="datalim")
    axes[1].invert_yaxis()
    axes[0].set_title(f"top-down (scene radius {radius:.2f})")
    axes[1].set_title("side view")
    fig.colorbar(path_points, ax=axes, label="frame", fraction=0.03, pad=0.02)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.subplots_adjust(bottom=0.2, right=0.86)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


class Scene(NamedTuple):
    """What a video is warped from: its clip at the warp size, the depth stage's depth, K and the scene radius."""

    clip: Clip
    depth: np.ndarray  # [T, h, w] float32
    K: np.ndarray  # [3, 3] at the warp size
    radius: float


def load_scene(cfg: Config, video: VideoSpec) -> Scene:
    """The clip (`camera` selection at the warp size), its depth from the depth stage, intrinsics and scene radius."""
    c = cfg.camera
    hw = cfg.warp_hw(video)
    clip = read_clip(video.path, FrameSelection.of(cfg), hw, c.resize)
    depth = load_depth(depth_dir(cfg.work_dir, video.name) / "depth.npz", clip.frames.shape[:3])
    return Scene(clip, depth, intrinsics(hw[0], hw[1], c.intrinsics, c.fov_deg, c.focal, c.cx, c.cy),
                 scene_radius(depth[0], c.radius_scale, c.max_radius))


def render_path(cfg: Config, frames: np.ndarray, depth: np.ndarray, K: np.ndarray, source_to_target: np.ndarray,
                device, model_hw: tuple[int, int], progress: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp frames [T, h, w, 3] uint8 with their depth along the cameras, then resize to `model_hw` as the config says
    → (render [T, H, W, 3] uint8, visibility [T, H, W] float32, the splat's visible [T, h, w] bool)."""
    c, w = cfg.camera, cfg.warp
    # the official resize works on the float render (colours in [0, 1]) and truncates once at the model size
    colors = frames.astype(np.float32) / 255.0 if c.render_resize == "reference" else frames
    render, visible = warp_video(colors, depth, K, source_to_target, device, w.batch_size, w.max_footprint,
                                 w.edge_tolerance, progress=progress, splat=w.splat)
    render, visibility = to_model_size(render, visible, model_hw, c.render_resize, c.mask_resize)
    return render, visibility, visible


def _warp_item(cfg: Config, device, quiet: bool, folder: Path, *, video: VideoSpec, traj: TrajectorySpec
               ) -> tuple[list[str], dict]:
    """Warp one video along one trajectory at the warp size; write the render, masks and cameras at the model size."""
    c = cfg.camera
    hw, model_hw = cfg.warp_hw(video), cfg.model_hw(video)
    clip, depth, K, radius = load_scene(cfg, video)
    s2t = trajectory_source_to_target(traj, len(clip.frames), radius, c.r_spline)  # spread over the whole clip
    render, visibility, visible = render_path(cfg, clip.frames, depth, K, s2t, device, model_hw, progress=not quiet)
    frac = visibility.reshape(len(visibility), -1).mean(1)
    check_visible(frac, cfg.warp.min_visible_warn, f"trajectory '{traj.name}', video '{video.name}'", get_logger())
    # the input as the model sees it
    source = clip.frames if hw == model_hw else read_clip(video.path, FrameSelection.of(cfg), model_hw, c.resize).frames
    c2w = invert_rigid(s2t)
    # Written side by side: the encoders are ffmpeg processes and zlib releases the GIL, so the three videos, two
    # archives and the plot overlap instead of adding up.
    with ThreadPoolExecutor(6) as pool:
        jobs = [pool.submit(save_npz, folder / "render.npz", frames=render),
                pool.submit(write_video, folder / "input.mp4", source, clip.fps),
                pool.submit(write_video, folder / "render.mp4", render, clip.fps),
                pool.submit(write_video, folder / "mask.mp4", np.round(visibility * 255).astype(np.uint8), clip.fps),
                pool.submit(save_npz, folder / "masks.npz", visible=visibility >= 0.5, visibility=visibility,
                            visible_warp=visible),
                pool.submit(plot_trajectory, folder / "trajectory.png", clip.frames[0], depth[0], K, c2w, radius)]
        for job in jobs:
            job.result()
    write_json(folder / "cameras.json", {
        "K": K.tolist(), "width": hw[1], "height": hw[0], "model_width": model_hw[1], "model_height": model_hw[0],
        "scene_radius": radius,
        "convention": "OpenCV axes (x right, y down, z forward); source_to_target maps points in the source camera "
                      "frame to the target camera frame; camera_to_world is its inverse with the world = the "
                      "source camera frame of the same index; K is for width × height (the warp size)",
        "source_to_target": s2t.tolist(), "camera_to_world": c2w.tolist()})
    return (["input.mp4", "render.npz", "render.mp4", "mask.mp4", "masks.npz", "cameras.json", "trajectory.png"],
            {"fps": clip.fps, "scene_radius": radius, "visible_fraction": [round(float(f), 5) for f in frac]})


def check_visible(frac: np.ndarray, warn_below: float, where: str, log) -> None:
    """Per-frame visible fractions [T]: a frame with nothing visible is an error (SLM has nothing to fill it from);
    frames below `warn_below` get a warning."""
    empty = np.flatnonzero(frac <= 0)
    if empty.size:
        listed = ", ".join(map(str, empty[:8])) + ("…" if empty.size > 8 else "")
        raise UserError(f"{where}: frame(s) {listed} are fully occluded after warping — the camera sees nothing the "
                        "source saw (e.g. it turned away or went behind a surface). Use smaller angles or radius "
                        "(θ/φ/r keyframes, or the preset's amount), or check the depth of those frames.")
    low = np.flatnonzero(frac < warn_below)
    if low.size:
        log.warning("%s: %d frame(s) less than %.0f%% visible (lowest %.1f%% at frame %d); large disocclusions are "
                    "where SLM struggles (paper §5).", where, low.size, 100 * warn_below, 100 * frac.min(),
                    int(frac.argmin()))


def _body(cfg: Config, args) -> int:
    import torch

    from .infra.device import keep_freed_memory, resolve_device

    log = get_logger()
    videos, trajectories = select(cfg, args.only_video, args.only_trajectory)
    state = process_state()
    runner = StageRunner(STAGE, cfg.work_dir, args.force, log, state)
    device = resolve_device(cfg.run.device, state)
    torch.set_grad_enabled(False)
    if device.type == "cpu":
        keep_freed_memory()
    for traj in trajectories:
        for v in videos:
            runner.run(f"trajectory={traj.name} video={v.name}", result_dir(cfg.work_dir, traj.name, v.name),
                       warp_depends(cfg, traj), partial(depth_chain, cfg, v, traj),
                       partial(_warp_item, cfg, device, args.quiet, video=v, traj=traj))
    return runner.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
