"""Stage 2 — warp every source frame into its target camera → `{work_dir}/results/{trajectory}/{video}/`.

The warp happens at `camera.warp_size` (default: the model size); render and visibility are then resized to the
model size. Writes input.mp4, render.mp4, mask.mp4 (white = visible), masks.npz (`visibility` float32 [T, H, W] in
[0, 1], `visible` bool = visibility ≥ 0.5), cameras.json and trajectory.png (top-down and side view of the camera
path over the first frame's points).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .artifacts import input_hashes, save_npz, write_json
from .cli import get_logger, run_stage
from .config import Config, section_dict, select
from .errors import UserError
from .geometry import intrinsics, invert_rigid, scene_radius, trajectory_source_to_target
from .layout import depth_dir, result_dir
from .video_io import FrameSelection, read_clip, to_model_size, write_video
from .workqueue import StageRunner, process_state

STAGE = "warp"


def _depends(cfg: Config, traj) -> dict:
    return {"camera": section_dict(cfg.camera), "warp": section_dict(cfg.warp),
            "trajectory": {k: v for k, v in dataclasses.asdict(traj).items() if v is not None}}


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


def warp_video(frames: np.ndarray, depth: np.ndarray, K: np.ndarray, source_to_target: np.ndarray, device,
               batch_size: int, max_footprint: int, edge_tolerance: float = 0.05, progress: bool = False,
               splat: str = "zbuffer") -> tuple[np.ndarray, np.ndarray]:
    """frames [T, H, W, 3] uint8, depth [T, H, W] → (render [T, H, W, 3] uint8, visible [T, H, W] bool)."""
    import torch
    from tqdm import tqdm

    from .splat import warp_frames

    renders, visible = [], []
    Kt = torch.as_tensor(K, dtype=torch.float32, device=device)
    for s in tqdm(range(0, len(frames), batch_size), desc="warp", unit="batch", disable=not progress):
        col = torch.as_tensor(frames[s:s + batch_size], device=device).permute(0, 3, 1, 2)
        res = warp_frames(col, torch.as_tensor(depth[s:s + batch_size], device=device), Kt,
                          torch.as_tensor(source_to_target[s:s + batch_size], device=device), max_footprint,
                          edge_tolerance, return_depth=False, mode=splat)
        renders.append(res.image.permute(0, 2, 3, 1).cpu().numpy())
        visible.append(res.visible.cpu().numpy())
    return np.concatenate(renders), np.concatenate(visible)


def plot_trajectory(path: Path, first_frame: np.ndarray, first_depth: np.ndarray, K: np.ndarray,
                    camera_to_world: np.ndarray, radius: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .artifacts import atomic_path

    h, w = first_depth.shape
    step = max(1, int(np.sqrt(h * w / 6000)))
    v, u = np.mgrid[0:h:step, 0:w:step] + 0.5
    z = first_depth[::step, ::step]
    x, y = (u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z
    col = first_frame[::step, ::step].reshape(-1, 3) / 255.0
    centers = camera_to_world[:, :3, 3]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, (a, b, la, lb) in zip(axes, ((x, z, "x (right)", "z (forward)"), (z, y, "z (forward)", "y (down)")),
                                  strict=True):
        ax.scatter(a.ravel(), b.ravel(), c=col, s=1)
        ia, ib = (0, 2) if la.startswith("x") else (2, 1)
        ax.plot(centers[:, ia], centers[:, ib], "-", color="tab:red", lw=1.5)
        ax.scatter(centers[:, ia], centers[:, ib], c=np.linspace(0, 1, len(centers)), cmap="cool", s=8, zorder=3)
        ax.scatter([0], [0], marker="*", s=80, c="k", zorder=4, label="source camera")
        ax.set_xlabel(la)
        ax.set_ylabel(lb)
        ax.set_aspect("equal", adjustable="datalim")
    axes[1].invert_yaxis()
    axes[0].set_title(f"top-down (scene radius {radius:.2f})")
    axes[1].set_title("side view")
    axes[0].legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def _body(cfg: Config, args) -> int:
    import torch

    from .runtime import resolve_device

    log = get_logger()
    videos, trajectories = select(cfg, args.only_video, args.only_trajectory)
    state = process_state()
    runner = StageRunner(STAGE, cfg.work_dir, args.force, log, state)
    device = resolve_device(cfg.run.device, state)
    torch.set_grad_enabled(False)
    c = cfg.camera
    hw, model_hw = cfg.warp_hw, (c.height, c.width)
    sel = FrameSelection(c.num_frames, c.start, c.stride, c.pad_short)
    K = intrinsics(hw[0], hw[1], c.intrinsics, c.fov_deg, c.focal, c.cx, c.cy)
    for traj in trajectories:
        for v in videos:
            depth_path = depth_dir(cfg.work_dir, v.name) / "depth.npz"

            def inputs(v=v, traj=traj, depth_path=depth_path) -> dict[str, str]:
                if not depth_path.is_file():
                    raise UserError(f"depth for video '{v.name}' is missing ({depth_path}); run "
                                    "`python -m inverse_dvs.depth` first.")
                files = {"video": v.path, "depth": depth_path}
                for attr in ("file", "poses"):
                    if getattr(traj, attr):
                        files["trajectory"] = getattr(traj, attr)
                return input_hashes(files)

            def compute(folder: Path, v=v, traj=traj, depth_path=depth_path) -> tuple[list[str], dict]:
                clip = read_clip(v.path, sel, hw, c.resize)
                depth = load_depth(depth_path, clip.frames.shape[:3])
                radius = scene_radius(depth[0], c.radius_scale, c.max_radius)
                s2t = trajectory_source_to_target(traj, c.num_frames, radius)
                render, visible = warp_video(clip.frames, depth, K, s2t, device, cfg.warp.batch_size,
                                             cfg.warp.max_footprint, cfg.warp.edge_tolerance,
                                             progress=not args.quiet, splat=cfg.warp.splat)
                render, visibility = to_model_size(render, visible, model_hw)
                # the input as the model sees it
                source = clip.frames if hw == model_hw else read_clip(v.path, sel, model_hw, c.resize).frames
                frac = visibility.reshape(len(visibility), -1).mean(1)
                low = np.flatnonzero(frac < cfg.warp.min_visible_warn)
                if low.size:
                    log.warning("warp trajectory=%s video=%s: %d frame(s) less than %.0f%% visible (lowest %.1f%% at "
                                "frame %d); large disocclusions are where SLM struggles (paper §5).", traj.name,
                                v.name, low.size, 100 * cfg.warp.min_visible_warn, 100 * frac.min(),
                                int(frac.argmin()))
                write_video(folder / "input.mp4", source, clip.fps)
                write_video(folder / "render.mp4", render, clip.fps)
                write_video(folder / "mask.mp4", np.round(visibility * 255).astype(np.uint8), clip.fps)
                save_npz(folder / "masks.npz", visible=visibility >= 0.5, visibility=visibility)
                c2w = invert_rigid(s2t)
                write_json(folder / "cameras.json", {
                    "K": K.tolist(), "width": hw[1], "height": hw[0], "model_width": c.width,
                    "model_height": c.height, "scene_radius": radius,
                    "convention": "OpenCV axes (x right, y down, z forward); source_to_target maps points in the "
                                  "source camera frame to the target camera frame; camera_to_world is its inverse "
                                  "with the world = the source camera frame of the same index",
                    "source_to_target": s2t.tolist(), "camera_to_world": c2w.tolist()})
                plot_trajectory(folder / "trajectory.png", clip.frames[0], depth[0], K, c2w, radius)
                return (["input.mp4", "render.mp4", "mask.mp4", "masks.npz", "cameras.json", "trajectory.png"],
                        {"fps": clip.fps, "scene_radius": radius,
                         "visible_fraction": [round(float(f), 5) for f in frac]})

            runner.run(f"trajectory={traj.name} video={v.name}", result_dir(cfg.work_dir, traj.name, v.name),
                       _depends(cfg, traj), inputs, compute)
    return runner.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
