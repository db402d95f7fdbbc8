"""Run several model stages in one process so they share one loaded (and compiled) CogVideoX pipeline.

Usage: python -m inverse_dvs.chain invert infer [--config …] [stage options]

run_all.sh runs invert and infer this way (through `accelerate launch` too, with `run.gpus`): one model load per
process instead of one per stage. Each stage keeps its own items, records, resume rules and summary; `python -m
inverse_dvs.invert` and `… infer` still run alone. The exit code is the worst of the stages'.
"""

from __future__ import annotations

import importlib
import sys

from .infra.cli import get_logger, run_stage
from .stages import MODEL_STAGES


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = []
    while argv and argv[0] in MODEL_STAGES:
        names.append(argv.pop(0))
    if not names:
        if argv and argv[0] in ("-h", "--help"):
            sys.stdout.write(__doc__)
            return 0
        sys.stderr.write(__doc__)
        return 2

    def body(cfg, args) -> int:
        from .infra.workqueue import process_state
        from .models.cogvideo import lazy_pipeline

        model = lazy_pipeline(cfg, process_state(), get_logger())
        codes = []
        for name in names:
            codes.append(importlib.import_module(f"{__package__}.{name}")._body(cfg, args, model))
            get_logger().info("%s: done (exit code %d)", name, codes[-1])
        return 1 if 1 in codes else max(codes)

    return run_stage("+".join(names), __doc__.splitlines()[0], body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
