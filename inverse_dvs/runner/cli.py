"""The command-line frame every stage shares: options, logging, and bad input → one paragraph + exit 2."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Protocol

from ..config import Config, Selection, load_config, resolve_config
from ..infra.artifacts import check_writable
from ..infra.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, UserError, disk_full

LOGGER_NAME = "inverse_dvs"


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def build_parser(stage: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m inverse_dvs.{stage}", description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", default="config.yml", help="YAML config file (see README → Config reference)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value (YAML syntax, repeatable), e.g. --set inference.steps=[25,50]")
    p.add_argument("--only-video", default=None, metavar="NAME[,NAME]", help="process only these videos")
    p.add_argument("--only-trajectory", default=None, metavar="NAME[,NAME]",
                   help="process only these trajectories")
    p.add_argument("--shard", default=None, metavar="I/N|slurm",
                   help="this task's slice of the videos (position mod N = I, I from 0), for N tasks sharing one "
                        "work folder, e.g. a Slurm array (`slurm`: from SLURM_ARRAY_TASK_ID; README → Clusters)")
    p.add_argument("--force", action="store_true", help="recompute items even when their meta.json is up to date")
    p.add_argument("--quiet", action="store_true", help="warnings and errors only; no progress bars")
    return p


def setup_logging(quiet: bool) -> logging.Logger:
    log = get_logger()
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    if quiet:  # Hugging Face libraries read this when they are imported (later, by the stage)
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        h = _StderrHandler()
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        log.addHandler(h)
        log.propagate = False
    return log


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at emit time (a process may run several stages, e.g. in tests)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class StageRun(Protocol):
    """What the command line calls: `run(cfg, selection, *, force, quiet) -> exit code` (a stage's public `run`, whose
    `model=None` it leaves to the stage, or chain's, which passes one pipeline to its stages)."""

    def __call__(self, cfg: Config, selection: Selection, *, force: bool = False, quiet: bool = False) -> int: ...


def run_stage(stage: str, description: str, run: StageRun, argv: Sequence[str] | None = None) -> int:
    """The command line of a stage: parse its options, load the config and resolve it (`config.resolve_config`, the
    one step that reads the model's config files), check the work folder, then `run(cfg, selection, force=,
    quiet=)`; a UserError becomes its message and exit code 2, Ctrl-C exit code 130."""
    args = build_parser(stage, description).parse_args(argv)
    log = setup_logging(args.quiet)
    t0 = time.perf_counter()
    cfg = None
    try:
        cfg = resolve_config(load_config(args.config, args.overrides))
        check_writable(cfg.work_dir, "run.work_dir")
        rc = run(cfg, Selection.parse(args.only_video, args.only_trajectory, args.shard), force=args.force,
                 quiet=args.quiet)
    except UserError as exc:
        log.error("%s: %s", stage, exc)
        return EXIT_USER_ERROR
    except OSError as exc:  # a write outside any item (a summary, a record) on a full disk
        if (full := disk_full(exc, cfg.work_dir if cfg is not None else ".")) is None:
            raise
        log.error("%s: %s", stage, full)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        log.error("%s: interrupted; finished items are kept, rerun to resume.", stage)
        return EXIT_INTERRUPTED
    log.info("%s: finished in %.1f s", stage, time.perf_counter() - t0)
    return rc
