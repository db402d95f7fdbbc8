"""The stages, in run order: the one list that `launch`, `summary`, `chain` and run_all.sh read, and the registry of
their public entries (`stage_run(name)`: `run(cfg, selection, *, force, quiet, model=None) -> exit code`).

`python -m inverse_dvs.stages [--evaluate]` prints run_all.sh's steps, one per line: each step is one process, and the
model stages run together as `chain invert infer`, sharing one loaded (and compiled) CogVideoX.
"""

from __future__ import annotations

import importlib
import sys

STAGES = ("preflight", "depth", "warp", "caption", "invert", "infer", "evaluate")
MODEL_STAGES = ("invert", "infer")  # one process, one model (inverse_dvs.chain)
OPTIONAL = ("evaluate",)  # run_all.sh --evaluate


def stage_run(name: str):
    """The public `run` of a stage, imported on first use (so printing the steps imports no stage)."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; one of {', '.join(STAGES)}")
    return importlib.import_module(f"{__package__}.{name}").run


def steps(evaluate: bool = False) -> list[tuple[str, ...]]:
    """run_all.sh's steps after preflight: one stage each, the model stages together."""
    out: list[tuple[str, ...]] = []
    for stage in STAGES[1:]:
        if stage in OPTIONAL and not evaluate:
            continue
        if stage in MODEL_STAGES:
            if stage == MODEL_STAGES[0]:
                out.append(("chain", *MODEL_STAGES))
            continue
        out.append((stage,))
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m inverse_dvs.stages", description="Prints run_all.sh's steps, one per "
                                "line (each step is one process).")
    p.add_argument("--evaluate", action="store_true", help="with the evaluation stage")
    a = p.parse_args(argv)
    sys.stdout.write("".join(" ".join(step) + "\n" for step in steps(a.evaluate)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
