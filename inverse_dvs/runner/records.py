"""What each stage's record depends on, for the current config — shared by a stage (to decide whether an item is
up to date) and by the stages after it (to refuse artifacts made with other settings, `artifacts.upstream`).

Stages never import each other; they meet here and on disk.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from pathlib import Path

from ..config import Config, TrajectorySpec, VideoSpec, read_prompt, section_dict, warp_hw
from ..infra.artifacts import input_hashes, read_meta, sha256, upstream
from ..infra.layout import caption_dir, depth_dir, render_file, result_dir
from ..infra.video_io import FrameSelection
from ..pipeline.schedule import SWEEP_KEYS, SweepPoint, inversion_ends


def depth_depends(cfg: Config, video: VideoSpec) -> dict:
    """The depth stage: backend settings, frame selection, resize policy and the size depth is computed at."""
    d = cfg.depth
    backend_keys = {"depth_anything": ("model",), "npz": ("npz_path", "npz_kind", "npz_key"), "ground_truth": ()}
    keys = ("backend", *backend_keys[d.backend], "repair_invalid")
    if d.backend != "ground_truth" and (d.backend == "depth_anything" or d.npz_kind == "disparity"):
        keys += ("mapping",) + (("near", "far", "stabilize", "ema") if d.mapping == "percentile" else ())
    depth = {k: getattr(d, k) for k in keys}
    if depth.get("mapping") == "reference":
        depth["arithmetic"] = "float32"  # the official float32 operations: depth of the earlier float64 ones is redone
    camera = {k: getattr(cfg.camera, k) for k in ("num_frames", "start", "stride", "pad_short", "resize")}
    return {"depth": depth, "camera": camera, "size": list(warp_hw(cfg, video))}


WINDOW_KEYS = ("window", "overlap", "last_window", "stitch")  # camera keys of long clips (README → Long videos)


def window_settings(cfg: Config) -> dict:
    """The camera's window keys where they can matter (a clip that may be longer than one window), else {}: records
    of clips that fit one window stay as they were before long clips existed."""
    return {k: getattr(cfg.camera, k) for k in WINDOW_KEYS} if cfg.may_window else {}


def warp_depends(cfg: Config, traj: TrajectorySpec) -> dict:
    camera = {k: v for k, v in section_dict(cfg.camera).items() if k not in WINDOW_KEYS}  # depth and warp: per frame
    if camera["pose_arithmetic"] == "float64":
        del camera["pose_arithmetic"]  # its default: records made before the key existed stay valid
    warp = section_dict(cfg.warp)
    if warp["splat"] == "reference":
        warp["arithmetic"] = "float32"  # the official float32 operations: renders of the earlier splat are redone
    return {"camera": camera, "warp": warp,
            "trajectory": {k: v for k, v in dataclasses.asdict(traj).items() if v is not None}}


def caption_depends(cfg: Config) -> dict:
    """The caption stage: its settings, the frames it sees and the text encoder that bounds the caption's length."""
    camera = {k: getattr(cfg.camera, k) for k in ("num_frames", "start", "stride", "pad_short", "resize", "height",
                                                   "width")}
    return {"caption": section_dict(cfg.caption), "camera": camera, "text_encoder": cfg.inversion.model}


def caption_folder(cfg: Config, video: VideoSpec, traj: TrajectorySpec | None) -> Path:
    """Where the caption a (video, trajectory) uses lives: one per video, or one per render (`source: render`)."""
    return caption_dir(cfg.work_dir, video.name, traj.name if cfg.caption.source == "render" and traj else None)


def video_prompt(cfg: Config, video: VideoSpec, traj: TrajectorySpec) -> str:
    """The prompt of a video: the user's (config `prompt`, then `prompts/{name}.txt`) when given, else its caption
    (`caption.source` source/render, checked against its record: UserError naming the caption stage when missing or
    stale), else "" (`caption.source: off`)."""
    user = read_prompt(video)
    if user or cfg.caption.source == "off":
        return user
    folder = caption_folder(cfg, video, traj)
    if cfg.caption.source == "render":
        inputs = {"render": sha256(render_file(cfg.work_dir, traj.name, video.name))}
    else:
        inputs = {"video": sha256(video.path)}
    upstream(folder, "caption", caption_depends(cfg), {"prompt": folder / "prompt.txt"}, inputs,
             what=f"caption of video '{video.name}'")
    return (folder / "prompt.txt").read_text(encoding="utf-8").strip()


def inversion_prompt(cfg: Config, video: VideoSpec, traj: TrajectorySpec) -> str:
    return video_prompt(cfg, video, traj) if cfg.inversion.prompt == "video" else ""


def model_settings(cfg: Config, vae_tiling: bool) -> dict:
    """The `model` section as it applied: `vae_tiling` resolved (`models.placement.resolve_vae_tiling`), since tiled and
    untiled VAE passes give different latents and `auto` can resolve either way on another GPU."""
    return section_dict(cfg.model) | {"vae_tiling": "on" if vae_tiling else "off"}


def invert_depends(cfg: Config, prompt: str, vae_tiling: bool) -> dict:
    inv = section_dict(cfg.inversion)
    inv.pop("preview", None)
    return {"inversion": inv, "model": model_settings(cfg, vae_tiling), "prompt": prompt, "ends": inversion_ends(cfg),
            "camera": {k: getattr(cfg.camera, k) for k in ("num_frames", "height", "width", "resize")}
            | window_settings(cfg), "dtype": cfg.run.dtype, "seed": cfg.run.seed}


def depth_chain(cfg: Config, video: VideoSpec, traj: TrajectorySpec) -> dict[str, str]:
    """The warp stage's inputs: sha256 of the video, the trajectory file (if any) and the depth, after checking that
    the depth was made from this video with the current config (UserError naming the stage to rerun otherwise;
    UpstreamBusy while another process computes it)."""
    ddir = depth_dir(cfg.work_dir, video.name)
    files = {"video": video.path}
    if traj.file or traj.poses:
        files["trajectory"] = traj.file or traj.poses
    hashes = input_hashes(files)
    return hashes | upstream(ddir, "depth", depth_depends(cfg, video), {"depth": ddir / "depth.npz"},
                             {"video": hashes["video"]}, what=f"depth of video '{video.name}'")


def render_chain(cfg: Config, video: VideoSpec, traj: TrajectorySpec) -> dict[str, str]:
    """`depth_chain`, then the same check of the warp results; adds the sha256 of render, masks and input."""
    rdir = result_dir(cfg.work_dir, traj.name, video.name)
    hashes = depth_chain(cfg, video, traj)
    return hashes | upstream(rdir, "warp", warp_depends(cfg, traj),
                             {"render": render_file(cfg.work_dir, traj.name, video.name), "masks": rdir / "masks.npz",
                              "input": rdir / "input.mp4"},
                             hashes, what=f"render of video '{video.name}' along '{traj.name}'")


def fps_change(cfg: Config, source_fps: float, frames: int, name: str) -> str | None:
    """The warning for outputs written at another frame rate than their source's (`inference.fps` set), or None: the
    clip then plays faster or slower than it was filmed."""
    fps = cfg.inference.fps
    if not fps or abs(fps - source_fps) <= 0.01 * source_fps:
        return None
    used = FrameSelection.of(cfg).count(frames) if cfg.camera.num_frames not in ("all", "auto") else frames
    return (f"video '{name}' plays at {source_fps:.3g} fps, but inference.fps is {fps:g}: its outputs play "
            f"{fps / source_fps:.2f}× as fast, {used / source_fps:.1f} s of video in {used / fps:.1f} s. Remove "
            "inference.fps (null: the source's rate) to keep its timing.")


def output_fps(cfg: Config, video: VideoSpec, traj: TrajectorySpec) -> float:
    """The frame rate outputs are written at: `inference.fps`, else the render's (from its warp record), else 8."""
    return cfg.inference.fps or (read_meta(result_dir(cfg.work_dir, traj.name, video.name)) or {}).get("fps", 8.0)


def infer_depends(cfg: Config, pt: SweepPoint, prompt: str, fps: float, vae_tiling: bool) -> dict:
    """The inference stage's record for one sweep point."""
    inf = {k: v for k, v in section_dict(cfg.inference).items() if k not in SWEEP_KEYS}
    slm = section_dict(cfg.slm)
    if slm["generator"] == "stream":
        del slm["generator"]  # its default: records made before the key existed stay valid
    return {"point": asdict(pt), "inference": inf, "fps": fps, "prompt": prompt, "slm": slm,
            "model": model_settings(cfg, vae_tiling), "model_id": cfg.inversion.model, "dtype": cfg.run.dtype} | (
        {"windows": w} if (w := window_settings(cfg)) else {})
