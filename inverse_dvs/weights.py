"""Model weights: find them on disk (never downloading), and the one explicit download command.

`python -m inverse_dvs.weights download [--config config.yml]` fetches the models named by the config
(`depth.model`, `caption.model`, `inversion.model`, `model.lora` — only its `model.lora_weight_name` file —,
`eval.clip_model`) into `checkpoints/<name>` with huggingface_hub (resumable), and torchvision's AlexNet weights for
LPIPS into the torch hub cache. `check` reports what is missing.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import NamedTuple

from .infra.errors import WeightsMissingError, weights_hint


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


def needed_models(cfg, stages: tuple[str, ...] = ("depth", "caption", "invert", "infer")) -> list[ModelNeed]:
    """Every model the given stages will load with this config."""
    from .config import read_prompt

    needs = []
    if "depth" in stages and cfg.depth.backend == "depth_anything":
        needs.append(ModelNeed(cfg.depth.model, "depth.model"))
    if "caption" in stages and cfg.caption.source != "off" and any(not read_prompt(v) for v in cfg.videos):
        needs.append(ModelNeed(cfg.caption.model, "caption.model"))
        if not {"invert", "infer"} & set(stages):  # its tokenizer bounds the caption's length
            needs.append(ModelNeed(cfg.inversion.model, "inversion.model"))
    if "evaluate" in stages:
        needs.append(ModelNeed(cfg.eval.clip_model, "eval.clip_model"))
    if {"invert", "infer"} & set(stages):
        needs.append(ModelNeed(cfg.inversion.model, "inversion.model"))
        if cfg.model.lora:
            needs.append(ModelNeed(cfg.model.lora, "model.lora", cfg.model.lora_weight_name))
    return needs


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


def size_problem(transformer, spatial: int, temporal: int, num_frames: int, height: int, width: int) -> str | None:
    """Why the model cannot run num_frames × height × width per call (config.Config.model_frames: the clip, or one
    window of a longer one), or None. transformer: the transformer's config
    (a dict or diffusers' FrozenDict); spatial, temporal: the VAE's compression factors. A transformer with learned
    positional embeddings (CogVideoX-5B-I2V) runs only at its configured size; any CogVideoX needs 1 + temporal·n
    frames and sides that are multiples of spatial × patch size."""
    sf = transformer["sample_frames"]
    sh, sw = transformer["sample_height"] * spatial, transformer["sample_width"] * spatial
    if transformer.get("use_learned_positional_embeddings"):
        if (height, width, num_frames) != (sh, sw, sf):
            return (f"the model's transformer only runs at {sf} frames of {sh}×{sw} (learned positional embeddings; "
                    f"the real CogVideoX-5B-I2V is 49×480×720), but the config gives it {num_frames} frames "
                    f"(camera.num_frames, or camera.window for a longer clip) of {height}×{width}. Set "
                    f"camera.num_frames: {sf} (a longer clip or `all` runs in windows of camera.window: {sf}), "
                    f"camera.height: {sh}, camera.width: {sw} (the shared resize policy camera.resize crops or pads "
                    "the video to it) and rerun from the depth stage.")
        return None
    side = spatial * transformer.get("patch_size", 2)
    if (num_frames - 1) % temporal or height % side or width % side:
        return (f"the config gives the model {num_frames} frames (camera.num_frames, or camera.window for a longer "
                f"clip) of {height}×{width}, but it needs 1 + "
                f"{temporal}·n frames and sides that are multiples of {side} (its default is {sf} frames of "
                f"{sh}×{sw}).")
    return None


def component_config(model: str, component: str) -> dict:
    """The config.json of one component (`transformer`, `vae`, …) of a diffusers model folder or cached hub id, read
    without loading any weights."""
    import json

    return json.loads((Path(resolve_model(model)) / component / "config.json").read_text(encoding="utf-8"))


def model_size_problem(model: str, num_frames: int, height: int, width: int) -> str | None:
    """`size_problem` from the model's config files on disk (no weights loaded; None when they are not there)."""
    try:
        transformer, vae = component_config(model, "transformer"), component_config(model, "vae")
    except (WeightsMissingError, OSError, ValueError):
        return None  # missing weights are reported on their own; an unreadable config fails at load
    spatial = 2 ** (len(vae.get("block_out_channels", [0, 0, 0, 0])) - 1)
    return size_problem(transformer, spatial, vae.get("temporal_compression_ratio", 4), num_frames, height, width)


def main(argv: list[str] | None = None) -> int:
    from .config import load_config
    from .infra.errors import EXIT_USER_ERROR, UserError

    p = argparse.ArgumentParser(prog="python -m inverse_dvs.weights", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["download", "check"], help="download: fetch; check: report what is missing")
    p.add_argument("--config", default="config.yml")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    log = logging.getLogger("inverse_dvs")
    try:
        cfg = load_config(args.config)
    except UserError as exc:
        log.error("%s", exc)
        return EXIT_USER_ERROR
    missing = []
    for n in needed_models(cfg, ("depth", "caption", "invert", "infer", "evaluate")):
        try:
            log.info("%s (%s): on disk at %s", n.model, n.role, resolve_model(n.model, n.file))
        except WeightsMissingError:
            missing.append(n)
            log.log(logging.ERROR if args.command == "check" else logging.INFO, "%s (%s): missing", n.model, n.role)
    if args.command == "check":
        return 1 if missing else 0
    try:
        download(missing)
        if cfg.eval.lpips and not alexnet_weights().is_file():
            import torch

            log.info("downloading LPIPS's AlexNet backbone → %s", alexnet_weights())
            alexnet_weights().parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(ALEXNET_URL, str(alexnet_weights()))
    except Exception as exc:
        log.error("download failed (%s: %s); rerun the same command to resume.", type(exc).__name__, exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

