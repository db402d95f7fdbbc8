"""Reading a config: YAML (a key given twice is an error, `1e30` is a number), `--set` overrides, the method's
preset merged under the user's values, type coercion and checks, cross-key checks, and paths resolved
(`paths`). Every error is a ConfigError that names the key."""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from ..core.camera import PRESETS
from ..infra.errors import ConfigError
from .paths import PROJECT_ROOT, glob_files, name_from_stem, resolve_paths
from .presets import METHOD_PRESETS
from .schema import (
    DEFAULT_METHOD,
    METHODS,
    NAME_RE,
    SECTIONS,
    TOP_KEYS,
    Config,
    Selection,
    TrajectorySpec,
    VideoSpec,
    check_value,
)


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


def _did_you_mean(word: str, known: typing.Iterable[str]) -> str:
    near = difflib.get_close_matches(word, list(known), n=1)
    return f" Did you mean '{near[0]}'?" if near else ""


def _unknown(key: str, allowed: typing.Iterable[str]) -> ConfigError:
    allowed = list(allowed)
    hint = _did_you_mean(key.rsplit(".", 1)[-1], allowed)
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
        check_value(isinstance(value, bool), key, value, "true or false")
        return value
    if tp is int:
        check_value(isinstance(value, int) and not isinstance(value, bool), key, value, "an integer")
        return value
    if tp is float:
        check_value(isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value),
               key, value, "a finite number")
        return float(value)
    if tp is str:
        check_value(isinstance(value, str), key, value, "a string")
        return value
    if dataclasses.is_dataclass(tp):  # a mapping inside a section (run.context_parallel)
        return _build(tp, value, key)
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
            matches = glob_files(v.path, base)
            if not matches:
                raise ConfigError(f"config key 'videos[{i}].path': no file matches {v.path!r} (looked in {base} and "
                                  f"{PROJECT_ROOT}).")
            items = [dataclasses.replace(v, path=m) for m in matches]
        else:
            items = [v]
        for v in items:
            if v.name:
                check_value(NAME_RE.match(v.name) is not None, f"videos[{i}].name", v.name,
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
        check_value(isinstance(name, str) and NAME_RE.match(name) is not None, "trajectories", name,
                    "trajectory names made of letters, digits, '_', '-', '.'")
        out.append(build_trajectory(name, spec))
    return tuple(out)


def build_trajectory(name: str, spec: Any, key: str | None = None) -> TrajectorySpec:
    """One camera path from its mapping (`{file}`, `{theta, phi, r}`, `{preset, amount}` or `{poses}`), checked;
    errors name `key` (default `trajectories.NAME`). File paths are taken as given (`resolve_paths` resolves a
    config's)."""
    key = key or f"trajectories.{name}"
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
            check_value(getattr(t, k) is not None and len(getattr(t, k)) >= 1, f"{key}.{k}", getattr(t, k),
                        "a non-empty list of numbers (all of theta, phi and r are needed)")
    if t.kind == "preset":
        for part in t.preset.split("+"):
            if part not in PRESETS:
                raise ConfigError(f"config key '{key}.preset' has unknown preset '{part}'."
                                  f"{_did_you_mean(part, PRESETS)} "
                                  f"Allowed: {', '.join(PRESETS)}, combined with '+' (e.g. orbit_left+arc_up).")
        t = dataclasses.replace(t, amount=20.0 if t.amount is None else t.amount)
    elif t.amount is not None:
        raise ConfigError(f"config key '{key}.amount' only applies to presets; remove it or add 'preset'.")
    return t


def _set_dotted(data: dict, assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"--set expects section.key=value, got {assignment!r}.")
    path, raw = assignment.split("=", 1)
    parts = path.strip().split(".")
    if parts[0] not in TOP_KEYS:
        raise _unknown(parts[0], TOP_KEYS)
    value = _yaml(raw, f"--set {assignment!r}: the value") if raw.strip() else ""
    node = data
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[parts[-1]] = value


def load_config(path: str | Path = "config.yml", overrides: typing.Sequence[str] = ()) -> Config:
    """Read, override, type-check and validate a config file; resolve relative paths. Raises ConfigError naming the
    key. Pure data and checks: nothing but the file itself is read (missing input files fail their own items, and
    preflight lists them up front); `resolve_config` is the explicit step that reads the video model's config files
    and resolves `auto`."""
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
    for key in ("videos", "trajectories"):
        if key not in data:
            raise ConfigError(f"config file '{path}' has no '{key}' section; see config.yml for an example.")
    return config_from_dict(data, path.resolve().parent, str(path))


def config_from_dict(data: typing.Mapping[str, Any], base: Path | str = PROJECT_ROOT, source: str = "<python>",
                     require_items: bool = True) -> Config:
    """A Config from a mapping of sections, as a config file gives them, with the same checks and errors; relative
    paths are looked up in `base`, then the project root. `require_items=False`: the `videos` and `trajectories`
    sections may be left out (a pipeline object made in Python gets its videos and paths per call)."""
    data = dict(data)
    for key in data:
        if key not in TOP_KEYS:
            raise _unknown(str(key), TOP_KEYS)
    base = Path(base)
    method = data.get("method", DEFAULT_METHOD)
    check_value(method in METHODS, "method", method, "one of " + ", ".join(repr(m) for m in METHODS))
    sections = {}
    for name, cls in SECTIONS.items():
        preset = METHOD_PRESETS[method].get(name, {})
        given = data.get(name)
        merged = {**preset, **given} if isinstance(given, dict) else (given if given is not None else dict(preset))
        sections[name] = _build(cls, merged, name)
    videos = _build_videos(data["videos"], base) if require_items or data.get("videos") else ()
    trajectories = _build_trajectories(data["trajectories"]) if require_items or data.get("trajectories") else ()
    cfg = Config(videos=videos, trajectories=trajectories, source=source, base_dir=str(base), method=method,
                 custom=_custom(method, sections), **sections)
    cfg = resolve_paths(cfg, base)
    check_config(cfg)
    return cfg


def _custom(method: str, sections: dict[str, Any], keys: typing.Iterable[str] | None = None
            ) -> tuple[tuple[str, Any], ...]:
    """(dotted key, value) of every key the method's preset sets whose value differs from the preset's (among `keys`,
    dotted, when given: the keys a user wrote)."""
    out = []
    for name in SECTIONS:  # (in the sections' order: the run prefix hashes this list)
        preset = METHOD_PRESETS[method].get(name)
        if not preset:
            continue
        pure = _build(SECTIONS[name], preset, name)
        out += [(f"{name}.{k}", getattr(sections[name], k)) for k in preset
                if (keys is None or f"{name}.{k}" in keys) and getattr(sections[name], k) != getattr(pure, k)]
    return tuple(out)


def config_with(cfg: Config, changes: typing.Mapping[str, typing.Mapping[str, Any]]) -> Config:
    """`cfg` with keys of some sections replaced (`{section: {key: value}}`), checked as a config file's values are
    (ConfigError naming the key); the paths it names resolved like the file's. The result is not resolved: pass it
    through `resolve_config`, which checks sizes and frames against its model."""
    sections = {name: getattr(cfg, name) for name in SECTIONS}
    for name, values in changes.items():
        if name not in SECTIONS:
            raise _unknown(str(name), SECTIONS)
        if not isinstance(values, typing.Mapping):
            raise ConfigError(f"config key '{name}' must be a mapping of keys to values, got {values!r}.")
        sections[name] = _build(SECTIONS[name], {**dataclasses.asdict(sections[name]), **values}, name)
    written = {k for k, _ in cfg.custom} | {f"{name}.{k}" for name, values in changes.items() for k in values}
    new = resolve_paths(dataclasses.replace(cfg, custom=_custom(cfg.method, sections, written), backbone=None,
                                            resolved=False, **sections), Path(cfg.base_dir))
    check_config(new)
    return new


def check_config(cfg: Config) -> None:
    """The checks across keys (ConfigError naming them); `resolve_config` runs them again once `auto` is resolved."""
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
    if (c.height == "auto") != (c.width == "auto"):
        raise ConfigError(f"config keys 'camera.height' ({c.height}) and 'camera.width' ({c.width}): set both to "
                          "`auto` (the model's size for each video's aspect) or both to numbers.")
    if c.window != "auto" and c.overlap >= c.window:
        raise ConfigError(f"config key 'camera.overlap' is {c.overlap}, but camera.window is {c.window}: each window "
                          "must add new frames. Use an overlap of 1 + 4m frames below the window, e.g. 9.")
    if c.warp_size and c.height != "auto" and c.resize != "stretch" \
            and abs(c.warp_size[0] / c.warp_size[1] - c.height / c.width) > 0.01:
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
    cp = r.context_parallel
    if cp.degree > 1:
        gpus = r.gpus if isinstance(r.gpus, list) else []
        if r.gpus is None or (gpus and len(gpus) % cp.degree):
            gpus_text = "null" if r.gpus is None else r.gpus
            raise ConfigError(f"config key 'run.context_parallel' {cp} splits each item over {cp.degree} processes, "
                              f"but run.gpus is {gpus_text}. List a multiple of {cp.degree} GPUs in run.gpus (or "
                              "`all`), or set run.context_parallel: {ulysses: 1, ring: 1}.")
        clashes = [(key, value, fix) for key, value, fix, clash in (
            ("run.compile", r.compile, "auto", r.compile == "on"),
            ("model.offload", cfg.model.offload, "none", cfg.model.offload != "none"),
            ("inference.cache", cfg.inference.cache, "none", cfg.inference.cache != "none")) if clash]
        for key, value, fix in clashes[:1]:
            raise ConfigError(f"config keys 'run.context_parallel' ({cp}) and '{key}' ({value}) cannot be combined "
                              f"yet: both change how the transformer runs, and together they are untested. Set {key}: "
                              f"{fix}, or turn context parallel off.")
    if cfg.depth.near >= cfg.depth.far:
        raise ConfigError(f"config keys 'depth.near' ({cfg.depth.near}) and 'depth.far' ({cfg.depth.far}): "
                          "near must be smaller than far.")


def select(cfg: Config, selection: Selection | None = None) -> tuple[list[VideoSpec], list[TrajectorySpec]]:
    """The config's videos and trajectories a selection keeps (all where it names none); ConfigError naming the
    option for a name the config does not have."""

    def pick(items, wanted, option):
        if wanted is None:
            return list(items)
        known = [i.name for i in items]
        for n in wanted:
            if n not in known:
                raise ConfigError(f"{option}: no {option.split('-')[-1]} named '{n}' in the config (have: "
                                  f"{', '.join(known)}).{_did_you_mean(n, known)}")
        return [i for i in items if i.name in wanted]

    selection = selection or Selection()
    videos = pick(cfg.videos, selection.videos, "--only-video")
    if selection.shard is not None:  # by video: every stage of a video runs in one task, which never waits on another
        index, count = selection.shard
        videos = videos[index::count]
    return videos, pick(cfg.trajectories, selection.trajectories, "--only-trajectory")
