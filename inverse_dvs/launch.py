"""Start one stage as configured: plain `python -m inverse_dvs.STAGE` for one device, or `accelerate launch` with one
process per GPU when `run.gpus` lists several (or is `all`). Used by run_all.sh.

Usage: python -m inverse_dvs.launch STAGE [stage options…]   (e.g. `python -m inverse_dvs.launch infer --config c.yml`)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from .config import load_config
from .infra.errors import EXIT_USER_ERROR, UserError
from .stages import STAGES as _STAGES

STAGES = (*_STAGES, "chain")


def gpu_ids(gpus) -> list[int]:
    if gpus is None:
        return []
    if gpus == "all":
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False) \
            if shutil.which("nvidia-smi") else None
        n = sum(line.startswith("GPU ") for line in out.stdout.splitlines()) if out and out.returncode == 0 else 0
        return list(range(n))
    return list(gpus)


def command(stage: str, args: list[str], config_path: str, overrides: list[str]) -> list[str]:
    ids = gpu_ids(load_config(config_path, overrides).run.gpus)
    if not ids:
        return [sys.executable, "-m", f"inverse_dvs.{stage}", *args]
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(len(ids)),
                "--gpu_ids", ",".join(map(str, ids)), "--num_machines", "1", "--mixed_precision", "no",
                "--dynamo_backend", "no"]
    if len(ids) > 1:
        launcher.append("--multi_gpu")
    return [*launcher, "-m", f"inverse_dvs.{stage}", *args]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        sys.stdout.write(__doc__ + f"\nSTAGE is one of {', '.join(STAGES)}.\n")
        return 0
    if not argv or argv[0] not in STAGES:
        sys.stderr.write(__doc__ + f"\nSTAGE is one of {', '.join(STAGES)}.\n")
        return EXIT_USER_ERROR
    stage, args = argv[0], argv[1:]
    config_path = args[args.index("--config") + 1] if "--config" in args[:-1] else "config.yml"
    overrides = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--set"]
    try:
        cmd = command(stage, args, config_path, overrides)
    except UserError as exc:
        sys.stderr.write(f"{stage}: {exc}\n")
        return EXIT_USER_ERROR
    os.execv(cmd[0], cmd)  # the stage replaces this process: its exit code and signals are the run's


if __name__ == "__main__":
    raise SystemExit(main())
