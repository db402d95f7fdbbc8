"""Where the config's relative paths point: the config file's folder first, then the project root; local model
folders; prompt files (`prompts/{name}.txt`); video file stems made into names."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from ..infra.errors import ConfigError
from .schema import Config, VideoSpec

# the checkout holding run_all.sh (relative paths fall back to it); the current directory for an installed package
_HERE = Path(__file__).resolve().parents[2]
PROJECT_ROOT = _HERE if (_HERE / "run_all.sh").is_file() else Path.cwd()


def glob_files(pattern: str, base: Path) -> list[str]:
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


def resolve_paths(cfg: Config, base: Path) -> Config:
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


def depth_source(cfg: Config, video_path: str) -> Path | None:
    """The file the depth of a video is imported from (`npz`, `ground_truth` backends); None when it is estimated."""
    p = Path(video_path)
    if cfg.depth.backend == "npz":
        return Path(resolve_path(cfg.depth.npz_path.format(dir=p.parent, stem=p.stem, name=p.stem),
                                 Path(cfg.base_dir)))
    if cfg.depth.backend == "ground_truth":
        return p.with_name(f"{p.stem}_depth.npz")
    return None
