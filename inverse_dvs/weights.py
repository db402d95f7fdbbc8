"""Model weights: the one explicit download command (stages never download on their own).

`python -m inverse_dvs.weights download [--config config.yml]` fetches the models named by the config
(`depth.model`, `caption.model`, `inversion.model`, `model.lora` — only its `model.lora_weight_name` file —,
`eval.clip_model`) into `checkpoints/<name>` with huggingface_hub (resumable), and torchvision's AlexNet weights for
LPIPS into the torch hub cache. `check` reports what is missing. The video models the method runs on
(`inversion.model`; README → Backbones): THUDM/CogVideoX-5b-I2V (default) and THUDM/CogVideoX1.5-5B-I2V. The lookup
itself is `infra.hub`.
"""

from __future__ import annotations

import argparse
import logging

from .config import load_config
from .config.needs import needed_models
from .infra.errors import EXIT_USER_ERROR, UserError, WeightsMissingError
from .infra.hub import ALEXNET_URL, alexnet_weights, download, resolve_model


def main(argv: list[str] | None = None) -> int:
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
