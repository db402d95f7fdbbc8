"""Model weights on disk: find them (never downloading), read a video model's config files, and download what a
run needs (`python -m inverse_dvs.weights download` is the command; this is the plumbing under it and under every
model loader)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NamedTuple

from .errors import WeightsMissingError, weights_hint


def checkpoints_root() -> Path:
    return Path(os.environ.get("INVERSE_DVS_CHECKPOINTS", "checkpoints"))


def local_dir_for(model: str) -> Path:
    return checkpoints_root() / model.rstrip("/").split("/")[-1]


class ModelNeed(NamedTuple):
    """One set of weights a run needs: a hub id or local folder, what it is for, and the one file needed (LoRA)."""

    model: str
    role: str  # config key that names it
    file: str | None = None


ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"  # torchvision's AlexNet, for LPIPS


def alexnet_weights() -> Path:
    """Where torchvision looks for its AlexNet weights (torch hub cache), which LPIPS loads without downloading
    when they are there."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_URL.rsplit("/", 1)[1]


def resolve_model(model: str, file: str | None = None) -> str:
    """A local folder for `model` (a path, `checkpoints/<name>`, or the Hugging Face cache), or WeightsMissingError.

    With `file`, the folder must contain that file. Never touches the network: the cache lookup uses
    local_files_only, so this returns within seconds offline.
    """

    def complete(folder: Path) -> bool:
        return folder.is_dir() and any(folder.iterdir()) and (file is None or (folder / file).is_file())

    p = Path(model)
    if p.is_dir():
        if complete(p):
            return str(p)
        raise WeightsMissingError(f"folder '{p}' has no '{file}'; check model.lora_weight_name.")
    local = local_dir_for(model)
    if complete(local):
        return str(local)
    if "/" in model and not model.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download

            found = Path(snapshot_download(model, local_files_only=True,
                                           allow_patterns=[file] if file else None))
            if complete(found):
                return str(found)
        except Exception:  # any miss (not cached, offline, partial) means: not available here
            pass
    raise WeightsMissingError(weights_hint(model + (f" (file {file})" if file else "")))


def missing_models(needs: list[ModelNeed]) -> list[str]:
    """'role = model (file f)' for every model in `needs` whose weights are not on disk (checked, never loaded)."""
    missing = []
    for n in needs:
        try:
            resolve_model(n.model, n.file)
        except WeightsMissingError:
            missing.append(f"{n.role} = {n.model}" + (f" (file {n.file})" if n.file else ""))
    return missing


def require(needs: list[ModelNeed]) -> None:
    """WeightsMissingError naming every model in `needs` whose weights are not on disk."""
    missing = missing_models(needs)
    if missing:
        raise WeightsMissingError(weights_hint("; ".join(missing)))


def download(needs: list[ModelNeed]) -> list[Path]:
    from huggingface_hub import snapshot_download

    out = []
    for n in needs:
        target = local_dir_for(n.model)
        logging.getLogger("inverse_dvs").info("downloading %s%s → %s (resumable)", n.model,
                                              f" ({n.file})" if n.file else "", target)
        snapshot_download(n.model, local_dir=str(target), allow_patterns=[n.file] if n.file else None)
        out.append(target)
    return out


def component_config(model: str, component: str) -> dict:
    """The config.json of one component (`transformer`, `vae`, …) of a diffusers model folder or cached hub id, read
    without loading any weights (`scheduler`: its scheduler_config.json)."""
    import json

    name = "scheduler_config.json" if component == "scheduler" else "config.json"
    return json.loads((Path(resolve_model(model)) / component / name).read_text(encoding="utf-8"))


def read_backbone(model: str):
    """The core.backbone.Backbone of a video model from its config files on disk (no weights loaded); None when
    they are not on this machine. Raises core.backbone.UnknownBackbone when they describe no known family, or
    cannot be read."""
    from ..core.backbone import UnknownBackbone, detect

    try:
        configs = [component_config(model, c) for c in ("transformer", "vae", "scheduler")]
    except (WeightsMissingError, FileNotFoundError):
        return None
    except (OSError, ValueError) as exc:
        raise UnknownBackbone(f"its config files cannot be read ({type(exc).__name__}: {exc})") from None
    return detect(*configs)
