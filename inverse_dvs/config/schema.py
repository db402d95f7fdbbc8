"""The config schema: one frozen dataclass per section, each field with its check and its README line.

The dataclass defaults are the values of `method: paper` (the paper's text); `presets.METHOD_PRESETS` holds the
official code's values where they differ. Every check names the key (dotted path), the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ..infra.errors import ConfigError, UnresolvedAuto

METHODS = ("paper", "reference")
# The method a config without `method:` runs: the official code's (its README and run_all.sh are the seed system,
# its code made the paper's published results, and `reference` is proven equal to it step by step: README → Fidelity).
# The dataclass defaults below are `paper`'s values; `presets.REFERENCE` holds the official code's where they differ.
DEFAULT_METHOD = "reference"
NAME_RE = re.compile(r"^[^\W_][\w.-]*$")  # letters (any script), digits, '_', '.', '-': it becomes a folder name
# diffusers' attention-dispatcher backends a run may name (models/attention.py: what each needs); none that downloads
ATTENTION_BACKENDS = ("native", "_native_math", "_native_cudnn", "_native_flash", "_native_efficient", "flex", "flash",
                      "sage", "xformers")
MAX_SIDE = 4096  # camera.height/width: beyond any video model's size
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a 64-bit integer


def check_value(cond: bool, key: str, value: Any, allowed: str) -> None:
    if not cond:
        raise ConfigError(f"config key '{key}' has value {value!r}; allowed: {allowed}.")


def _choice(*options: str):
    def check(key: str, v: Any) -> None:
        check_value(v in options, key, v, "one of " + ", ".join(repr(o) for o in options))

    check.choices = options  # YAML reads a bare off/on as false/true: _build maps them back where they are choices
    return check


def _positive(key: str, v: Any) -> None:
    check_value(v > 0, key, v, "a number > 0")


def _seed(key: str, v: Any) -> None:
    check_value(0 <= v <= MAX_SEED, key, v, "an integer in [0, 2^63 − 1] (a 64-bit generator seed)")


def _side(key: str, v: Any) -> None:
    check_value(v == "auto" or (isinstance(v, int) and 0 < v <= MAX_SIDE and v % 16 == 0), key, v,
                f"'auto' or a positive multiple of 16 up to {MAX_SIDE}")


def _non_negative(key: str, v: Any) -> None:
    check_value(v >= 0, key, v, "a number >= 0")


def _unit_interval(key: str, v: Any) -> None:
    check_value(0.0 <= v <= 1.0, key, v, "a number in [0, 1]")


def _strength(key: str, v: Any) -> None:
    check_value(0.0 < v < 1.0, key, v, "a number in (0, 1); 1.0 would start from pure noise (zero terminal SNR)")


def _each(check):
    def run(key: str, values: list) -> None:
        check_value(len(values) > 0, key, values, "a non-empty list")
        for i, v in enumerate(values):
            if v is not None:
                check(f"{key}[{i}]", v)

    return run


def _opt(**kw) -> Any:
    default = kw.pop("default")
    if isinstance(default, list):
        return field(default_factory=lambda d=default: list(d), metadata=kw)
    return field(default=default, metadata=kw)


def _degree(key: str, v: Any) -> None:
    check_value(1 <= v <= 64, key, v, "an integer from 1 (off) to 64")


@dataclass(frozen=True)
class ContextParallel:
    """`run.context_parallel`: each item's transformer split over ulysses × ring processes
    (models/context_parallel.py)."""

    ulysses: int = _opt(default=1, check=_degree, doc="")
    ring: int = _opt(default=1, check=_degree, doc="")

    @property
    def degree(self) -> int:
        return self.ulysses * self.ring

    def __str__(self) -> str:
        return f"{{ulysses: {self.ulysses}, ring: {self.ring}}}"


@dataclass(frozen=True)
class RunConfig:
    work_dir: str = _opt(default="outputs", check=lambda k, v: check_value(
        v.strip() != "", k, v, "a folder name or path; an empty value would write into the current folder"),
        doc="root of all artifacts (relative to the current directory; `run_all.sh` runs from the project root)")
    device: str = _opt(default="auto", check=lambda k, v: check_value(
        re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", v) is not None, k, v, "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
        doc="`auto` (this process's GPU, else CPU), `cpu`, `cuda`, `cuda:N`")
    dtype: str = _opt(default="bf16", check=_choice("bf16", "fp16", "fp32"),
                      doc="model precision on GPU (CPU always computes in fp32)")
    seed: int = _opt(default=42, check=_seed, doc="default seed (SLM draws, VAE posterior samples)")
    gpus: list[int] | str | None = _opt(default=None, check=lambda k, v: check_value(
        v == "all" or (isinstance(v, list) and v and all(i >= 0 for i in v)), k, v,
        "null, 'all' or a non-empty list of GPU indices like [0, 1]"),
        doc="null: one process on `device`; `[0, 1, …]` or `all`: one process per GPU via `accelerate launch` (then "
            "`device` is `auto` or `cuda`: each process takes its own GPU)")
    compile: str = _opt(default="auto", check=_choice("auto", "on", "off"),
                        doc="torch.compile each CogVideoX transformer block once per process, warmed up for the batch "
                            "sizes that run compiled (logged apart from item times). `auto`: on CUDA, except under "
                            "`model.offload: sequential` or without Triton (warned); a compile that fails falls back "
                            "to eager with one warning")
    compile_backend: str = _opt(default="inductor", doc="torch.compile backend (`inductor`; `aot_eager` to debug)")
    attention_backend: str = _opt(default="auto", check=_choice("auto", *ATTENTION_BACKENDS),
                                  doc="CogVideoX attention: `auto` (diffusers' stock processor, torch's SDPA picks "
                                      "its kernel) or a diffusers attention-dispatcher backend (`native`, "
                                      "`_native_cudnn`, `flash`, `sage`, …; README → Speed and memory); an "
                                      "unavailable one is a preflight error naming what is installed")
    context_parallel: ContextParallel = _opt(
        default=ContextParallel(),
        doc="one item's transformer over several GPUs (diffusers' context parallelism): `{ulysses: U, ring: R}` "
            "splits each call over U·R processes of run.gpus (Ulysses: heads all-to-all; ring: key/value blocks "
            "passed around, needs `_native_cudnn`/`_native_flash`/`flash`); G GPUs make G/(U·R) groups, each taking "
            "items as one process does. U·R must divide the GPUs, U the heads, and under ring R the text + video "
            "tokens (README → Several GPUs per item)")


class Selection(NamedTuple):
    """Which of a config's videos and trajectories a run takes (the command line's `--only-video`,
    `--only-trajectory`; None: all of them), and `--shard`'s slice of those videos: (index, count) takes the videos
    whose position in the selected list is index mod count (a Slurm array task's share; None: all)."""

    videos: tuple[str, ...] | None = None
    trajectories: tuple[str, ...] | None = None
    shard: tuple[int, int] | None = None

    @classmethod
    def parse(cls, only_video: str | None = None, only_trajectory: str | None = None, shard: str | None = None
              ) -> Selection:
        """From comma-separated names, as the command line gives them; `shard`: `I/N` (I from 0 to N−1) or `slurm`
        (this Slurm array task's: SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT)."""

        def names(text: str | None) -> tuple[str, ...] | None:
            return tuple(n.strip() for n in text.split(",") if n.strip()) if text else None

        return cls(names(only_video), names(only_trajectory), parse_shard(shard) if shard else None)


def parse_shard(text: str, env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """(index, count) from `I/N` or `slurm` (the SLURM_ARRAY_* variables of `env`, default os.environ); ConfigError
    naming `--shard` and the fix otherwise."""
    env = os.environ if env is None else env
    if text == "slurm":
        keys = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT")
        missing = [k for k in keys if not env.get(k, "").isdigit()]
        if missing:
            raise ConfigError(f"--shard slurm: {', '.join(missing)} not set (or not a number): this is not a Slurm "
                              "array task. Submit with `sbatch --array=0-N` (README → Clusters), or give the slice "
                              "yourself as --shard I/N.")
        task, first, count = (int(env[k]) for k in keys)
        index = task - first
    else:
        m = re.fullmatch(r"(\d+)/(\d+)", text.strip())
        if m is None:
            raise ConfigError(f"--shard {text!r}: expected I/N (this task's index I from 0 to N−1 of N tasks, e.g. "
                              "--shard 0/8) or `slurm`.")
        index, count = int(m[1]), int(m[2])
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"--shard {text}: index {index} of {count} task(s) is out of range; the index runs from 0 to "
                          "N−1 (with Slurm, `--shard slurm` counts from the array's first task id).")
    return index, count


@dataclass(frozen=True)
class VideoSpec:
    path: str
    name: str = ""
    prompt: str = ""
    # resolved at load: prompts/{name}.txt in the config's folder or the project root, if one exists
    prompt_file: str | None = None


@dataclass(frozen=True)
class TrajectorySpec:
    """One camera path; exactly one of: `file`, inline `theta`/`phi`/`r`, `preset`, `poses`."""

    name: str
    file: str | None = None
    theta: tuple[float, ...] | None = None
    phi: tuple[float, ...] | None = None
    r: tuple[float, ...] | None = None
    preset: str | None = None
    amount: float | None = None
    poses: str | None = None

    @property
    def kind(self) -> str:
        if self.file is not None:
            return "file"
        if self.preset is not None:
            return "preset"
        if self.poses is not None:
            return "poses"
        return "keyframes"


@dataclass(frozen=True)
class DepthConfig:
    backend: str = _opt(default="depth_anything", check=_choice("depth_anything", "npz", "ground_truth"),
                        doc="`depth_anything` (transformers), `npz` (import precomputed depth/disparity), "
                            "`ground_truth` (`{stem}_depth.npz` beside the video, e.g. the demo scene)")
    model: str = _opt(default="depth-anything/Depth-Anything-V2-Large-hf",
                      doc="Depth Anything V2 checkpoint: Small (Apache-2.0), Base and Large (CC-BY-NC-4.0: "
                          "non-commercial)")
    batch_size: int = _opt(default=8, check=_positive, doc="frames per depth-model call")
    npz_path: str = _opt(default="{dir}/{stem}_depths.npz",
                         doc="`npz`: file template with `{dir}`, `{stem}` of the video path and `{name}`")
    npz_kind: str = _opt(default="disparity", check=_choice("disparity", "depth"),
                         doc="`npz`: what the array holds (Video-Depth-Anything's `--save_npz`: disparity)")
    npz_key: str = _opt(default="", doc="`npz`: array key; empty: `depth`, `depths` or `disparity`, or the only key")
    mapping: str = _opt(default="percentile", check=_choice("percentile", "reference"),
                        doc="disparity → depth: `percentile` (below, after stabilisation) or `reference` (official: "
                            "min–max n over every frame of the disparity file, not only the selected ones, depth = "
                            "10000/max(3900·n, 1e-5) in [1e-4, 1e4], no stabilisation)")
    near: float = _opt(default=1.0, check=_positive,
                       doc="`percentile`: disparity percentiles 2–98 map linearly to inverse depth [1/far, 1/near]")
    far: float = _opt(default=20.0, check=_positive, doc="see `near`")
    stabilize: bool = _opt(default=True, doc="`percentile`: robust per-frame scale/shift alignment to the previous "
                                             "frame")
    ema: float = _opt(default=0.0, check=lambda k, v: check_value(0.0 <= v < 1.0, k, v, "a number in [0, 1)"),
                      doc="`percentile`: temporal smoothing of the stabilised disparity (0 = off)")
    repair_invalid: bool = _opt(default=False, doc="replace NaN/inf (and depth ≤ 0) with the frame median, constant "
                                                   "frames with the nearest valid one (warned), instead of failing")


@dataclass(frozen=True)
class CameraConfig:
    num_frames: int | str = _opt(default="auto", check=lambda k, v: check_value(
        v in ("auto", "all") or (isinstance(v, int) and v > 0), k, v, "a positive integer, 'auto' or 'all'"),
        doc="frames of the clip (after `start`, `stride`); `auto`: the model's own count (CogVideoX-5B-I2V 49, "
            "CogVideoX1.5 81); `all`: the whole clip. A clip longer than `window` runs in overlapping windows "
            "(README → Long videos)")
    window: str | int = _opt(default="auto", check=lambda k, v: check_value(
        v == "auto" or (isinstance(v, int) and v > 0 and (v - 1) % 4 == 0), k, v,
        "'auto' or 1 + 4m frames (the VAE compresses time by 4) that the model takes"),
        doc="frames per model call; `auto`: the model's own count (README → Backbones)")
    overlap: int = _opt(default=9, check=lambda k, v: check_value(v > 0 and (v - 1) % 4 == 0, k, v,
                                                                  "1 + 4m frames (9, 13, 17, …) below camera.window, "
                                                                  "so a hand-over ends on a latent-frame boundary"),
                        doc="frames each window takes over from the one before (its output, marked visible)")
    last_window: str = _opt(default="end", check=_choice("end", "drop"),
                            doc="a last window that does not fit: `end` (aligned to the clip's end, its overlap "
                                "grows; logged) or `drop` (the frames only it would cover are left out; warned)")
    stitch: str = _opt(default="crossfade", check=_choice("crossfade", "previous"),
                       doc="over each overlap, output.mp4 blends linearly from window w−1 to w (`crossfade`) or "
                           "keeps window w−1's frames (`previous`)")
    height: str | int = _opt(default="auto", check=_side,
                             doc="model height; `auto`: the model's size for each video's aspect (CogVideoX-5B-I2V: "
                                 "480×720 through `resize`; CogVideoX1.5: the largest allowed size at the video's "
                                 "aspect, e.g. 768×1360 or 1360×768). README → Backbones")
    width: str | int = _opt(default="auto", check=_side, doc="model width; `auto`: see `height`")
    start: int = _opt(default=0, check=_non_negative, doc="first source frame")
    stride: int = _opt(default=1, check=_positive, doc="take every stride-th frame")
    pad_short: bool = _opt(default=False, doc="repeat the last frame of videos too short for num_frames (with "
                                              "`all`: for one window) (warned)")
    resize: str = _opt(default="crop", check=_choice("crop", "pad", "stretch"),
                       doc="`crop` (cover, centre crop), `pad` (fit, black borders) or `stretch` (each axis on its "
                           "own, as the official code)")
    warp_size: list[int] | None = _opt(default=None, check=lambda k, v: check_value(
        len(v) == 2 and all(x >= 16 for x in v), k, v, "null or [height, width] with both >= 16, e.g. [576, 1024]"),
        doc="[H, W] the source is decoded, given depth and warped at; render and visibility are resized to the model "
            "size (null: the model size)")
    mask_resize: str = _opt(default="area", check=_choice("area", "reference"),
                            doc="visibility from the warp size to the model size: `area` (fractional pixel coverage, "
                                "fp32) or `reference` (official: bf16 `F.interpolate(mode=\"area\")`, whole-pixel "
                                "windows)")
    render_resize: str = _opt(default="round", check=_choice("round", "reference"),
                              doc="render from the warp size to the model size: `round` (colours rounded to 8 bits at "
                                  "the warp size, then bilinear) or `reference` (official: float bilinear, then "
                                  "truncated to 8 bits)")
    r_spline: str = _opt(default="fraction", check=_choice("fraction", "distance"),
                         doc="the smoothing spline through more than 3 r keyframes is fitted on r (`fraction` of the "
                             "scene radius ρ) or on r·ρ (`distance`, official); the spline is not scale-invariant")
    pose_arithmetic: str = _opt(default="float64", check=_choice("float64", "reference"),
                                doc="keyframe cameras computed in `float64`, relative to θ = φ = r = 0, or as the "
                                    "official code computes them (`reference`: float32 poses, each relative to the "
                                    "path's first frame)")
    radius_scale: float = _opt(default=1.0, check=_positive,
                               doc="scene radius = depth at the first frame's centre × this, capped at max_radius")
    max_radius: float = _opt(default=5.0, check=_positive, doc="see `radius_scale`")
    intrinsics: str = _opt(default="fov", check=_choice("fov", "focal", "reference"),
                           doc="at the warp size: `fov` (`fov_deg`), `focal` (`focal` px) or `reference` (official: "
                               "f = 500, c = (512, 288) at 576×1024, scaled per axis)")
    fov_deg: float = _opt(default=60.0, check=lambda k, v: check_value(1.0 <= v <= 170.0, k, v, "degrees in [1, 170]"),
                          doc="`fov`: horizontal field of view in degrees")
    focal: float = _opt(default=500.0, check=_positive, doc="`focal`: focal length in pixels")
    cx: float | None = _opt(default=None, doc="principal point x in pixels (null: the image centre)")
    cy: float | None = _opt(default=None, doc="principal point y in pixels (null: the image centre)")


@dataclass(frozen=True)
class WarpConfig:
    batch_size: int = _opt(default=1, check=_positive,
                           doc="frames per warp call (1 is fastest on CPU; raise it on a GPU)")
    max_footprint: int = _opt(default=4, check=lambda k, v: check_value(1 <= v <= 8, k, v, "an integer in [1, 8]"),
                              doc="`zbuffer`: largest point footprint in px; larger magnifications are rasterised")
    edge_tolerance: float = _opt(default=0.05, check=_positive,
                                 doc="`zbuffer`: relative depth jump that separates two surfaces")
    min_visible_warn: float = _opt(default=0.5, check=_unit_interval,
                                   doc="warn about frames less visible than this (a frame with nothing visible is an "
                                       "error)")
    splat: str = _opt(default="zbuffer", check=_choice("zbuffer", "reference"),
                      doc="`zbuffer` (see Warping) or `reference` (the official soft bilinear splat)")


@dataclass(frozen=True)
class ModelConfig:
    lora: str | None = _opt(default=None, doc="LoRA for invert and infer: a hub id or folder (needs `peft`)")
    lora_weight_name: str | None = _opt(default=None, doc="the LoRA's file in that repository or folder")
    lora_scale: float = _opt(default=1.0, doc="LoRA strength")
    offload: str = _opt(default="none", check=_choice("none", "model", "sequential"),
                        doc="`none`, `model` (CPU offload per component), `sequential` (least memory, slowest)")
    vae_slicing: bool = _opt(default=True, doc="VAE memory option")
    vae_tiling: str = _opt(default="auto", check=_choice("auto", "on", "off"),
                           doc="tiled VAE encode/decode (different latents: records store the resolved value); "
                               "`auto`: on for GPUs with less than 44 GiB in total and under `offload: sequential`, "
                               "off on larger GPUs and the CPU")


@dataclass(frozen=True)
class CaptionConfig:
    source: str = _opt(default="source", check=_choice("source", "render", "off"),
                       doc="what a video without a prompt is captioned from: `source` (the clean video), `render` "
                           "(each warped render, as the official code; its holes leak into the text) or `off` (run "
                           "unconditioned)")
    model: str = _opt(default="HuggingFaceTB/SmolVLM-Instruct",
                      doc="vision-language model through transformers' AutoModelForImageTextToText (no remote code); "
                          "default SmolVLM-Instruct, Apache-2.0, 2.2B parameters")
    query: str = _opt(default="Please describe this video in detail.",
                      doc="what the captioner is asked (the official code's query)")
    num_frames: int = _opt(default=8, check=_positive, doc="frames sampled evenly from the 49 and shown as images")
    max_new_tokens: int = _opt(default=160, check=_positive, doc="longest caption the captioner may write")


@dataclass(frozen=True)
class EvalConfig:
    clip_model: str = _opt(default="openai/clip-vit-large-patch14",
                           doc="CLIP for CLIP-T/F/V (transformers CLIPModel); the paper's metric model")
    lpips: bool = _opt(default=True, doc="LPIPS (AlexNet) through torchmetrics; needs torchvision and the AlexNet "
                                         "weights from `python -m inverse_dvs.weights download`, else left empty")


@dataclass(frozen=True)
class InversionConfig:
    model: str = _opt(default="THUDM/CogVideoX-5b-I2V", doc="the video model (hub id or folder), for invert and infer")
    steps: int = _opt(default=30, check=_positive, doc="inversion steps")
    end: str = _opt(default="t_start", check=_choice("t_start", "terminal"),
                    doc="`t_start`: evenly spaced steps up to exactly t_start (positive SNR); `terminal`: the "
                        "trailing grid up to 999 with DDIMInverseScheduler (official)")
    prompt: str = _opt(default="video", check=_choice("video", "empty"),
                       doc="`video`: the video's prompt; `empty`: \"\" (official)")
    guidance_scale: float = _opt(default=1.0, check=_non_negative,
                                 doc="CFG during inversion (1.0: none, half the transformer passes)")
    refine_iterations: int = _opt(default=0, check=_non_negative,
                                  doc="fixed-point refinement per step (0: plain DDIM inversion, as the paper); "
                                      "`end: t_start` only")
    posterior: str = _opt(default="mode", check=_choice("mode", "sample", "reference"),
                          doc="VAE latents of the render: `mode` (deterministic), `sample` (x0, then the image "
                              "latent, drawn from one generator seeded with the run seed) or `reference` (official: "
                              "x0 the mode, the image latent a sample from a fresh generator seeded with the run "
                              "seed, as diffusers' `prepare_latents`)")
    save_trajectory: bool = _opt(default=False, doc="keep every intermediate latent in the inversion file")
    preview: bool = _opt(default=False, doc="decode ε_inv to mp4")


@dataclass(frozen=True)
class SLMConfig:
    enabled: bool = _opt(default=True, doc="Stochastic Latent Modulation on (paper §4.4)")
    mode: str = _opt(default="paper", check=_choice("paper", "reference", "frame"),
                     doc="`paper`: per-channel draws from visible background S = (1−M)·D, one draw for x0 and ε; "
                         "`reference`: independent draws from any visible element (official); `frame`: whole "
                         "C-vectors from the same latent frame")
    mask_pooling: str = _opt(default="block", check=_choice("block", "reference"),
                             doc="visibility → latent cells: `block` (each cell's own 8×8 block) or `reference` "
                                 "(official overlapping bf16 pooling)")
    occlusion_threshold: float = _opt(default=0.0, check=_unit_interval,
                                      doc="a cell is occluded when its pooled visibility < 1 − this")
    background_threshold: float = _opt(default=0.3, check=_unit_interval,
                                       doc="`paper`/`frame`: background D = normalised disparity below this")
    generator: str = _opt(default="stream", check=_choice("stream", "reference"),
                          doc="what SLM draws from: `stream` (a CPU generator of the item's own, from its seed: the "
                              "same draws on every machine) or `reference` (CUDA only: a CUDA generator seeded with "
                              "the run seed, drawing on the GPU as the official code does; its very draws on the same "
                              "GPU model and torch version, README → Fidelity)")
    eps_rank: int = _opt(default=1, check=_non_negative,
                         doc="`reference`: ε is filled on cells at or below the eps_rank-th smallest distinct pooled "
                             "value (0-based; official: 1)")


@dataclass(frozen=True)
class InferenceConfig:
    steps: list[int] = _opt(default=[50], check=_each(_positive), doc="sampling steps (sweep list)")
    strength: list[float] = _opt(default=[0.95], check=_each(_strength),
                                 doc="fraction of the steps run, from t_start (sweep list)")
    guidance_scale: list[float] = _opt(default=[6.0], check=_each(_non_negative),
                                       doc="CFG scale on occluded cells (sweep list)")
    preservation_scale: list[float | None] = _opt(default=[None], check=_each(_non_negative),
                                                  doc="CFG scale on visible cells; null = guidance_scale (sweep list)")
    k_order: list[float] = _opt(default=[10.0], check=_each(_non_negative),
                                doc="K-RNR order k, `adaptive` only (sweep list; 0: the inverted latent itself)")
    adaptive_order: list[float | None] = _opt(default=[3.0], check=_each(_positive),
                                              doc="adaptive order δ ≤ k, null = plain ε⁽ᵏ⁾; `adaptive` only (sweep "
                                                  "list)")
    seeds: list[int] = _opt(default=[], check=lambda k, v: [_seed(f"{k}[{i}]", s) for i, s in enumerate(v)],
                            doc="seeds (sweep list; empty: run.seed)")
    adain: str = _opt(default="frame_channel", check=_choice("frame_channel", "global"),
                      doc="AdaIN statistics per (latent frame, channel) or `global`")
    noise_init: str = _opt(default="adaptive", check=_choice("adaptive", "reference"),
                           doc="`adaptive`: SLM then AdaIN(ε⁽ᵏ⁾, ε⁽ᵟ⁾) (paper); `reference`: noise_rounds × "
                               "{SLM; ε ← ε⁽²⁾} (official)")
    noise_rounds: int = _opt(default=3, check=_positive, doc="`reference` noise initialisation rounds")
    dynamic_cfg: str = _opt(default="off", check=_choice("off", "reference"),
                            doc="`reference`: the official dynamic scale on occluded cells")
    vae_latents: str = _opt(default="inversion", check=_choice("inversion", "resample"),
                            doc="`inversion`: x0 and image condition from the inversion file; `resample`: re-encoded "
                                "as VAE posterior samples with the run seed (official)")
    cache: str = _opt(default="none", check=_choice("none", "first_block", "faster", "pab", "taylorseer"),
                      doc="opt-in reuse of transformer activations across sampling steps (diffusers' cache hooks; "
                          "never during inversion): faster but not exact, quality untested without real weights")
    negative_prompt: str = _opt(default="", doc="negative prompt for CFG")
    fps: float | None = _opt(default=None, check=_positive, doc="output frame rate (null: the source's)")


def _gpu_share(key: str, v: Any) -> None:
    check_value(0 <= v <= 1, key, v, "a share of one GPU in [0, 1] (0: the actor takes no GPU)")


@dataclass(frozen=True)
class ClusterConfig:
    """The Ray backend's actors (`bash run_all.sh CONFIG --ray`, `python -m inverse_dvs.cluster`); run_all.sh alone
    ignores this section, and no key of it changes a result."""

    address: str | None = _opt(default=None, doc="the Ray cluster to join (`auto`, `HOST:6379`, `ray://HOST:10001`); "
                                                 "null: `RAY_ADDRESS`, else one `ray start` began on this machine, "
                                                 "else a local cluster started for the run")
    warp_workers: int = _opt(default=2, check=_positive, doc="CPU actors that warp")
    depth_workers: int = _opt(default=1, check=_positive, doc="actors that estimate depth (each loads the model once)")
    caption_workers: int = _opt(default=1, check=_positive, doc="actors that caption (each loads the captioner once)")
    model_workers: int | str = _opt(default="auto", check=lambda k, v: check_value(
        v == "auto" or (isinstance(v, int) and v > 0), k, v, "'auto' or a positive integer"),
        doc="actors that invert and generate, each with its own CogVideoX; `auto`: one per GPU of the cluster "
            "(`model_gpus` each), 1 without GPUs")
    depth_gpus: float = _opt(default=0.25, check=_gpu_share, doc="GPU share each depth actor reserves")
    caption_gpus: float = _opt(default=0.25, check=_gpu_share, doc="GPU share each caption actor reserves")
    model_gpus: float = _opt(default=1.0, check=_gpu_share, doc="GPU share each model actor reserves")
    cpus_per_worker: float = _opt(default=1.0, check=_positive, doc="CPUs each actor reserves")
    retries: int = _opt(default=2, check=lambda k, v: check_value(isinstance(v, int) and v >= 0, k, v,
                                                                  "an integer ≥ 0"),
                        doc="times an item is tried again after its actor or node died (a bad input is never "
                            "retried)")


@dataclass(frozen=True)
class Config:
    run: RunConfig
    videos: tuple[VideoSpec, ...]
    trajectories: tuple[TrajectorySpec, ...]
    depth: DepthConfig
    camera: CameraConfig
    warp: WarpConfig
    model: ModelConfig
    caption: CaptionConfig
    inversion: InversionConfig
    slm: SLMConfig
    inference: InferenceConfig
    eval: EvalConfig
    cluster: ClusterConfig
    source: str = "config.yml"
    base_dir: str = "."  # the config file's folder: relative paths are looked up there, then in PROJECT_ROOT
    method: str = DEFAULT_METHOD
    # (dotted key, value) of every preset key whose configured value differs from the method's preset
    custom: tuple[tuple[str, Any], ...] = ()
    # core.backbone.Backbone of inversion.model, read from its config files by `resolve_config` (None: not resolved,
    # or not on this machine)
    backbone: Any = None
    resolved: bool = False  # `resolve_config` has run

    def video(self, name: str) -> VideoSpec:
        return next(v for v in self.videos if v.name == name)

    def model_hw(self, source_hw: tuple[int, int]) -> tuple[int, int]:
        """(height, width) the model runs a video of `source_hw` (its file's height, width) at: camera.height/width,
        or with `auto` the backbone's size for the video's aspect (`core.backbone.Backbone.auto_size`; a fixed-size
        model's `auto` is resolved with the backbone, `config.resolve_config`)."""
        c = self.camera
        if c.height != "auto":
            return c.height, c.width
        return self.require_backbone("camera.height").auto_size(source_hw)

    def warp_hw(self, source_hw: tuple[int, int]) -> tuple[int, int]:
        """Size a video of `source_hw` is decoded, given depth and warped at."""
        c = self.camera
        return tuple(c.warp_size) if c.warp_size else self.model_hw(source_hw)

    def require_backbone(self, key: str):
        """The backbone, or UserError: `key` is `auto` and the model's config files are not on this machine."""
        if self.backbone is None:
            raise UnresolvedAuto(key, self.inversion.model, self.resolved)
        return self.backbone

    @property
    def may_window(self) -> bool:
        """Whether a clip can be longer than one window (`camera.num_frames` all, or above `camera.window`)."""
        c = self.camera
        for key in ("num_frames", "window"):
            if getattr(c, key) == "auto":
                raise UnresolvedAuto(f"camera.{key}", self.inversion.model, self.resolved)
        return c.num_frames == "all" or c.num_frames > c.window

    @property
    def model_frames(self) -> int:
        """Frames per model call: the clip when it fits in one window, else `camera.window`."""
        return self.camera.window if self.may_window else self.camera.num_frames

    @property
    def work_dir(self) -> Path:
        return Path(self.run.work_dir)


SECTIONS: dict[str, type] = {
    "run": RunConfig,
    "depth": DepthConfig,
    "camera": CameraConfig,
    "warp": WarpConfig,
    "model": ModelConfig,
    "caption": CaptionConfig,
    "inversion": InversionConfig,
    "slm": SLMConfig,
    "inference": InferenceConfig,
    "eval": EvalConfig,
    "cluster": ClusterConfig,
}
TOP_KEYS = ("method", "videos", "trajectories", *SECTIONS)



def section_dict(obj: Any) -> dict:
    """JSON-friendly dict of a config section (used in meta.json dependency records)."""
    return json_ready(dataclasses.asdict(obj))


def json_ready(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: json_ready(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_ready(v) for v in x]
    return x


