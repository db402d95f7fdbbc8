"""`InverseDVSPipeline`: dynamic view synthesis as an inverse problem (arXiv 2506.08004), the whole method behind one
object in the diffusers style. Every front end runs it: the stages, the studio, the benchmarks, the tests.

    pipe = InverseDVSPipeline.from_pretrained("THUDM/CogVideoX-5b-I2V")        # or .from_config("config.yml")
    out = pipe(video="clip.mp4", trajectory="orbit_left", prompt="a dog runs on the beach")
    out.frames                                                                # [49, 480, 720, 3] uint8

One call, in the paper's steps (each one public and usable alone, with documented shapes):
1. `estimate_depth`: per-frame depth of the source clip (Depth Anything V2; disparity → depth);
2. `warp`: the trajectory's cameras, and the clip forward-warped into them (render + visibility);
3. `invert`: the render's VAE latents DDIM-inverted to where sampling starts (ε_inv);
4–6. `generate`: SLM and K-RNR at t_start, region-aware guided DDIM, decode — clip by clip in overlapping windows
   for a clip longer than the model's (README → Long videos), with an optional hook that persists each window.

Models load on first use, once per pipeline object (`release` gives their memory back). Settings are the config's
keys with the config's checks: the method's preset (`paper`, `reference`) under what you set.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from ..config import (
    DEFAULT_METHOD,
    SECTIONS,
    Config,
    TrajectorySpec,
    build_trajectory,
    config_from_dict,
    config_with,
    depth_source,
    load_config,
    needed_models,
    resolve_config,
)
from ..core.camera import PRESETS, Keyframes
from ..core.ddim import ddim_invert, ddim_sample, inversion_plan, roundtrip_error
from ..core.guidance import RegionGuidance, uses_cfg
from ..core.krnr import noise_init
from ..core.slm import NothingVisible, stochastic_latent_modulation
from ..core.streams import generator, stream_seed
from ..core.text import even_frames, shorten_caption
from ..core.windows import Window, clip_length, hand_over, plan_windows, stitch
from ..infra.depth_files import load_depth_file
from ..infra.device import resolve_device
from ..infra.errors import ConfigError, UserError
from ..infra.hub import require
from ..infra.video_io import FrameSelection, frame_indices, read_clip, resize_frames, upscaled, video_size
from ..models.caches import StepClock, sampling_cache
from ..models.captioner import captioner
from ..models.depth_anything import depth_model
from ..models.layout import latent_padding
from ..models.placement import release_memory, synchronize
from ..models.vae import decode, sampling_latents
from ..models.video_model import LazyPipeline, ModelStats, alphas_cumprod, lazy_pipeline, oom_hint
from .denoise import guided_v
from .geometry import (
    Rendered,
    camera_geometry,
    check_poses,
    depth_of_disparity,
    render_path,
    source_to_target,
    validate_depth,
    visibility_report,
    visible_fractions,
)
from .latents import ClipMasks, Encoded, Inverted, clip_masks, encode_render, real_frames
from .outputs import Caption, Generated, InverseDVSOutput, WarpOutput, WindowResult
from .schedule import PointPlan, plan_sweep

DEFAULT_MODEL = "THUDM/CogVideoX-5b-I2V"
# the call's sweep arguments → the `inference` keys they set (one value each)
SWEEP_ARGS = {"steps": "steps", "strength": "strength", "guidance_scale": "guidance_scale",
              "preservation_scale": "preservation_scale", "k_order": "k_order", "adaptive_order": "adaptive_order",
              "seed": "seeds"}
# keys a call may not change: a pipeline loads its models once, for these values
MODEL_KEYS = {"run": ("device", "dtype", "compile", "compile_backend"), "inversion": ("model",),
              "model": ("lora", "lora_weight_name", "lora_scale", "offload", "vae_slicing", "vae_tiling"),
              "depth": ("model",), "caption": ("model",)}

WindowHook = Callable[[Window, Callable[[], WindowResult]], WindowResult]


class SourceClip(NamedTuple):
    frames: np.ndarray  # [T, h, w, 3] uint8 at the warp size
    fps: float | None
    source_hw: tuple[int, int]  # (height, width) of the file or array the clip came from


class _Sampled(NamedTuple):
    frames: np.ndarray  # [T, H, W, 3] uint8
    alpha_bar_t_start: float
    sampling_nfe: int
    sampling_seconds: float
    decode_seconds: float


def check_frames(frames, name: str) -> np.ndarray:
    """frames as uint8 [T, H, W, 3]; UserError naming the argument otherwise."""
    a = np.asarray(frames)
    if a.dtype != np.uint8 or a.ndim != 4 or a.shape[-1] != 3 or 0 in a.shape:
        raise UserError(f"{name}: expected RGB frames as a uint8 array [T, H, W, 3], got {a.dtype} "
                        f"{list(a.shape)}. Frames in [0, 1] become uint8 with (x * 255).round().astype(np.uint8); "
                        "drop an alpha channel with x[..., :3].")
    return a


def as_trajectory(trajectory) -> TrajectorySpec | Keyframes | np.ndarray:
    """A camera path in any form the pipeline takes → a `TrajectorySpec`, `Keyframes`, or camera-to-world poses
    [T, 4, 4]: a preset name (`orbit_left`, or several joined by '+'; 20 degrees) or a mapping `{preset, amount}`;
    a 3-line trajectory file (.txt) or a JSON pose file (.json); keyframes `{theta, phi, r}` (degrees, degrees,
    fractions of the scene radius) or `core.camera.Keyframes`; camera-to-world poses [T, 4, 4] (OpenCV axes, the
    first the source camera); or a config's TrajectorySpec. UserError naming `trajectory` otherwise."""
    if isinstance(trajectory, TrajectorySpec | Keyframes):
        return trajectory
    if isinstance(trajectory, np.ndarray) or (isinstance(trajectory, list | tuple) and np.ndim(trajectory) == 3):
        return np.asarray(trajectory, dtype=np.float64)
    if isinstance(trajectory, dict):
        return build_trajectory("trajectory", dict(trajectory), key="trajectory")
    if isinstance(trajectory, str | Path):
        p = Path(trajectory).expanduser()
        if p.is_file():
            return build_trajectory("trajectory", {"poses" if p.suffix == ".json" else "file": str(p.resolve())},
                                    key="trajectory")
        if isinstance(trajectory, str) and all(part in PRESETS for part in trajectory.split("+")):
            return build_trajectory("trajectory", {"preset": trajectory}, key="trajectory")
        raise UserError(f"trajectory: {str(trajectory)!r} is neither a file nor a preset. Presets: "
                        f"{', '.join(PRESETS)} (joined by '+', e.g. orbit_left+arc_up; with an amount: "
                        "{'preset': 'orbit_left', 'amount': 10}); files: a 3-line θ/φ/r trajectory file or a JSON "
                        "pose file.")
    raise UserError(f"trajectory: a {type(trajectory).__name__} is no camera path; give a preset name, a trajectory "
                    "or pose file, keyframes {'theta': [...], 'phi': [...], 'r': [...]}, or camera-to-world poses "
                    "[T, 4, 4].")


@dataclasses.dataclass
class _Models:
    video: LazyPipeline | None
    depth: object  # Lazy[DepthAnything]
    captioner: object  # Lazy[Captioner]


def _compute(win: Window, compute: Callable[[], WindowResult]) -> WindowResult:
    """The default window hook: compute the window, and time it."""
    t0 = time.perf_counter()
    result = compute()
    return WindowResult(result.frames, result.record | {"seconds": round(time.perf_counter() - t0, 3)})


def _digest(frames: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()


def slm_generator_problem(config: Config, device: torch.device) -> str | None:
    """Why `slm.generator` cannot run on `device` (`reference` draws on a CUDA GPU), or None."""
    if config.slm.generator != "reference" or device.type == "cuda":
        return None
    return (f"config key 'slm.generator' is 'reference', which draws SLM on a CUDA GPU as the official code does, but "
            f"this run computes on {device}. On a CPU the official draws come from torch's global CPU generator after "
            "model and LoRA loading advanced it, which cannot be reproduced; set slm.generator: stream, or run on a "
            "CUDA GPU.")


class InverseDVSPipeline:
    """The method on one config (module docstring). Make one with `from_pretrained` or `from_config`, or from a
    loaded `Config`; `device`: where it computes (default `run.device`); `video_model`: a `LazyPipeline` to share
    with another pipeline object of the same model."""

    def __init__(self, config: Config, *, device: torch.device | str | None = None, log: logging.Logger | None = None,
                 video_model: LazyPipeline | None = None):
        self.config = resolve_config(config)
        self.log = log or logging.getLogger("inverse_dvs")
        self.device = torch.device(device) if device is not None else resolve_device(self.config.run.device)
        if problem := slm_generator_problem(self.config, self.device):
            raise ConfigError(problem)
        # one holder, shared by the views with other settings (`with_settings`): the models load once
        self._models = _Models(video_model, depth_model(self.config, self.device),
                               captioner(self.config, self.device))
        self.progress = True

    # construction --------------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path = DEFAULT_MODEL, method: str = DEFAULT_METHOD, *,
                        device: str = "auto", dtype: str = "bf16", **settings: dict[str, Any]) -> InverseDVSPipeline:
        """The method on a video model: a Hugging Face id (found in `checkpoints/` or the Hugging Face cache, never
        downloaded: `python -m inverse_dvs.weights download` fetches) or a local folder in the diffusers layout.

        `method`: `reference` (the official code's settings, the default, as in config.yml) or `paper`; `device`:
        `auto`, `cpu`, `cuda`, `cuda:N`; `dtype`: `bf16`, `fp16`, `fp32` (the CPU computes in fp32). `settings`:
        config sections as mappings, e.g. `inference={"steps": [50]}, camera={"num_frames": "all"},
        depth={"model": "checkpoints/depth"}` (README → Config reference); a value the config would refuse is a
        ConfigError naming its key. The weights are checked here and loaded on first use."""
        unknown = [k for k in settings if k not in SECTIONS]
        if unknown:
            raise ConfigError(f"InverseDVSPipeline.from_pretrained: unknown setting '{unknown[0]}'. Settings are the "
                              f"config's sections, each a mapping of its keys: {', '.join(SECTIONS)} (e.g. "
                              "inference={'steps': [50]}).")
        data: dict[str, Any] = {"method": method, **{k: dict(v) for k, v in settings.items()}}
        data["run"] = {"device": device, "dtype": dtype, **data.get("run", {})}
        data["inversion"] = {**data.get("inversion", {}), "model": str(pretrained_model_name_or_path)}
        cfg = config_from_dict(data, Path.cwd(), require_items=False)
        # missing weights (the video model, and a LoRA the method names) fail here, with the command that fetches them
        require(needed_models(cfg, ("invert", "infer")))
        return cls(cfg)

    @classmethod
    def from_config(cls, path: str | Path = "config.yml", overrides: tuple[str, ...] | list[str] = ()
                    ) -> InverseDVSPipeline:
        """The method with a config file's settings (`overrides`: `section.key=value` as `--set` takes them)."""
        return cls(load_config(path, overrides))

    def set_progress_bar_config(self, disable: bool = False) -> None:
        """Progress bars on (default) or off, as diffusers pipelines take it."""
        self.progress = not disable

    def release(self) -> None:
        """Give the models' memory back; a later call loads them again."""
        if self._models.video is not None:
            self._models.video.unload()
        self._models.depth.drop()
        self._models.captioner.drop()
        release_memory()

    # the models ----------------------------------------------------------------------------------------------------
    @property
    def video_model(self) -> LazyPipeline:
        """The video model (CogVideoX-I2V, `models.video_model.LazyPipeline`), loaded on first use."""
        if self._models.video is None:
            self._models.video = lazy_pipeline(self.config, self.device, self.log)
        return self._models.video

    @property
    def stats(self) -> ModelStats:
        """The video model's counters: loads and transformer passes (NFE)."""
        return self.video_model.stats

    @property
    def depth_model(self):
        """The depth model (`models.depth_anything`, a `models.lazy.Lazy`), loaded on first use."""
        return self._models.depth

    @property
    def captioner(self):
        """The captioner (`models.captioner`, a `models.lazy.Lazy`), loaded on first use."""
        return self._models.captioner

    # the CFG decisions and the transformer passes they cost ----------------------------------------------------------
    @property
    def inversion_uses_cfg(self) -> bool:
        g = self.config.inversion.guidance_scale
        return uses_cfg(g, g, "off")

    @property
    def inversion_batch(self) -> int:
        """Latents per transformer pass during inversion: 2 with inversion CFG, else 1."""
        return 2 if self.inversion_uses_cfg else 1

    def sampling_batches(self, plans: list[PointPlan]) -> tuple[int, ...]:
        """Latents per transformer pass the sampler runs compiled: 2 for points with CFG, 1 without; none while a step
        cache is on (its hooks run the blocks uncompiled, `models.caches.sampling_cache`)."""
        return () if self.config.inference.cache != "none" else tuple(sorted({p.batch for p in plans}))

    def inversion_nfe(self, steps: int) -> int:
        """Transformer passes of an inversion of `steps` steps: one per step, plus one per refinement iteration,
        doubled under inversion CFG."""
        return steps * (1 + self.config.inversion.refine_iterations) * self.inversion_batch

    def plan(self, **point) -> PointPlan:
        """The schedule of one sweep point: each of `steps`, `strength`, `guidance_scale`, `preservation_scale`,
        `k_order`, `adaptive_order`, `seed` as given, the rest the config's (the first of a list that sweeps)."""
        unknown = [k for k in point if k not in SWEEP_ARGS]
        if unknown:
            raise UserError(f"unknown sampling setting '{unknown[0]}'; one of {', '.join(SWEEP_ARGS)}.")
        changes = {SWEEP_ARGS[k]: [v] for k, v in point.items() if v is not None}
        cfg = resolve_config(config_with(self.config, {"inference": changes})) if changes else self.config
        plans = plan_sweep(cfg, self.log)
        if len(plans) > 1:
            self.log.info("the config's sweep has %d points; this call makes the first (%s).", len(plans),
                          plans[0].run_tag)
        return plans[0]

    # 1. depth --------------------------------------------------------------------------------------------------------
    def estimate_depth(self, frames: np.ndarray, *, disparity: np.ndarray | None = None,
                       value_range: tuple[float, float] | None = None, where: str = "the video") -> np.ndarray:
        """Depth of a clip: frames [T, H, W, 3] uint8 → depth [T, H, W] float32 > 0 (larger = farther).

        The depth model estimates relative disparity, unless `disparity` [T, H, W] (larger = nearer) is given, e.g.
        imported; it is checked (`depth.repair_invalid`) and mapped to depth (`depth.mapping`, stabilisation,
        `near`/`far`). UserError naming `where` for a disparity with no geometry (constant) or invalid values."""
        d = self.config.depth
        if disparity is None:
            frames = check_frames(frames, "frames")
            disparity = self._models.depth.get().disparity(frames, d.batch_size, progress=self.progress)
        return depth_of_disparity(self.config, np.asarray(disparity, dtype=np.float32), where, self.log, value_range)

    def check_depth(self, depth: np.ndarray, where: str = "depth") -> np.ndarray:
        """Depth given rather than estimated: [T, H, W] float32, finite and > 0 (or repaired: `depth.repair_invalid`);
        UserError naming `where` otherwise."""
        depth = np.asarray(depth, dtype=np.float32)
        if depth.ndim != 3:
            raise UserError(f"{where}: expected depth [T, H, W] (z-depth > 0, larger = farther), got shape "
                            f"{list(depth.shape)}.")
        return validate_depth(depth, where, self.config.depth.repair_invalid, self.log)

    def depth_of(self, video: str | Path, frames: np.ndarray, where: str | None = None) -> np.ndarray:
        """The depth of a clip read from a video file (frames [T, h, w, 3] uint8, as `read_video` selects and sizes
        them) as the config's `depth.backend` gives it: estimated (`depth_anything`), or imported from the file
        beside the video (`ground_truth`) or named by `depth.npz_path` (`npz`) — its frames selected and sized like
        the video's, disparity mapped and depth checked as estimated ones are."""
        cfg, d = self.config, self.config.depth
        source = depth_source(cfg, str(video))
        where = where or f"depth of '{video}' ({source or d.model})"
        if source is None:
            return self.estimate_depth(frames, where=where)
        array, value_range = load_depth_file(source, d.npz_key, str(video), FrameSelection.of(cfg),
                                             frames.shape[1:3], cfg.camera.resize)
        if d.backend == "ground_truth" or d.npz_kind == "depth":
            return self.check_depth(array, where)
        return self.estimate_depth(frames, disparity=array, value_range=value_range, where=where)

    # 2. cameras and warp ---------------------------------------------------------------------------------------------
    def cameras(self, trajectory, num_frames: int, radius: float) -> np.ndarray:
        """A camera path (any form `as_trajectory` takes) for a clip of `num_frames` frames and scene radius ρ →
        source_to_target [T, 4, 4] float64 (README → Camera conventions)."""
        c = self.config.camera
        return source_to_target(as_trajectory(trajectory), num_frames, radius, c.r_spline, c.pose_arithmetic)

    def render(self, frames: np.ndarray, depth: np.ndarray, K: np.ndarray, source_to_target: np.ndarray,
               model_hw: tuple[int, int]) -> Rendered:
        """Warp frames [T, h, w, 3] uint8 with their depth [T, h, w] into the cameras source_to_target [T, 4, 4]
        (intrinsics K [3, 3] at h × w) and resize to `model_hw` (`camera.*_resize`, `warp.*`): render, visibility,
        and the splat's own mask. No checks: `warp` is the checked step."""
        return render_path(self.config, frames, depth, K, source_to_target, self.device, model_hw, self.progress)

    def warp(self, frames: np.ndarray, depth: np.ndarray, trajectory, *, model_hw: tuple[int, int] | None = None,
             where: str = "the video") -> WarpOutput:
        """The clip seen from the trajectory's cameras: frames [T, h, w, 3] uint8 and their depth [T, h, w] at the
        warp size → render and visibility at `model_hw` (default: the model's size for the clip's aspect), the
        cameras, the intrinsics and the scene radius. Hardly visible frames are warned about (and listed in the
        output); a frame with nothing visible is a UserError naming `where`."""
        frames = check_frames(frames, "frames")
        depth = self.check_depth(depth)
        if depth.shape != frames.shape[:3]:
            raise UserError(f"depth: shape {list(depth.shape)} does not match the frames {list(frames.shape[:3])} "
                            "(frames, height, width); give one depth map per frame at the frames' size.")
        hw = frames.shape[1:3]
        K, radius = camera_geometry(self.config, hw, depth[0])
        cams = self.cameras(trajectory, len(frames), radius)
        out = self.render(frames, depth, K, cams, model_hw or self.config.model_hw(hw))
        warnings, error = visibility_report(visible_fractions(out.visibility), self.config.warp.min_visible_warn,
                                            where)
        if error:
            raise UserError(error)
        for message in warnings:
            self.log.warning("%s", message)
        return WarpOutput(out.render, out.visibility, out.visible_warp, cams, K, radius, warnings)

    # the prompt ------------------------------------------------------------------------------------------------------
    def caption(self, frames: np.ndarray, where: str = "the video") -> Caption:
        """A prompt for a clip (frames [T, H, W, 3] uint8): `caption.num_frames` frames sampled evenly, described by
        the captioner (`caption.model`, asked `caption.query`), cut at a sentence boundary to what the video model's
        text encoder reads."""
        frames = check_frames(frames, "frames")
        shown = frames[even_frames(len(frames), self.config.caption.num_frames)]
        vlm = self._models.captioner.get()
        raw = vlm.caption(shown)
        short = shorten_caption(raw, vlm.count_tokens, vlm.max_tokens)
        if not short.text:
            raise RuntimeError(f"the captioner returned no usable text for {where} ({raw[:80]!r})")
        if short.truncated:
            self.log.info("caption of %s is %d tokens; the text encoder reads %d, so it was cut at a sentence "
                          "boundary (%d tokens kept).", where, vlm.count_tokens(" ".join(raw.split())), vlm.max_tokens,
                          short.tokens)
        return Caption(short.text, raw, short.truncated, short.tokens, shown)

    def embeddings(self, prompt: str, negative: str | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Prompt embeddings [1, L, D], and the negative one when CFG runs (`negative` not None); each text encoded
        once per pipeline object."""
        if negative is None:
            return self.video_model.embed([prompt])[0], None
        cond, uncond = self.video_model.embed([prompt, negative])
        return cond, uncond

    # 3. encode and invert --------------------------------------------------------------------------------------------
    def encode(self, frames: np.ndarray, seed: int | None = None) -> Encoded:
        """The render of one window, frames [T, H, W, 3] uint8, as VAE latents (x0 and the I2V image condition,
        `inversion.posterior`; VAE draws from `seed`, default `run.seed`)."""
        frames = check_frames(frames, "render")
        try:
            pipe = self.video_model.get((self.inversion_batch,))
            return encode_render(pipe, frames, self.config.inversion.posterior,
                                 self.config.run.seed if seed is None else seed)
        except torch.cuda.OutOfMemoryError as exc:
            raise oom_hint(exc) from None

    def invert(self, render: np.ndarray | Encoded, prompt: str = "", t_end: int | None = None, *,
               where: str = "") -> Inverted:
        """DDIM-invert a render (frames [T, H, W, 3] uint8, its first window taken; or its `encode`) up to t_end
        (default: where the config's first sweep point starts) with the configured plan (`inversion.end`, `steps`,
        `refine_iterations`), conditioned on the image latents and the video's prompt — or "" with `inversion.prompt:
        empty` (official) — (against "" with inversion CFG)."""
        inv = self.config.inversion
        prompt = prompt if inv.prompt == "video" else ""
        t_end = self.plan().inversion_end if t_end is None else int(t_end)
        try:
            enc = render if isinstance(render, Encoded) else self.encode(np.asarray(render)[:self.config.model_frames])
            pipe = self.video_model.get((self.inversion_batch,))
            cond, uncond = self.embeddings(prompt, "" if self.inversion_uses_cfg else None)
            v_fn = guided_v(pipe, enc.image_latents, cond, uncond, inv.guidance_scale, self.stats)
            steps = inversion_plan(inv.end, t_end, inv.steps)
            with self._bar(len(steps), f"invert {where} t≤{t_end}".replace("  ", " ")) as bar:
                res = ddim_invert(v_fn, enc.x0.to(enc.image_latents.device), steps, alphas_cumprod(pipe),
                                  inv.refine_iterations, inv.save_trajectory, lambda _i: bar.update())
        except torch.cuda.OutOfMemoryError as exc:
            raise oom_hint(exc) from None
        return Inverted(enc.x0, res.latent, enc.image_latents, torch.tensor(res.timesteps, dtype=torch.int64),
                        torch.stack(res.trajectory) if res.trajectory else None)

    def roundtrip_error(self, render: np.ndarray | Encoded, prompt: str, t_start: int, steps: int,
                        refine_iterations: int) -> float:
        """The inversion check: relative latent error ‖x0′ − x0‖ / ‖x0‖ after inverting x0 up to t_start on the
        paper's grid (`steps` steps, `refine_iterations` fixed-point iterations per step) and sampling back down
        the same grid, both without CFG."""
        enc = render if isinstance(render, Encoded) else self.encode(render)
        pipe = self.video_model.get((1,))
        cond, _ = self.embeddings(prompt, None)
        v_fn = guided_v(pipe, enc.image_latents, cond, None, 1.0, self.stats)
        return roundtrip_error(v_fn, enc.x0.to(enc.image_latents.device), inversion_plan("t_start", t_start, steps),
                               alphas_cumprod(pipe), refine_iterations)

    # 4–6. generate ---------------------------------------------------------------------------------------------------
    def generate(self, render: np.ndarray, visibility: np.ndarray, depth: np.ndarray, prompt: str = "", *,
                 plan: PointPlan | None = None, inversion: Inverted | None = None,
                 on_window: WindowHook | None = None, where: str = "") -> Generated:
        """One output of one sweep point (`plan`, default the config's first: `plan()`) from a warped clip: render
        [T, H, W, 3] uint8 and visibility [T, H, W] in [0, 1] at the model size, depth [T, h, w] (the background
        mask). `inversion`: the render's first window inverted to `plan.inversion_end` (e.g. read from a file),
        else inverted here.

        A clip longer than one window (`camera.window`) runs in overlapping windows, in order: window 0 samples
        from `inversion`; window w takes window w−1's output over its first `camera.overlap` frames (marked visible;
        its first frame the image condition), is inverted and sampled; the outputs are stitched (`camera.stitch`).
        `on_window(window, compute)` runs each window of such a clip and returns its `WindowResult`: a caller that
        persists windows (the infer stage) computes only those it has not stored."""
        cfg = self.config
        plan = plan or self.plan()
        render = check_frames(render, "render")
        visibility = np.asarray(visibility, dtype=np.float32)
        if visibility.shape != render.shape[:3] or len(depth) != len(render):
            raise UserError(f"visibility {list(visibility.shape)} and depth {list(np.shape(depth))} must have the "
                            f"render's frames {list(render.shape[:3])}; pass the warp's outputs of one clip.")
        label = f"{where} {plan.run_tag}".strip()
        windows = clip_windows(cfg, len(render), label, self.log)
        if inversion is None:
            inversion = self.invert(render[:windows[0].end], prompt, plan.inversion_end, where=where)
        elif inversion.t_end != plan.inversion_end:
            raise UserError(f"the inversion ends at t={inversion.t_end}, but {plan.run_tag} starts from "
                            f"t={plan.inversion_end}; invert to that timestep (inversion.end, steps, strength).")
        shared_nfe = self.inversion_nfe(len(inversion.timesteps))
        totals = {"t_start": plan.t_start, "sampling_steps": len(plan.schedule.timesteps)}
        if len(windows) == 1:
            out = self._sample(plan, prompt, inversion, render, visibility, depth, 0, label)
            totals |= {"alpha_bar_t_start": out.alpha_bar_t_start, "inversion_nfe": shared_nfe,
                       "sampling_nfe": out.sampling_nfe, "sampling_seconds": out.sampling_seconds,
                       "decode_seconds": out.decode_seconds}
            return Generated(out.frames, totals | {"nfe_per_output": shared_nfe + out.sampling_nfe})
        hook = on_window or _compute
        results: list[WindowResult] = []
        for win, prev in zip(windows, [None, *windows[:-1]], strict=True):
            previous = results[-1].frames if results else None
            results.append(hook(win, partial(self._window, plan, prompt, render, visibility, depth, inversion, win,
                                             prev, previous, label)))
        records = [r.record for r in results]
        totals |= {k: round(sum(r[k] for r in records), 2) for k in ("sampling_seconds", "decode_seconds")}
        totals |= {k: sum(r[k] for r in records) for k in ("sampling_nfe", "inversion_nfe")}
        totals["inversion_nfe"] += shared_nfe  # window 0's inversion is the shared one
        totals["alpha_bar_t_start"] = records[0]["alpha_bar_t_start"]
        totals["nfe_per_output"] = totals["inversion_nfe"] + totals["sampling_nfe"]
        frames = stitch([r.frames for r in results], windows, cfg.camera.stitch)
        return Generated(frames, totals | {"windows": records, "stitch": cfg.camera.stitch})

    def _window(self, plan: PointPlan, prompt: str, render: np.ndarray, visibility: np.ndarray, depth: np.ndarray,
                shared: Inverted, win: Window, prev: Window | None, previous: np.ndarray | None,
                label: str) -> WindowResult:
        """One window of a long clip: window 0 samples from the shared inversion; window w > 0 takes its render over
        from window w−1's output (`previous`, `core.windows.hand_over`), inverts it and samples."""
        s, e = win.start, win.end
        nfe0 = self.stats.nfe
        record: dict[str, Any] = {"window": win.index, "frames": [s, e], "overlap": win.overlap}
        if prev is None:
            inversion, ren, vis = shared, render[s:e], visibility[s:e]
        else:
            ren, vis = hand_over(render, visibility, previous, win, prev)
            # what a test and a user can check: the condition and the overlap are window w−1's output frames
            record |= {"condition_sha256": _digest(ren[0]), "overlap_sha256": _digest(ren[:win.overlap])}
            inversion = self.invert(ren, prompt, plan.inversion_end, where=f"{label} window {win.index}")
        out = self._sample(plan, prompt, inversion, ren, vis, depth[s:e], win.index,
                           f"{label} window {win.index}")
        nfe = self.stats.nfe - nfe0
        return WindowResult(out.frames, record | {
            "nfe": nfe, "inversion_nfe": nfe - out.sampling_nfe, "sampling_nfe": out.sampling_nfe,
            "sampling_seconds": out.sampling_seconds, "decode_seconds": out.decode_seconds,
            "alpha_bar_t_start": out.alpha_bar_t_start})

    def _slm_generator(self, seed: int, window: int, device: torch.device) -> torch.Generator:
        """SLM's random stream for one output window (`slm.generator`): `stream`, the CPU stream of the item seed
        (`core.streams`); `reference`, a generator on the CUDA device seeded with the run seed itself, as
        `torch.manual_seed(seed)` leaves the default CUDA generator the official code draws from (nothing advances it
        before its SLM draws; windows after the first, ours only, with their own stream's seed)."""
        purpose = "slm" if window == 0 else f"slm:window{window}"
        if self.config.slm.generator == "stream":
            return generator(seed, purpose)
        return torch.Generator(device=device).manual_seed(seed if window == 0 else stream_seed(seed, purpose))

    def _sample(self, plan: PointPlan, prompt: str, inversion: Inverted, render: np.ndarray, visibility: np.ndarray,
                depth: np.ndarray, window: int, label: str) -> _Sampled:
        """Steps 4–6 on one window: SLM + K-RNR at t_start, region-aware guided DDIM, decode. Windows after the first
        draw SLM from their own streams."""
        cfg, pt, sched = self.config, plan.point, plan.schedule
        try:
            pipe = self.video_model.get(self.sampling_batches([plan]))
            alphas = alphas_cumprod(pipe)
            a_bar = float(alphas[sched.t_start])
            x0, img = sampling_latents(pipe, cfg.inference.vae_latents, inversion._asdict(), render,
                                       generator(pt.seed, "vae"))
            dev = x0.device  # the transformer's (models.placement.execution_device), where sampling runs
            eps = inversion.eps_inv.to(dev)
            m: ClipMasks = clip_masks(cfg, visibility, depth)

            def latent(mask: np.ndarray) -> torch.Tensor:  # bool [t, h, w] → [1, t, 1, h, w] on the model's device
                return torch.from_numpy(mask).to(dev)[None, :, None]

            occ = latent(m.masks.occluded)  # the real latent frames; x0 has `pad` padding frames in front of them
            pad = x0.shape[1] - occ.shape[1]
            if pad != latent_padding(pipe, occ.shape[1]) or occ.shape[-2:] != x0.shape[-2:]:
                raise UserError(f"masks {tuple(occ.shape)} do not match the latents {tuple(x0.shape)}; rerun warp and "
                                "invert with the same camera settings (--force).")
            # 4. noise initialisation: SLM fills the occluded cells of the real frames, then K-RNR over the layout
            fill = real_frames(partial(
                stochastic_latent_modulation, occluded=occ,
                generator=self._slm_generator(pt.seed, window, dev), mode=cfg.slm.mode,
                background=latent(m.background), occluded_eps=latent(m.masks.occluded_eps)), pad) \
                if cfg.slm.enabled else None
            try:
                x_init = noise_init(cfg.inference.noise_init, x0, eps, a_bar, fill, k=pt.k_order,
                                    delta=pt.adaptive_order, stats=cfg.inference.adain,
                                    rounds=cfg.inference.noise_rounds)
            except NothingVisible as exc:
                raise UserError(str(exc)) from None
            # 5. region-aware CFG: guidance on occluded cells, preservation on visible ones
            # (a padding frame starts as a copy of the first real frame, so its cells get that frame's scales)
            guidance = RegionGuidance(pt.guidance_scale, pt.preservation_scale, cfg.inference.dynamic_cfg,
                                      len(sched.timesteps), torch.cat([occ[:, :1]] * pad + [occ], dim=1))
            cond, uncond = self.embeddings(prompt, cfg.inference.negative_prompt if plan.uses_cfg else None)
            clock = StepClock()
            v_fn = guided_v(pipe, img, cond, uncond, guidance, self.stats, clock)
            nfe0 = self.stats.nfe
            synchronize(dev)
            t0 = time.perf_counter()
            with sampling_cache(pipe, cfg.inference.cache, clock), \
                    self._bar(len(sched.timesteps), f"sample {label}") as bar:  # the cache: sampling only
                latents = ddim_sample(v_fn, x_init, sched.timesteps, sched.prev_timesteps, alphas,
                                      progress=lambda _i: bar.update())
            synchronize(dev)
            t1 = time.perf_counter()
            if not bool(torch.isfinite(latents).all()):
                raise UserError(f"sampling produced NaN or inf latents (steps {pt.steps}, strength {pt.strength}, "
                                f"guidance {pt.guidance_scale}); nothing was written. With run.dtype: fp16 this is an "
                                "overflow: use bf16 or fp32.")
            # 6. decode
            frames = decode(pipe, latents, pad)
        except torch.cuda.OutOfMemoryError as exc:
            raise oom_hint(exc) from None
        return _Sampled(frames, a_bar, self.stats.nfe - nfe0, round(t1 - t0, 2), round(time.perf_counter() - t1, 2))

    def _bar(self, total: int, desc: str):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, disable=not self.progress)

    # the whole method ------------------------------------------------------------------------------------------------
    def read_video(self, video: str | Path | np.ndarray, fps: float | None = None) -> SourceClip:
        """The clip a call works on: a video file, or frames [N, H, W, 3] uint8; the frames `camera.num_frames`,
        `start`, `stride` select (too few is a UserError naming the video and the keys), at the warp size through
        `camera.resize`."""
        cfg = self.config
        sel = FrameSelection.of(cfg)
        if isinstance(video, str | Path):
            source_hw = video_size(video)
            if note := upscaled(source_hw, cfg.model_hw(source_hw), cfg.camera.resize):
                self.log.warning("%s", note.replace("the video", f"video '{video}'", 1))
            clip = read_clip(video, sel, cfg.warp_hw(source_hw), cfg.camera.resize, self.log)
            return SourceClip(clip.frames, fps or clip.fps, source_hw)
        frames = check_frames(video, "video")
        frames = frames[frame_indices(len(frames), sel, "video (the array passed)")]
        source_hw = frames.shape[1:3]
        if note := upscaled(source_hw, cfg.model_hw(source_hw), cfg.camera.resize):
            self.log.warning("%s", note)
        return SourceClip(resize_frames(frames, cfg.warp_hw(source_hw), cfg.camera.resize), fps, source_hw)

    def __call__(self, video: str | Path | np.ndarray, trajectory, prompt: str | None = None,
                 depth: np.ndarray | None = None, *, fps: float | None = None, steps: int | None = None,
                 strength: float | None = None, guidance_scale: float | None = None,
                 preservation_scale: float | None = None, k_order: float | None = None,
                 adaptive_order: float | None = None, seed: int | None = None, on_window: WindowHook | None = None,
                 **settings: dict[str, Any]) -> InverseDVSOutput:
        """Re-render a video along a camera path.

        video: a video file, or frames [N, H, W, 3] uint8 (the frames `camera.num_frames` etc. select are used);
        trajectory: a preset name (`orbit_left`, `arc_up+dolly_in`, …), `{"preset": ..., "amount": degrees}`, a
            trajectory or pose file, keyframes `{"theta": [...], "phi": [...], "r": [...]}`, or camera-to-world poses
            [T, 4, 4] (`as_trajectory`);
        prompt: the text; None: a caption (`caption.source`: of the source or the render; `off`: "");
        depth: the source's depth [T, h, w] at the warp size, instead of estimating it;
        steps … seed: this output's sampling settings (`inference.*`; default the config's, the first of a sweep;
            `seed` draws SLM and VAE resamples, as `inference.seeds`);
        on_window: the window hook of long clips (`generate`);
        settings: config sections changed for this call, e.g. `slm={"mode": "frame"}` (`with_settings`).
        """
        # 1. check the inputs and settings
        pipe = self.with_settings(**settings)
        cfg = pipe.config
        plan = pipe.plan(steps=steps, strength=strength, guidance_scale=guidance_scale,
                         preservation_scale=preservation_scale, k_order=k_order, adaptive_order=adaptive_order,
                         seed=seed)
        path = as_trajectory(trajectory)
        clip = pipe.read_video(video, fps)
        if isinstance(path, np.ndarray):
            check_poses(path, len(clip.frames))
        if depth is not None:
            depth = pipe.check_depth(depth, "depth")
            if depth.shape != clip.frames.shape[:3]:
                raise UserError(f"depth: shape {list(depth.shape)}, but the clip is {list(clip.frames.shape[:3])} "
                                "(frames, height, width) at the warp size; give one map per selected frame.")
        elif not isinstance(video, str | Path) and cfg.depth.backend != "depth_anything":
            raise UserError(f"depth: depth.backend is {cfg.depth.backend!r}, which reads a file beside a video file; "
                            "frames passed as an array need depth= (the array [T, h, w]), or depth.backend: "
                            "depth_anything to estimate it.")
        model_hw = cfg.model_hw(clip.source_hw)
        seconds: dict[str, float] = {}
        # 2. depth
        t0 = time.perf_counter()
        if depth is None:
            depth = pipe.depth_of(video, clip.frames) if isinstance(video, str | Path) else \
                pipe.estimate_depth(clip.frames)
        seconds["depth"] = round(time.perf_counter() - t0, 2)
        # 3. warp
        t0 = time.perf_counter()
        warped = pipe.warp(clip.frames, depth, path, model_hw=model_hw)
        seconds["warp"] = round(time.perf_counter() - t0, 2)
        # 4. the prompt
        if prompt is None:
            prompt = pipe._auto_prompt(video, clip, warped, model_hw)
        # 5–6. invert, generate
        t0 = time.perf_counter()
        out = pipe.generate(warped.render, warped.visibility, depth, prompt, plan=plan, on_window=on_window)
        seconds["generate"] = round(time.perf_counter() - t0, 2)
        info = out.info | {"prompt": prompt, "run_tag": plan.run_tag, "point": dataclasses.asdict(plan.point),
                           "fps": cfg.inference.fps or clip.fps, "seconds": seconds, "warnings": warped.warnings}
        return InverseDVSOutput(out.frames, warped.render, warped.visibility, depth, warped.source_to_target, info)

    def with_settings(self, **settings: dict[str, Any]) -> InverseDVSPipeline:
        """A view of this pipeline with some config sections changed (`slm={"mode": "frame"}`, checked as the config
        checks them), sharing its models; itself when nothing changes. The model's own keys (`inversion.model`,
        `model.*`, `run.device`/`dtype`/`compile`, the depth and caption models) cannot change: a UserError says so."""
        if not settings:
            return self
        cfg = resolve_config(config_with(self.config, settings))
        for section, keys in MODEL_KEYS.items():
            for k in keys:
                if getattr(getattr(cfg, section), k) != getattr(getattr(self.config, section), k):
                    raise UserError(f"{section}.{k} cannot change per call: the pipeline loads its models for it "
                                    "once. Set it when making the pipeline (from_pretrained or from_config).")
        view = copy.copy(self)
        view.config = cfg
        return view

    def _auto_prompt(self, video, clip: SourceClip, warped: WarpOutput, model_hw: tuple[int, int]) -> str:
        """The prompt of a call without one: `caption.source` `off` → ""; `render` → a caption of the render;
        `source` → a caption of the source clip at the model size."""
        source = self.config.caption.source
        if source == "off":
            return ""
        if source == "render":
            return self.caption(warped.render, "the render").text
        frames = clip.frames
        if frames.shape[1:3] != tuple(model_hw):
            frames = (read_clip(video, FrameSelection.of(self.config), model_hw, self.config.camera.resize).frames
                      if isinstance(video, str | Path) else resize_frames(frames, model_hw, self.config.camera.resize))
        return self.caption(frames).text


def clip_windows(cfg: Config, num_frames: int, where: str, log) -> list[Window]:
    """The windows of a clip of `num_frames` frames (`core.windows.plan_windows` with the camera settings); says where
    a last window that did not fit went."""
    c = cfg.camera
    windows = plan_windows(num_frames, c.window, c.overlap, c.last_window)
    if len(windows) > 1 and c.last_window == "end" and windows[-1].overlap != c.overlap:
        log.info("%s: %d frames in %d windows of %d; the last window is aligned to the clip's end (camera.last_window: "
                 "end), so it takes over %d frames instead of %d.", where, num_frames, len(windows), c.window,
                 windows[-1].overlap, c.overlap)
    elif clip_length(windows) < num_frames:
        log.warning("%s: frames %d–%d are left out: they would need a window of their own past the clip's end "
                    "(camera.last_window: drop; `end` keeps them).", where, clip_length(windows), num_frames - 1)
    return windows
