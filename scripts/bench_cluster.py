"""Outputs per minute of a config through `run_all.sh` and through the Ray backend with 1 and 2 workers per pool, in
one run on this machine: `python scripts/bench_cluster.py [--config configs/tiny.yml] [--workers 1,2] [--set K=V]`.

Each row runs from scratch into its own temporary work folder (your `outputs/` is not touched) and counts the
outputs it wrote. The Ray rows include starting a local Ray cluster and every actor (each imports torch and loads its
model once), as a user's run does; `--address` joins a running cluster instead. The load average before each row says
whether the machine was idle.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv/bin/python") if (ROOT / ".venv/bin/python").is_file() else sys.executable
POOLS = ("depth", "warp", "caption", "model")


def run(argv: list[str], work: Path) -> tuple[int, float, int]:
    """(exit code, seconds, outputs written)."""
    t0 = time.perf_counter()
    rc = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return rc, time.perf_counter() - t0, len(list(work.glob("results/*/*/*/output.mp4")))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/tiny.yml")
    p.add_argument("--workers", default="1,2", help="comma-separated actors per pool, one Ray row each")
    p.add_argument("--address", default=None, help="a running Ray cluster (default: a local one per row)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="config overrides for every row (e.g. to run fewer items)")
    args = p.parse_args(argv)
    sets = [x for o in args.overrides for x in ("--set", o)]
    print(f"| {args.config} ({os.cpu_count()} CPU cores) | outputs | wall time | outputs per minute | load average "
          "before |")
    print("|---|---|---|---|---|")
    worst = 0
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        rows = [("`run_all.sh`", Path(tmp) / "alone", ["bash", "run_all.sh", args.config, "--quiet"])]
        for n in (int(w) for w in args.workers.split(",") if w):
            ray = [PY, "-m", "inverse_dvs.cluster", "--config", args.config, "--quiet",
                   *[x for pool in POOLS for x in ("--set", f"cluster.{pool}_workers={n}")]]
            if args.address:
                ray += ["--address", args.address]
            rows.append((f"Ray, {n} worker(s) per pool", Path(tmp) / f"ray{n}", ray))
        for label, work, cmd in rows:
            load = os.getloadavg()[0]
            rc, seconds, outputs = run([*cmd, *sets, "--set", f"run.work_dir={work}"], work)
            worst = max(worst, rc)
            rate = f"{outputs / seconds * 60:.1f}" if rc == 0 else f"exit code {rc}"
            print(f"| {label} | {outputs} | {seconds:.1f} s | {rate} | {load:.2f} |", flush=True)
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
