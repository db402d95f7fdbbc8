"""Typed configuration: `config.yml` → frozen dataclasses, validated before any model loads.

Every error names the key (dotted path), the value and what is allowed; unknown keys get the nearest valid key
as a suggestion. Relative paths are resolved against the current working directory (`run_all.sh` runs from the
repository root).

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

from .errors import ConfigError

METHODS = ("paper", "reference")
PRESETS = ("orbit_left", "orbit_right", "arc_up", "arc_down", "dolly_in", "dolly_out")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check(cond: bool, key: str, value: Any, allowed: str) -> None:
    if not cond:
        raise ConfigError(f"config key '{key}' has value {value!r}; allowed: {allowed}.")


def _choice(*options: str):
    return lambda key, v: _check(v in options, key, v, "one of " + ", ".join(repr(o) for o in options))


def _positive(key: str, v: Any) -> None:
    _check(v > 0, key, v, "a number > 0")


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
    work_dir: str = "outputs"
    device: str = _opt(default="auto", check=lambda k, v: _check(
        re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", v) is not None, k, v, "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"))
    dtype: str = _opt(default="bf16", check=_choice("bf16", "fp16", "fp32"))
    seed: int = _opt(default=42, check=_non_negative)
    # None: one process on `device`; [0, 1, ...] or "all": one process per GPU through `accelerate launch`.
    gpus: list[int] | str | None = _opt(default=None, check=lambda k, v: _check(
        v == "all" or (isinstance(v, list) and v and all(i >= 0 for i in v)), k, v,
        "null, 'all' or a non-empty list of GPU indices like [0, 1]"))


@dataclass(frozen=True)
class VideoSpec:
    path: str
    name: str = ""
    prompt: str = ""


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
    backend: str = _opt(default="depth_anything", check=_choice("depth_anything", "npz", "ground_truth"))
    model: str = "depth-anything/Depth-Anything-V2-Large-hf"
    batch_size: int = _opt(default=8, check=_positive)
    # npz backend: template with {name} (video name) and {stem}/{dir} of the video path.
    npz_path: str = "{dir}/{stem}_depths.npz"
    npz_kind: str = _opt(default="disparity", check=_choice("disparity", "depth"))
    npz_key: str = ""
    # Relative disparity → metric-like depth: disparity percentiles map to [1/far, 1/near].
    near: float = _opt(default=1.0, check=_positive)
    far: float = _opt(default=20.0, check=_positive)
    # percentile: the above, after stabilisation; reference: the official whole-video min–max mapping
    # depth = 10000 / max(3900·n, 1e-5) clipped to [1e-4, 1e4], without stabilisation
    mapping: str = _opt(default="percentile", check=_choice("percentile", "reference"))
    stabilize: bool = True
    ema: float = _opt(default=0.0, check=lambda k, v: _check(0.0 <= v < 1.0, k, v, "a number in [0, 1)"))
    repair_invalid: bool = False


@dataclass(frozen=True)
class CameraConfig:
    num_frames: int = _opt(default=49, check=_positive)
    height: int = _opt(default=480, check=lambda k, v: _check(v > 0 and v % 16 == 0, k, v,
                                                                "a positive multiple of 16"))
    width: int = _opt(default=720, check=lambda k, v: _check(v > 0 and v % 16 == 0, k, v,
                                                              "a positive multiple of 16"))
    start: int = _opt(default=0, check=_non_negative)
    stride: int = _opt(default=1, check=_positive)
    pad_short: bool = False
    resize: str = _opt(default="crop", check=_choice("crop", "pad", "stretch"))
    # [H, W] the source is decoded, given depth and warped at (null: height × width); the render and visibility are
    # then resized to height × width (bilinear / area), as the official code does from 576×1024
    warp_size: list[int] | None = _opt(default=None, check=lambda k, v: _check(
        len(v) == 2 and all(x >= 16 for x in v), k, v, "null or [height, width] with both >= 16, e.g. [576, 1024]"))
    radius_scale: float = _opt(default=1.0, check=_positive)
    max_radius: float = _opt(default=5.0, check=_positive)
    intrinsics: str = _opt(default="fov", check=_choice("fov", "focal", "reference"))
    fov_deg: float = _opt(default=60.0, check=lambda k, v: _check(1.0 <= v <= 170.0, k, v, "degrees in [1, 170]"))
    focal: float = _opt(default=500.0, check=_positive)
    cx: float | None = None
    cy: float | None = None


@dataclass(frozen=True)
class WarpConfig:
    # Frames per warp call: 1 is fastest on CPU (per-frame arrays stay in cache); raise it on a GPU.
    batch_size: int = _opt(default=1, check=_positive)
    max_footprint: int = _opt(default=4, check=lambda k, v: _check(1 <= v <= 8, k, v, "an integer in [1, 8]"))
    edge_tolerance: float = _opt(default=0.05, check=_positive)
    min_visible_warn: float = _opt(default=0.5, check=_unit_interval)
    # zbuffer: hard z-buffer with occluding sheets and back-face holes; reference: the official soft bilinear splat
    splat: str = _opt(default="zbuffer", check=_choice("zbuffer", "reference"))


@dataclass(frozen=True)
class ModelConfig:
    lora: str | None = None
    lora_weight_name: str | None = None
    lora_scale: float = 1.0
    offload: str = _opt(default="none", check=_choice("none", "model", "sequential"))
    vae_slicing: bool = True
    vae_tiling: bool = False


@dataclass(frozen=True)
class InversionConfig:
    model: str = "THUDM/CogVideoX-5b-I2V"
    steps: int = _opt(default=30, check=_positive)
    # t_start: invert up to the first sampling timestep (positive SNR, paper); terminal: up to 999 on the trailing
    # grid with DDIMInverseScheduler (official code).
    end: str = _opt(default="t_start", check=_choice("t_start", "terminal"))
    # video: the video's prompt; empty: "" (official code).
    prompt: str = _opt(default="video", check=_choice("video", "empty"))
    guidance_scale: float = _opt(default=1.0, check=_non_negative)
    refine_iterations: int = _opt(default=0, check=_non_negative)
    posterior: str = _opt(default="mode", check=_choice("mode", "sample"))
    save_trajectory: bool = False
    preview: bool = False


@dataclass(frozen=True)
class SLMConfig:
    enabled: bool = True
    mode: str = _opt(default="paper", check=_choice("paper", "reference", "frame"))
    # visibility → latent cells: block (each cell's own 8×8 block) or reference (official overlapping bf16 pooling)
    mask_pooling: str = _opt(default="block", check=_choice("block", "reference"))
    occlusion_threshold: float = _opt(default=0.0, check=_unit_interval)
    background_threshold: float = _opt(default=0.3, check=_unit_interval)
    # reference SLM: ε_inv is filled where pooled visibility <= the eps_rank-th smallest distinct value (0-based)
    eps_rank: int = _opt(default=1, check=_non_negative)


@dataclass(frozen=True)
class InferenceConfig:
    steps: list[int] = _opt(default=[50], check=_each(_positive))
    strength: list[float] = _opt(default=[0.95], check=_each(_strength))
    guidance_scale: list[float] = _opt(default=[6.0], check=_each(_non_negative))
    # None → same as guidance_scale (plain CFG everywhere).
    preservation_scale: list[float | None] = _opt(default=[None], check=_each(_non_negative))
    k_order: list[float] = _opt(default=[10.0], check=_each(_positive))
    adaptive_order: list[float | None] = _opt(default=[3.0], check=_each(_positive))
    seeds: list[int] = _opt(default=[], check=lambda k, v: [_non_negative(f"{k}[{i}]", s) for i, s in enumerate(v)])
    adain: str = _opt(default="frame_channel", check=_choice("frame_channel", "global"))
    # adaptive: SLM, then AdaIN(ε^(k), ε^(δ)) (paper); reference: noise_rounds × {SLM; ε ← ε^(2)} (official code)
    noise_init: str = _opt(default="adaptive", check=_choice("adaptive", "reference"))
    noise_rounds: int = _opt(default=3, check=_positive)
    # off: constant scales; reference: the official dynamic scale on occluded cells
    dynamic_cfg: str = _opt(default="off", check=_choice("off", "reference"))
    # inversion: x0 and the image condition stored by invert; resample: re-encoded as VAE posterior samples (run seed)
    vae_latents: str = _opt(default="inversion", check=_choice("inversion", "resample"))
    negative_prompt: str = ""
    fps: float | None = _opt(default=None, check=_positive)


@dataclass(frozen=True)
class Config:
    run: RunConfig
    videos: tuple[VideoSpec, ...]
    trajectories: tuple[TrajectorySpec, ...]
    depth: DepthConfig
    camera: CameraConfig
    warp: WarpConfig
    model: ModelConfig
    inversion: InversionConfig
    slm: SLMConfig
    inference: InferenceConfig
    source: str = "config.yml"
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
    "inversion": InversionConfig,
    "slm": SLMConfig,
    "inference": InferenceConfig,
}
_TOP_KEYS = ("method", "videos", "trajectories", *_SECTIONS)

REFERENCE_NEGATIVE_PROMPT = ("crowded scene, car in the road, bad anatomy, deformed body, occlusions, dark scene, "
                             "black, unseen regions, black & white, blurry, pixelated.")

# The defaults `method` selects: every key where the paper text (arXiv 2506.08004) and the official code
# (github.com/yesiltepe-hidir/inverse-dvs) differ. README → Fidelity says what each one controls.
METHOD_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {
        "camera": {"warp_size": None, "resize": "crop", "intrinsics": "fov"},
        "depth": {"mapping": "percentile"},
        "warp": {"splat": "zbuffer"},
        "inversion": {"end": "t_start", "prompt": "video", "posterior": "mode"},
        "slm": {"mode": "paper", "mask_pooling": "block"},
        "inference": {"steps": [50], "strength": [0.95], "guidance_scale": [6.0], "preservation_scale": [None],
                      "k_order": [10.0], "adaptive_order": [3.0], "noise_init": "adaptive", "dynamic_cfg": "off",
                      "vae_latents": "inversion", "negative_prompt": "", "fps": None},
        "model": {"lora": None, "lora_weight_name": None},
    },
    "reference": {
        "camera": {"warp_size": [576, 1024], "resize": "stretch", "intrinsics": "reference"},
        "depth": {"mapping": "reference"},
        "warp": {"splat": "reference"},
        "inversion": {"end": "terminal", "prompt": "empty", "posterior": "sample"},
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
        v = _coerce(dotted, value, hints[key])
        if v is not None and "check" in f.metadata:
            f.metadata["check"](dotted, v)
        kwargs[key] = v
    missing = [n for n, f in fields.items()
               if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"config section '{prefix}' is missing required key(s): {', '.join(missing)}.")
    return cls(**kwargs)


def _build_videos(data: Any) -> tuple[VideoSpec, ...]:
    if not isinstance(data, list) or not data:
        raise ConfigError(f"config key 'videos' has value {data!r}; allowed: a non-empty list of "
                          "{path: ..., name: ..., prompt: ...} entries.")
    videos = []
    for i, item in enumerate(data):
        if isinstance(item, str):
            item = {"path": item}
        v = _build(VideoSpec, item, f"videos[{i}]")
        name = v.name or Path(v.path).stem
        _check(_NAME_RE.match(name) is not None, f"videos[{i}].name", name,
               "letters, digits, '_', '-', '.' (it becomes a folder name)")
        videos.append(dataclasses.replace(v, name=name))
    names = [v.name for v in videos]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"config key 'videos' names {sorted(dup)} more than once; give each video a unique 'name'.")
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
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {assignment!r}: the value is not valid YAML ({exc}).") from None
    node = data
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[parts[-1]] = value


def load_config(path: str | Path = "config.yml", overrides: typing.Sequence[str] = (),
                check_paths: bool = True) -> Config:
    """Read, override, type-check and validate a config file. Raises ConfigError naming the key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist. Pass --config PATH (default: config.yml in the "
                          "current directory), e.g. `--config configs/tiny.yml`.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {exc}") from None
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
    cfg = Config(videos=_build_videos(data["videos"]), trajectories=_build_trajectories(data["trajectories"]),
                 source=str(path), method=method, custom=tuple(custom), **sections)
    _cross_checks(cfg)
    if check_paths:
        _check_paths(cfg)
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
    if cfg.depth.near >= cfg.depth.far:
        raise ConfigError(f"config keys 'depth.near' ({cfg.depth.near}) and 'depth.far' ({cfg.depth.far}): "
                          "near must be smaller than far.")


def _check_paths(cfg: Config) -> None:
    for i, v in enumerate(cfg.videos):
        if not Path(v.path).is_file():
            raise ConfigError(f"config key 'videos[{i}].path': video file '{v.path}' does not exist (relative paths "
                              "are resolved from the current directory). Fix the path, or run "
                              "`python scripts/make_demo_scene.py` to create data/demo.mp4.")
    for t in cfg.trajectories:
        for attr in ("file", "poses"):
            p = getattr(t, attr)
            if p is not None and not Path(p).is_file():
                raise ConfigError(f"config key 'trajectories.{t.name}.{attr}': file '{p}' does not exist.")


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
                raise _unknown(f"{key}={n}", known)
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
    """Prompt per video: the config's `prompt`, else `prompts/{name}.txt` (UTF-8), else empty."""
    if video.prompt:
        return video.prompt
    p = Path("prompts") / f"{video.name}.txt"
    if p.is_file():
        try:
            return p.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise ConfigError(f"prompt file '{p}' is not UTF-8 text; re-save it as UTF-8.") from None
    return ""
