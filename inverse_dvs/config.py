"""Typed configuration: `config.yml` → frozen dataclasses, validated before any model loads.

Every error names the key (dotted path), the value and what is allowed; unknown keys get the nearest valid key
as a suggestion. Relative file paths (videos, trajectory and pose files, prompt files, depth files, local model
folders) are looked up in the config file's folder, then in the project root; `run.work_dir` is relative to the
current directory (`run_all.sh` runs from the project root).

`method: paper | reference` picks the defaults of every key where the paper text and the official code differ
(`METHOD_PRESETS`); a key written in the config (or given with --set) always wins over the preset.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .core.camera import PRESETS
from .infra.errors import ConfigError

METHODS = ("paper", "reference")
# the checkout holding run_all.sh (relative paths fall back to it); the current directory for an installed package
_HERE = Path(__file__).resolve().parents[1]
PROJECT_ROOT = _HERE if (_HERE / "run_all.sh").is_file() else Path.cwd()
_NAME_RE = re.compile(r"^[^\W_][\w.-]*$")  # letters (any script), digits, '_', '.', '-': it becomes a folder name
MAX_SIDE = 4096  # camera.height/width: beyond any video model's size
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a 64-bit integer


class _Loader(yaml.SafeLoader):
    """YAML as a config wants it: a key given twice in one mapping is an error (plain YAML keeps the second mapping
    silently), and `1e30` is a number (YAML 1.1 needs a dot: `1.0e30`; YAML 1.2 does not)."""

    def construct_mapping(self, node, deep=False):
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in lines:
                raise _DuplicateKey(key, lines[key], line)
            lines[key] = line
        return super().construct_mapping(node, deep)


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first: int, second: int):
        super().__init__(key, first, second)
        self.key, self.first, self.second = key, first, second


_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def _yaml(text: str, where: str) -> Any:
    """Parse config YAML (`_Loader`); ConfigError naming `where` on a syntax error or a repeated key."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(f"{where}: key '{exc.key}' is given twice in one section (lines {exc.first} and "
                          f"{exc.second}); YAML would silently keep only the second. Merge them into one.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from None


def _check(cond: bool, key: str, value: Any, allowed: str) -> None:
    if not cond:
        raise ConfigError(f"config key '{key}' has value {value!r}; allowed: {allowed}.")


def _choice(*options: str):
    def check(key: str, v: Any) -> None:
        _check(v in options, key, v, "one of " + ", ".join(repr(o) for o in options))

    check.choices = options  # YAML reads a bare off/on as false/true: _build maps them back where they are choices
    return check


def _positive(key: str, v: Any) -> None:
    _check(v > 0, key, v, "a number > 0")


def _seed(key: str, v: Any) -> None:
    _check(0 <= v <= MAX_SEED, key, v, "an integer in [0, 2^63 − 1] (a 64-bit generator seed)")


def _side(key: str, v: Any) -> None:
    _check(0 < v <= MAX_SIDE and v % 16 == 0, key, v, f"a positive multiple of 16 up to {MAX_SIDE}")


def _non_negative(key: str, v: Any) -> None:
    _check(v >= 0, key, v, "a number >= 0")


def _unit_interval(key: str, v: Any) -> None:
    _check(0.0 <= v <= 1.0, key, v, "a number in [0, 1]")


def _strength(key: str, v: Any) -> None:
    _check(0.0 < v < 1.0, key, v, "a number in (0, 1); 1.0 would start from pure noise (zero terminal SNR)")


def _each(check):
    def run(key: str, values: list) -> None:
        _check(len(values) > 0, key, values, "a non-empty list")
        for i, v in enumerate(values):
            if v is not None:
                check(f"{key}[{i}]", v)

    return run


def _opt(**kw) -> Any:
    default = kw.pop("default")
    if isinstance(default, list):
        return field(default_factory=lambda d=default: list(d), metadata=kw)
    return field(default=default, metadata=kw)


@dataclass(frozen=True)
class RunConfig:
    work_dir: str = _opt(default="outputs", check=lambda k, v: _check(
        v.strip() != "", k, v, "a folder name or path; an empty value would write into the current folder"),
        doc="root of all artifacts (relative to the current directory; `run_all.sh` runs from the project root)")
    device: str = _opt(default="auto", check=lambda k, v: _check(
        re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", v) is not None, k, v, "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
        doc="`auto` (this process's GPU, else CPU), `cpu`, `cuda`, `cuda:N`")
    dtype: str = _opt(default="bf16", check=_choice("bf16", "fp16", "fp32"),
                      doc="model precision on GPU (CPU always computes in fp32)")
    seed: int = _opt(default=42, check=_seed, doc="default seed (SLM draws, VAE posterior samples)")
    gpus: list[int] | str | None = _opt(default=None, check=lambda k, v: _check(
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
    ema: float = _opt(default=0.0, check=lambda k, v: _check(0.0 <= v < 1.0, k, v, "a number in [0, 1)"),
                      doc="`percentile`: temporal smoothing of the stabilised disparity (0 = off)")
    repair_invalid: bool = _opt(default=False, doc="replace NaN/inf (and depth ≤ 0) with the frame median, constant "
                                                   "frames with the nearest valid one (warned), instead of failing")


@dataclass(frozen=True)
class CameraConfig:
    num_frames: int = _opt(default=49, check=_positive, doc="frames per video (CogVideoX-5B-I2V: 49)")
    height: int = _opt(default=480, check=_side, doc="model height (CogVideoX-5B-I2V only runs at 480×720)")
    width: int = _opt(default=720, check=_side, doc="model width")
    start: int = _opt(default=0, check=_non_negative, doc="first source frame")
    stride: int = _opt(default=1, check=_positive, doc="take every stride-th frame")
    pad_short: bool = _opt(default=False, doc="repeat the last frame of videos too short for num_frames (warned)")
    resize: str = _opt(default="crop", check=_choice("crop", "pad", "stretch"),
                       doc="`crop` (cover, centre crop), `pad` (fit, black borders) or `stretch` (each axis on its "
                           "own, as the official code)")
    warp_size: list[int] | None = _opt(default=None, check=lambda k, v: _check(
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
    radius_scale: float = _opt(default=1.0, check=_positive,
                               doc="scene radius = depth at the first frame's centre × this, capped at max_radius")
    max_radius: float = _opt(default=5.0, check=_positive, doc="see `radius_scale`")
    intrinsics: str = _opt(default="fov", check=_choice("fov", "focal", "reference"),
                           doc="at the warp size: `fov` (`fov_deg`), `focal` (`focal` px) or `reference` (official: "
                               "f = 500, c = (512, 288) at 1024×576, scaled per axis)")
    fov_deg: float = _opt(default=60.0, check=lambda k, v: _check(1.0 <= v <= 170.0, k, v, "degrees in [1, 170]"),
                          doc="`fov`: horizontal field of view in degrees")
    focal: float = _opt(default=500.0, check=_positive, doc="`focal`: focal length in pixels")
    cx: float | None = _opt(default=None, doc="principal point x in pixels (null: the image centre)")
    cy: float | None = _opt(default=None, doc="principal point y in pixels (null: the image centre)")


@dataclass(frozen=True)
class WarpConfig:
    batch_size: int = _opt(default=1, check=_positive,
                           doc="frames per warp call (1 is fastest on CPU; raise it on a GPU)")
    max_footprint: int = _opt(default=4, check=lambda k, v: _check(1 <= v <= 8, k, v, "an integer in [1, 8]"),
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
    k_order: list[float] = _opt(default=[10.0], check=_each(_positive),
                                doc="K-RNR order k, `adaptive` only (sweep list)")
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
    source: str = "config.yml"
    base_dir: str = "."  # the config file's folder: relative paths are looked up there, then in PROJECT_ROOT
    method: str = "paper"
    # (dotted key, value) of every preset key whose configured value differs from the method's preset
    custom: tuple[tuple[str, Any], ...] = ()

    def video(self, name: str) -> VideoSpec:
        return next(v for v in self.videos if v.name == name)

    @property
    def warp_hw(self) -> tuple[int, int]:
        """Size the source is decoded, given depth and warped at."""
        c = self.camera
        return tuple(c.warp_size) if c.warp_size else (c.height, c.width)

    @property
    def work_dir(self) -> Path:
        return Path(self.run.work_dir)


_SECTIONS: dict[str, type] = {
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
}
_TOP_KEYS = ("method", "videos", "trajectories", *_SECTIONS)

REFERENCE_NEGATIVE_PROMPT = ("crowded scene, car in the road, bad anatomy, deformed body, occlusions, dark scene, "
                             "black, unseen regions, black & white, blurry, pixelated.")

# The defaults `method` selects: every key where the paper text (arXiv 2506.08004) and the official code
# (github.com/yesiltepe-hidir/inverse-dvs) differ. README → Fidelity says what each one controls.
METHOD_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {
        "camera": {"warp_size": None, "resize": "crop", "intrinsics": "fov", "mask_resize": "area",
                   "render_resize": "round", "r_spline": "fraction"},
        "depth": {"mapping": "percentile"},
        "warp": {"splat": "zbuffer"},
        "caption": {"source": "source"},
        "inversion": {"end": "t_start", "prompt": "video", "posterior": "mode"},
        "slm": {"mode": "paper", "mask_pooling": "block"},
        "inference": {"steps": [50], "strength": [0.95], "guidance_scale": [6.0], "preservation_scale": [None],
                      "k_order": [10.0], "adaptive_order": [3.0], "noise_init": "adaptive", "dynamic_cfg": "off",
                      "vae_latents": "inversion", "negative_prompt": "", "fps": None},
        "model": {"lora": None, "lora_weight_name": None},
    },
    "reference": {
        "camera": {"warp_size": [576, 1024], "resize": "stretch", "intrinsics": "reference", "mask_resize": "reference",
                   "render_resize": "reference", "r_spline": "distance"},
        "depth": {"mapping": "reference"},
        "warp": {"splat": "reference"},
        "caption": {"source": "render"},
        "inversion": {"end": "terminal", "prompt": "empty", "posterior": "reference"},
        "slm": {"mode": "reference", "mask_pooling": "reference"},
        "inference": {"steps": [30], "strength": [0.98], "guidance_scale": [10.0, 12.0], "preservation_scale": [1.0],
                      "k_order": [10.0], "adaptive_order": [None], "noise_init": "reference",
                      "dynamic_cfg": "reference", "vae_latents": "resample",
                      "negative_prompt": REFERENCE_NEGATIVE_PROMPT, "fps": 30.0},
        "model": {"lora": "Eyeline-Research/Go-with-the-Flow",
                  "lora_weight_name": "I2V5B_final_i38800_nearest_lora_weights.safetensors"},
    },
}


def _unknown(key: str, allowed: typing.Iterable[str]) -> ConfigError:
    allowed = list(allowed)
    near = difflib.get_close_matches(key.rsplit(".", 1)[-1], allowed, n=1)
    hint = f" Did you mean '{near[0]}'?" if near else ""
    return ConfigError(f"unknown config key '{key}'.{hint} Allowed keys here: {', '.join(allowed)}.")


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check `value` against the annotation `tp`; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for i, alt in enumerate(inner):
            try:
                return _coerce(key, value, alt)
            except ConfigError:
                if i == len(inner) - 1:
                    raise
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            value = [value]  # a scalar where a sweep list is expected means a one-element sweep
        coerced = [_coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value)]
        return coerced if origin is list else tuple(coerced)
    if tp is bool:
        _check(isinstance(value, bool), key, value, "true or false")
        return value
    if tp is int:
        _check(isinstance(value, int) and not isinstance(value, bool), key, value, "an integer")
        return value
    if tp is float:
        _check(isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value),
               key, value, "a finite number")
        return float(value)
    if tp is str:
        _check(isinstance(value, str), key, value, "a string")
        return value
    raise TypeError(f"unsupported annotation {tp!r} for {key}")


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config key '{prefix}' must be a mapping of keys to values, got {data!r}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown(f"{prefix}.{key}", fields)
        f = fields[key]
        dotted = f"{prefix}.{key}"
        choices = getattr(f.metadata.get("check"), "choices", ())
        if isinstance(value, bool) and ("on" if value else "off") in choices:
            value = "on" if value else "off"
        v = _coerce(dotted, value, hints[key])
        if v is not None and "check" in f.metadata:
            f.metadata["check"](dotted, v)
        kwargs[key] = v
    missing = [n for n, f in fields.items()
               if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"config section '{prefix}' is missing required key(s): {', '.join(missing)}.")
    return cls(**kwargs)


def _glob(pattern: str, base: Path) -> list[str]:
    """Files matching a pattern, relative to the config's folder (else the project root), sorted."""
    if Path(pattern).is_absolute():
        return sorted(str(p) for p in Path("/").glob(pattern.lstrip("/")) if p.is_file())
    for root in (base, PROJECT_ROOT):
        found = sorted(str(p) for p in root.glob(pattern) if p.is_file())
        if found:
            return found
    return []


def name_from_stem(stem: str) -> str:
    """A folder-safe video name from a file stem the user did not choose as a name: letters of any script, digits,
    '.', '-' kept; everything else (spaces, punctuation) becomes '_' (`my clip ü 日本` → `my_clip_ü_日本`)."""
    return re.sub(r"[^\w.-]+", "_", stem).strip("_.-") or "video"  # stripped: it starts with a letter or digit


def _build_videos(data: Any, base: Path) -> tuple[VideoSpec, ...]:
    if not isinstance(data, list) or not data:
        raise ConfigError(f"config key 'videos' has value {data!r}; allowed: a non-empty list of "
                          "{path: ..., name: ..., prompt: ...} entries.")
    videos = []
    for i, item in enumerate(data):
        if isinstance(item, str):
            item = {"path": item}
        v = _build(VideoSpec, item, f"videos[{i}]")
        if any(ch in v.path for ch in "*?["):  # a folder of videos: one entry per match, named by its stem
            if v.name:
                raise ConfigError(f"config key 'videos[{i}]': a pattern ({v.path!r}) names many videos; drop 'name'.")
            matches = _glob(v.path, base)
            if not matches:
                raise ConfigError(f"config key 'videos[{i}].path': no file matches {v.path!r} (looked in {base} and "
                                  f"{PROJECT_ROOT}).")
            items = [dataclasses.replace(v, path=m) for m in matches]
        else:
            items = [v]
        for v in items:
            if v.name:
                _check(_NAME_RE.match(v.name) is not None, f"videos[{i}].name", v.name,
                       "letters (any script), digits, '_', '-', '.', starting with a letter or digit (it becomes a "
                       "folder name)")
            videos.append(dataclasses.replace(v, name=v.name or name_from_stem(Path(v.path).stem)))
    names = [v.name for v in videos]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"config key 'videos' names {sorted(dup)} more than once (names come from the file stems "
                          "where no 'name' is given); give each video a unique 'name'.")
    return tuple(videos)


def _build_trajectories(data: Any) -> tuple[TrajectorySpec, ...]:
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"config key 'trajectories' has value {data!r}; allowed: a mapping of name → "
                          "{file: PATH} | {theta: [...], phi: [...], r: [...]} | {preset: NAME, amount: X} | "
                          "{poses: PATH.json}.")
    out = []
    for name, spec in data.items():
        key = f"trajectories.{name}"
        _check(isinstance(name, str) and _NAME_RE.match(name) is not None, "trajectories", name,
               "trajectory names made of letters, digits, '_', '-', '.'")
        if not isinstance(spec, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {spec!r}.")
        t = _build(TrajectorySpec, {**spec, "name": name}, key)
        forms = [t.file is not None, t.preset is not None, t.poses is not None,
                 any(x is not None for x in (t.theta, t.phi, t.r))]
        if sum(forms) != 1:
            raise ConfigError(f"config key '{key}' must use exactly one of: 'file', inline 'theta'/'phi'/'r', "
                              f"'preset' (+ 'amount'), 'poses'; got keys {sorted(spec)}.")
        if t.kind == "keyframes":
            for k in ("theta", "phi", "r"):
                _check(getattr(t, k) is not None and len(getattr(t, k)) >= 1, f"{key}.{k}", getattr(t, k),
                       "a non-empty list of numbers (all of theta, phi and r are needed)")
        if t.kind == "preset":
            for part in t.preset.split("+"):
                if part not in PRESETS:
                    near = difflib.get_close_matches(part, PRESETS, n=1)
                    hint = f" Did you mean '{near[0]}'?" if near else ""
                    raise ConfigError(f"config key '{key}.preset' has unknown preset '{part}'.{hint} "
                                      f"Allowed: {', '.join(PRESETS)}, combined with '+' (e.g. orbit_left+arc_up).")
            amount = 20.0 if t.amount is None else t.amount
            t = dataclasses.replace(t, amount=amount)
        elif t.amount is not None:
            raise ConfigError(f"config key '{key}.amount' only applies to presets; remove it or add 'preset'.")
        out.append(t)
    return tuple(out)


def _set_dotted(data: dict, assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"--set expects section.key=value, got {assignment!r}.")
    path, raw = assignment.split("=", 1)
    parts = path.strip().split(".")
    if parts[0] not in _TOP_KEYS:
        raise _unknown(parts[0], _TOP_KEYS)
    value = _yaml(raw, f"--set {assignment!r}: the value") if raw.strip() else ""
    node = data
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[parts[-1]] = value


def load_config(path: str | Path = "config.yml", overrides: typing.Sequence[str] = ()) -> Config:
    """Read, override, type-check and validate a config file; resolve relative paths. Raises ConfigError naming the
    key. Missing input files are not errors here: they fail their own items (and preflight lists them up front)."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else f"does not exist (looked in {path.absolute().parent})"
        raise ConfigError(f"config file '{path}' {what}. `bash run_all.sh CONFIG` looks for CONFIG in the folder it "
                          "is called from, then in the project folder; `python -m inverse_dvs.STAGE --config PATH` "
                          "reads PATH from the current folder. The project's own configs: config.yml and "
                          "configs/*.yml, e.g. `bash run_all.sh configs/tiny.yml`.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file '{path}' is not UTF-8 text; save it as UTF-8.") from None
    data = _yaml(text, f"config file '{path}'") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must be a mapping of sections, got {type(data).__name__}.")
    for o in overrides:
        _set_dotted(data, o)
    for key in data:
        if key not in _TOP_KEYS:
            raise _unknown(str(key), _TOP_KEYS)
    for key in ("videos", "trajectories"):
        if key not in data:
            raise ConfigError(f"config file '{path}' has no '{key}' section; see config.yml for an example.")
    base = path.resolve().parent
    method = data.get("method", "paper")
    _check(method in METHODS, "method", method, "one of " + ", ".join(repr(m) for m in METHODS))
    sections, custom = {}, []
    for name, cls in _SECTIONS.items():
        preset = METHOD_PRESETS[method].get(name, {})
        given = data.get(name)
        merged = {**preset, **given} if isinstance(given, dict) else (given if given is not None else dict(preset))
        sections[name] = _build(cls, merged, name)
        if preset and isinstance(given, dict):
            pure = _build(cls, preset, name)
            custom += [(f"{name}.{k}", getattr(sections[name], k)) for k in preset
                       if k in given and getattr(sections[name], k) != getattr(pure, k)]
    cfg = Config(videos=_build_videos(data["videos"], base), trajectories=_build_trajectories(data["trajectories"]),
                 source=str(path), base_dir=str(base), method=method, custom=tuple(custom), **sections)
    cfg = _resolve_paths(cfg, base)
    _cross_checks(cfg)
    return cfg


def _cross_checks(cfg: Config) -> None:
    inf = cfg.inference
    if cfg.inversion.refine_iterations and cfg.inversion.end == "terminal":
        raise ConfigError(f"config key 'inversion.refine_iterations' is {cfg.inversion.refine_iterations}, but "
                          "'inversion.end' is 'terminal': refinement needs the model at the lower timestep of each "
                          "step; use inversion.end: t_start or refine_iterations: 0.")
    for k in inf.k_order if inf.noise_init == "adaptive" else ():
        for d in inf.adaptive_order:
            if d is not None and d > k:
                raise ConfigError(f"config key 'inference.adaptive_order' has value {d} larger than "
                                  f"'inference.k_order' {k}; allowed: adaptive order δ <= k (paper: k=10, δ=3).")
    for n in inf.steps:
        for s in inf.strength:
            if int(n * s) < 1:
                raise ConfigError(f"config keys 'inference.steps' ({n}) and 'inference.strength' ({s}): "
                                  f"⌊steps·strength⌋ = {int(n * s)} leaves no sampling step, so no t_start can be "
                                  "reached; raise steps or strength (paper: 50 steps, strength 0.95).")
    c = cfg.camera
    wh, ww = cfg.warp_hw
    if c.resize != "stretch" and abs(wh / ww - c.height / c.width) > 0.01:
        raise ConfigError(f"config key 'camera.warp_size' {c.warp_size} has another aspect than camera.height × width "
                          f"({c.height}×{c.width}); the render would be stretched to it. Set camera.resize: stretch "
                          "(what the official code does) or a warp_size with the same aspect.")
    r = cfg.run
    if r.gpus is not None and (r.gpus == "all" or len(r.gpus) > 1) and re.fullmatch(r"cuda:\d+", r.device):
        raise ConfigError(f"config key 'run.device' is {r.device!r} with run.gpus {r.gpus!r}: every process would "
                          "compute on that one GPU. Set run.device: auto (each process takes its own GPU of run.gpus).")
    if r.compile == "on" and cfg.model.offload == "sequential":
        raise ConfigError("config keys 'run.compile' (on) and 'model.offload' (sequential) cannot be combined: "
                          "sequential offload puts accelerate hooks on every layer inside the transformer blocks, and "
                          "a block compiled as one graph cannot trace them. Set run.compile: auto (compiles when it "
                          "can) or off, or use model.offload: model, which compiles.")
    if cfg.depth.near >= cfg.depth.far:
        raise ConfigError(f"config keys 'depth.near' ({cfg.depth.near}) and 'depth.far' ({cfg.depth.far}): "
                          "near must be smaller than far.")


def resolve_path(p: str, base: Path) -> str:
    """A relative path found in `base` (the config's folder), else in PROJECT_ROOT; absolute paths stay. A path
    found nowhere is returned under `base`, where messages then say it was expected."""
    q = Path(p).expanduser()
    if q.is_absolute():
        return str(q)
    for root in (base, PROJECT_ROOT):
        if (root / q).exists():
            return str(root / q)
    return str(base / q)


def _local_model(m: str | None, base: Path) -> str | None:
    """A model that names an existing folder (config folder or project root) becomes its absolute path; anything
    else (a Hugging Face id) stays as written."""
    if not m:
        return m
    for root in (base, PROJECT_ROOT):
        if not Path(m).is_absolute() and (root / m).is_dir():
            return str(root / m)
    return m


def _resolve_paths(cfg: Config, base: Path) -> Config:
    videos = []
    for v in cfg.videos:
        prompt_file = next((str(r / "prompts" / f"{v.name}.txt") for r in (base, PROJECT_ROOT)
                            if (r / "prompts" / f"{v.name}.txt").is_file()), None)
        videos.append(dataclasses.replace(v, path=resolve_path(v.path, base), prompt_file=prompt_file))
    trajectories = [dataclasses.replace(t, **{a: resolve_path(getattr(t, a), base) for a in ("file", "poses")
                                              if getattr(t, a) is not None}) for t in cfg.trajectories]
    return dataclasses.replace(
        cfg, videos=tuple(videos), trajectories=tuple(trajectories),
        depth=dataclasses.replace(cfg.depth, model=_local_model(cfg.depth.model, base)),
        inversion=dataclasses.replace(cfg.inversion, model=_local_model(cfg.inversion.model, base)),
        model=dataclasses.replace(cfg.model, lora=_local_model(cfg.model.lora, base)),
        caption=dataclasses.replace(cfg.caption, model=_local_model(cfg.caption.model, base)),
        eval=dataclasses.replace(cfg.eval, clip_model=_local_model(cfg.eval.clip_model, base)))


def select(cfg: Config, only_video: str | None, only_trajectory: str | None) -> tuple[list[VideoSpec],
                                                                                        list[TrajectorySpec]]:
    """Filter videos/trajectories by the CLI's --only-* options (comma-separated names)."""

    def pick(items, wanted, key):
        if not wanted:
            return list(items)
        names = [w.strip() for w in wanted.split(",")]
        known = [i.name for i in items]
        for n in names:
            if n not in known:
                near = difflib.get_close_matches(n, known, n=1)
                hint = f" Did you mean '{near[0]}'?" if near else ""
                raise ConfigError(f"{key}: no {key.split('-')[-1]} named '{n}' in the config (have: "
                                  f"{', '.join(known)}).{hint}")
        return [i for i in items if i.name in names]

    return pick(cfg.videos, only_video, "--only-video"), pick(cfg.trajectories, only_trajectory, "--only-trajectory")


def section_dict(obj: Any) -> dict:
    """JSON-friendly dict of a config section (used in meta.json dependency records)."""
    return json_ready(dataclasses.asdict(obj))


def json_ready(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: json_ready(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_ready(v) for v in x]
    return x


def read_prompt(video: VideoSpec) -> str:
    """Prompt per video: the config's `prompt`, else `prompts/{name}.txt` (UTF-8; in the config's folder, else the
    project root), else empty."""
    if video.prompt:
        return video.prompt
    if video.prompt_file:
        try:
            return Path(video.prompt_file).read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise ConfigError(f"prompt file '{video.prompt_file}' (video '{video.name}') is not UTF-8 text; re-save "
                              "it as UTF-8.") from None
    return ""


# ------------------------------------------------------------------------------------------------ reference table
def _fmt(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return f'"{v}"' if v == "" else str(v)


def config_reference() -> str:
    """The README's config table, generated from the dataclasses: every key, its default (`method: paper`), the
    `method: reference` value where it differs, and what it does."""
    rows = [
        "| key | default | `method: reference` | meaning |",
        "|---|---|---|---|",
        "| `method` | `paper` | | `paper` or `reference`: the defaults of every key that has a value in the third "
        "column (README → Fidelity); a key written in the config wins |",
        "| `videos[]` | | | `{path, name (default: the file stem), prompt}`; a glob path (`videos/*.mp4`) adds every "
        "match, each named by its stem; a missing prompt is read from "
        "`prompts/{name}.txt` (config folder, then project root) |",
        "| `trajectories.NAME` | | | one of `{file: PATH}` (3-line θ/φ/r keyframe file), `{theta: […], phi: […], "
        "r: […]}`, `{preset: orbit_left\\|orbit_right\\|arc_up\\|arc_down\\|dolly_in\\|dolly_out (combine with +), "
        "amount: X}` (degrees; percent of the scene radius for dolly), `{poses: PATH.json}` (T camera-to-world 4×4) |",
    ]
    for section, cls in _SECTIONS.items():
        ref = METHOD_PRESETS["reference"].get(section, {})
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            alt = f"`{_fmt(ref[f.name])}`" if f.name in ref and ref[f.name] != default else ""
            doc = f.metadata.get("doc", "").replace("|", "\\|")
            rows.append(f"| `{section}.{f.name}` | `{_fmt(default)}` | {alt} | {doc} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m inverse_dvs.config --markdown   (prints the README's config table)")
    sys.stdout.write(config_reference())
