"""Model weights: find them on disk (never downloading), and the one explicit download command.

`python -m inverse_dvs.weights download [--config config.yml]` fetches the models named by the config
(`depth.model`, `inversion.model`, `model.lora`) into `checkpoints/<name>` with huggingface_hub (resumable).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from .errors import WeightsMissingError, weights_hint


def checkpoints_root() -> Path:
    return Path(os.environ.get("INVERSE_DVS_CHECKPOINTS", "checkpoints"))


def local_dir_for(model: str) -> Path:
    return checkpoints_root() / model.rstrip("/").split("/")[-1]


def resolve_model(model: str) -> str:
    """A local folder for `model` (a path, `checkpoints/<name>`, or the Hugging Face cache), or WeightsMissingError.

    Never touches the network: the cache lookup uses local_files_only, so this returns within seconds offline.
    """
    p = Path(model)
    if p.is_dir():
        return str(p)
    local = local_dir_for(model)
    if local.is_dir() and any(local.iterdir()):
        return str(local)
    if "/" in model and not model.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download

            return snapshot_download(model, local_files_only=True)
        except Exception:  # any miss (not cached, offline, partial) means: not available here
            pass
    raise WeightsMissingError(weights_hint(model))


def download(models: list[str]) -> list[Path]:
    from huggingface_hub import snapshot_download

    out = []
    for m in models:
        target = local_dir_for(m)
        logging.getLogger("inverse_dvs").info("downloading %s → %s (resumable)", m, target)
        snapshot_download(m, local_dir=str(target))
        out.append(target)
    return out


def main(argv: list[str] | None = None) -> int:
    from .config import load_config
    from .errors import EXIT_USER_ERROR, UserError

    p = argparse.ArgumentParser(prog="python -m inverse_dvs.weights", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["download", "check"], help="download: fetch; check: report what is missing")
    p.add_argument("--config", default="config.yml")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    log = logging.getLogger("inverse_dvs")
    try:
        cfg = load_config(args.config, check_paths=False)
    except UserError as exc:
        log.error("%s", exc)
        return EXIT_USER_ERROR
    models = [m for m in (cfg.depth.model if cfg.depth.backend == "depth_anything" else None,
                          cfg.inversion.model, cfg.model.lora) if m]
    if args.command == "check":
        missing = []
        for m in models:
            try:
                log.info("%s: %s", m, resolve_model(m))
            except WeightsMissingError:
                missing.append(m)
                log.error("%s: missing", m)
        return 1 if missing else 0
    todo = []
    for m in models:
        try:
            resolve_model(m)
            log.info("%s: already on disk", m)
        except WeightsMissingError:
            todo.append(m)
    try:
        download(todo)
    except Exception as exc:
        log.error("download failed (%s: %s); rerun the same command to resume.", type(exc).__name__, exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
