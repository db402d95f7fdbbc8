"""Run several model stages in one process so they share one loaded (and compiled) CogVideoX pipeline.

Usage: python -m inverse_dvs.chain invert infer [--config …] [stage options]

run_all.sh runs invert and infer this way (through `accelerate launch` too, with `run.gpus`): one model load per
process instead of one per stage. Each stage keeps its own items, records, resume rules and summary; `python -m
inverse_dvs.invert` and `… infer` still run alone. The exit code is the worst of the stages'.
"""

from __future__ import annotations

import sys

from .runner.cli import get_logger, run_stage
from .stages import MODEL_STAGES, stage_run


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

    def run(cfg, selection, *, force: bool = False, quiet: bool = False) -> int:
        from .infra.device import resolve_device
        from .pipeline import InverseDVSPipeline
        from .runner.workqueue import process_state

        pipe = InverseDVSPipeline(cfg, device=resolve_device(cfg.run.device, process_state()), log=get_logger())
        codes = []
        for name in names:
            codes.append(stage_run(name)(cfg, selection, force=force, quiet=quiet, model=pipe))
            get_logger().info("%s: done (exit code %d)", name, codes[-1])
        return 1 if 1 in codes else max(codes)

    return run_stage("+".join(names), __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
