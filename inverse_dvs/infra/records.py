"""What each stage's record depends on, for the current config — shared by a stage (to decide whether an item is
up to date) and by the stages after it (to refuse artifacts made with other settings, `artifacts.upstream`).

Stages never import each other; they meet here and on disk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import Config, TrajectorySpec, VideoSpec, read_prompt, resolve_path, section_dict
from ..core.ddim import inversion_end, sampling_schedule
from .artifacts import input_hashes, read_meta, sha256, upstream
from .layout import caption_dir, depth_dir, render_file, result_dir


def depth_depends(cfg: Config, video: VideoSpec) -> dict:
    """The depth stage: backend settings, frame selection, resize policy and the size depth is computed at."""
    d = cfg.depth
    backend_keys = {"depth_anything": ("model",), "npz": ("npz_path", "npz_kind", "npz_key"), "ground_truth": ()}
    keys = ("backend", *backend_keys[d.backend], "repair_invalid")
    if d.backend != "ground_truth" and (d.backend == "depth_anything" or d.npz_kind == "disparity"):
        keys += ("mapping",) + (("near", "far", "stabilize", "ema") if d.mapping == "percentile" else ())
    depth = {k: getattr(d, k) for k in keys}
    camera = {k: getattr(cfg.camera, k) for k in ("num_frames", "start", "stride", "pad_short", "resize")}
    return {"depth": depth, "camera": camera, "size": list(cfg.warp_hw(video))}


def depth_source(cfg: Config, video_path: str) -> Path | None:
    """The file the depth of a video is imported from (`npz`, `ground_truth` backends); None when it is estimated."""
    p = Path(video_path)
    if cfg.depth.backend == "npz":
        return Path(resolve_path(cfg.depth.npz_path.format(dir=p.parent, stem=p.stem, name=p.stem),
                                 Path(cfg.base_dir)))
    if cfg.depth.backend == "ground_truth":
        return p.with_name(f"{p.stem}_depth.npz")
    return None


WINDOW_KEYS = ("window", "overlap", "last_window", "stitch")  # camera keys of long clips (README → Long videos)


def window_settings(cfg: Config) -> dict:
    """The camera's window keys where they can matter (a clip that may be longer than one window), else {}: records
    of clips that fit one window stay as they were before long clips existed."""
    return {k: getattr(cfg.camera, k) for k in WINDOW_KEYS} if cfg.may_window else {}


def warp_depends(cfg: Config, traj: TrajectorySpec) -> dict:
    camera = {k: v for k, v in section_dict(cfg.camera).items() if k not in WINDOW_KEYS}  # depth and warp: per frame
    return {"camera": camera, "warp": section_dict(cfg.warp),
            "trajectory": {k: v for k, v in dataclasses.asdict(traj).items() if v is not None}}


def t_starts(cfg: Config) -> list[int]:
    """Distinct first sampling timesteps of the inference sweep (steps × strength)."""
    return sorted({sampling_schedule(n, s).t_start for n in cfg.inference.steps for s in cfg.inference.strength})


def inversion_ends(cfg: Config) -> list[int]:
    """Distinct timesteps the stored inversions end at (one file each)."""
    return sorted({inversion_end(cfg.inversion.end, t) for t in t_starts(cfg)})


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
    """The `model` section as it applied: `vae_tiling` resolved (`cogvideo.resolve_vae_tiling`), since tiled and
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


# list-valued inference keys: each combination is one run, named in its run_tag
SWEEP_KEYS = ("steps", "strength", "guidance_scale", "preservation_scale", "k_order", "adaptive_order", "seeds")


@dataclass(frozen=True)
class SweepPoint:
    steps: int
    strength: float
    guidance_scale: float
    preservation_scale: float
    k_order: float | None  # None: not used (reference noise initialisation)
    adaptive_order: float | None
    seed: int

    def run_tag(self, prefix: str, cache: str = "none") -> str:
        """`{prefix}_steps…_str…_cfg…_pres…[_k…_d…]_seed…[_cache-…]` (the cache only when one is on)."""

        def n(x) -> str:
            return "none" if x is None else f"{x:g}"

        orders = "" if self.k_order is None else f"_k{n(self.k_order)}_d{n(self.adaptive_order)}"
        return (f"{prefix}_steps{self.steps}_str{n(self.strength)}_cfg{n(self.guidance_scale)}"
                f"_pres{n(self.preservation_scale)}{orders}_seed{self.seed}"
                + ("" if cache == "none" else f"_cache-{cache}"))


def run_prefix(cfg: Config) -> str:
    """The method, plus a short hash when a non-sweep key was set away from the method's preset, so outputs of
    different settings sit side by side instead of replacing each other."""
    custom = [(k, v) for k, v in cfg.custom if k.split(".", 1)[1] not in SWEEP_KEYS and k != "inference.cache"]
    if not custom:
        return cfg.method
    return f"{cfg.method}+{hashlib.sha256(json.dumps(custom, sort_keys=True).encode()).hexdigest()[:6]}"


def sweep(cfg: Config, log=None) -> list[SweepPoint]:
    """Every combination of the list-valued inference keys, once each (k and δ dropped where unused)."""
    inf = cfg.inference
    seeds = inf.seeds or [cfg.run.seed]
    uses_orders = inf.noise_init == "adaptive"
    if not uses_orders and (len(set(inf.k_order)) > 1 or len(set(inf.adaptive_order)) > 1):
        (log or logging.getLogger("inverse_dvs")).warning(
            "inference.k_order %s / adaptive_order %s have no effect with inference.noise_init: reference (its "
            "adaptive step reduces to order 2; README → Fidelity): each other combination runs once.", inf.k_order,
            inf.adaptive_order)
    points = []
    for steps, strength, g, p, k, d, seed in itertools.product(inf.steps, inf.strength, inf.guidance_scale,
                                                               inf.preservation_scale, inf.k_order,
                                                               inf.adaptive_order, seeds):
        points.append(SweepPoint(steps, strength, g, g if p is None else p, k if uses_orders else None,
                                 d if uses_orders else None, seed))
    return list(dict.fromkeys(points))  # repeated combinations (e.g. preservation null = a listed value) run once


def output_fps(cfg: Config, video: VideoSpec, traj: TrajectorySpec) -> float:
    """The frame rate outputs are written at: `inference.fps`, else the render's (from its warp record), else 8."""
    return cfg.inference.fps or (read_meta(result_dir(cfg.work_dir, traj.name, video.name)) or {}).get("fps", 8.0)


def infer_depends(cfg: Config, pt: SweepPoint, prompt: str, fps: float, vae_tiling: bool) -> dict:
    """The inference stage's record for one sweep point."""
    inf = {k: v for k, v in section_dict(cfg.inference).items() if k not in SWEEP_KEYS}
    return {"point": asdict(pt), "inference": inf, "fps": fps, "prompt": prompt, "slm": section_dict(cfg.slm),
            "model": model_settings(cfg, vae_tiling), "model_id": cfg.inversion.model, "dtype": cfg.run.dtype} | (
        {"windows": w} if (w := window_settings(cfg)) else {})
