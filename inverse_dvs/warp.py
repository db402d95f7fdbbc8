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

import numpy as np

from .config import Config, Selection, TrajectorySpec, VideoSpec, model_hw, select, warp_hw
from .core.camera import invert_rigid
from .infra.artifacts import save_npz, write_json
from .infra.layout import result_dir
from .infra.video_io import FrameSelection, read_clip, write_video
from .pipeline import InverseDVSPipeline, visible_fractions
from .runner.cli import get_logger, run_stage
from .runner.inputs import load_scene
from .runner.records import depth_chain, warp_depends
from .runner.workqueue import Item, StageRunner, process_state

STAGE = "warp"


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


def _warp_item(cfg: Config, pipe: InverseDVSPipeline, folder: Path, *, video: VideoSpec, traj: TrajectorySpec
               ) -> tuple[list[str], dict]:
    """Warp one video along one trajectory at the warp size; write the render, masks and cameras at the model size."""
    c = cfg.camera
    hw, model_size = warp_hw(cfg, video), model_hw(cfg, video)
    clip, depth, _, _ = load_scene(cfg, video)
    out = pipe.warp(clip.frames, depth, traj, model_hw=model_size,
                    where=f"trajectory '{traj.name}', video '{video.name}'")
    frac = visible_fractions(out.visibility)
    # the input as the model sees it
    source = clip.frames if hw == model_size else read_clip(video.path, FrameSelection.of(cfg), model_size,
                                                            c.resize).frames
    c2w = invert_rigid(out.source_to_target)
    # Written side by side: the encoders are ffmpeg processes and zlib releases the GIL, so the three videos, two
    # archives and the plot overlap instead of adding up.
    with ThreadPoolExecutor(6) as pool:
        jobs = [pool.submit(save_npz, folder / "render.npz", frames=out.render),
                pool.submit(write_video, folder / "input.mp4", source, clip.fps),
                pool.submit(write_video, folder / "render.mp4", out.render, clip.fps),
                pool.submit(write_video, folder / "mask.mp4", np.round(out.visibility * 255).astype(np.uint8),
                            clip.fps),
                pool.submit(save_npz, folder / "masks.npz", visible=out.visibility >= 0.5,
                            visibility=out.visibility, visible_warp=out.visible_warp),
                pool.submit(plot_trajectory, folder / "trajectory.png", clip.frames[0], depth[0], out.K, c2w,
                            out.scene_radius)]
        for job in jobs:
            job.result()
    write_json(folder / "cameras.json", {
        "K": out.K.tolist(), "width": hw[1], "height": hw[0], "model_width": model_size[1],
        "model_height": model_size[0], "scene_radius": out.scene_radius,
        "convention": "OpenCV axes (x right, y down, z forward); source_to_target maps points in the source camera "
                      "frame to the target camera frame; camera_to_world is its inverse with the world = the "
                      "source camera frame of the same index; K is for width × height (the warp size)",
        "source_to_target": out.source_to_target.tolist(), "camera_to_world": c2w.tolist()})
    return (["input.mp4", "render.npz", "render.mp4", "mask.mp4", "masks.npz", "cameras.json", "trajectory.png"],
            {"fps": clip.fps, "scene_radius": out.scene_radius,
             "visible_fraction": [round(float(f), 5) for f in frac]})


def run(cfg: Config, selection: Selection | None = None, *, force: bool = False, quiet: bool = False,
        model: InverseDVSPipeline | None = None) -> int:
    """Warp every selected (trajectory, video) (cfg: a resolved config; `model`: the pipeline to warp with, shared
    with other stages of this process, else one is made here). Returns the exit code (0, 1 or 2)."""
    import torch

    from .infra.device import keep_freed_memory, resolve_device

    log = get_logger()
    videos, trajectories = select(cfg, selection)
    state = process_state()
    runner = StageRunner(STAGE, cfg.work_dir, force, log, state, total=len(trajectories) * len(videos))
    pipe = model or InverseDVSPipeline(cfg, device=resolve_device(cfg.run.device, state), log=log)
    pipe.set_progress_bar_config(disable=quiet)
    torch.set_grad_enabled(False)
    if pipe.device.type == "cpu":
        keep_freed_memory()
    for traj in trajectories:
        for v in videos:
            runner.run(Item(video=v.name, trajectory=traj.name), result_dir(cfg.work_dir, traj.name, v.name),
                       warp_depends(cfg, traj), partial(depth_chain, cfg, v, traj),
                       partial(_warp_item, cfg, pipe, video=v, traj=traj))
    return runner.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
