"""Wall time of the README's demo commands on this machine, as the README's table gives them:
`python scripts/time_demos.py [--only NAME,NAME] [--clip PATH]`.

Each command runs once, into a temporary work folder (your `outputs/` is not touched), in the order of the table:
the tiny demo from scratch, the same on a real clip (`--clip`; skipped without one), the tiny demo again with
everything up to date, the evaluation of its 8 outputs, the CogVideoX1.5 demo, and the fast test loop. The load
average before each says whether the machine was idle: the README's figures are for an idle one (a busy 2-core
machine takes 2–3× as long).
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


def commands(work: Path, clip: str | None) -> list[tuple[str, str, list[str] | None]]:
    """(name, what the README calls it, argv or None when it cannot run here)."""
    tiny = ["bash", "run_all.sh", "configs/tiny.yml", "--quiet", "--set", f"run.work_dir={work / 'tiny'}"]
    return [
        ("tiny", "`bash run_all.sh configs/tiny.yml` (from scratch)", tiny),
        ("clip", "the same with a real clip", None if clip is None else
         ["bash", "run_all.sh", "configs/tiny.yml", "--quiet", "--set", f"run.work_dir={work / 'clip'}",
          "--set", f"videos=[{{path: {clip}}}]"]),
        ("rerun", "the same again, everything up to date", tiny),
        ("evaluate", "`python -m inverse_dvs.evaluate --config configs/tiny.yml` (8 outputs)",
         [PY, "-m", "inverse_dvs.evaluate", "--config", "configs/tiny.yml", "--quiet", "--set",
          f"run.work_dir={work / 'tiny'}"]),
        ("tiny15", "`bash run_all.sh configs/tiny15.yml`",
         ["bash", "run_all.sh", "configs/tiny15.yml", "--quiet", "--set", f"run.work_dir={work / 'tiny15'}"]),
        ("fast", "`pytest -m \"not slow\"` (the fast loop)", [PY, "-m", "pytest", "-q", "tests", "-m", "not slow",
                                                              "-p", "no:cacheprovider"]),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=None, help="comma-separated names: tiny, clip, rerun, evaluate, tiny15, fast "
                                                "(rerun and evaluate need tiny first)")
    p.add_argument("--clip", default=None, help="a real video for the 'clip' row, e.g. a 480×864 one")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="time-demos-") as tmp:
        rows = commands(Path(tmp), args.clip)
        wanted = set(args.only.split(",")) if args.only else {name for name, _, _ in rows}
        unknown = wanted - {name for name, _, _ in rows}
        if unknown:
            p.error(f"unknown name(s) {', '.join(sorted(unknown))}")
        print(f"| command ({os.cpu_count()} CPU cores) | wall time | load average before |")
        print("|---|---|---|")
        worst = 0
        for name, label, argv_ in rows:
            if name not in wanted:
                continue
            if argv_ is None:
                print(f"| {label} | skipped (no --clip) | |", flush=True)
                continue
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            r = subprocess.run(argv_, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            seconds = time.perf_counter() - t0
            status = "" if r.returncode == 0 else f" (exit code {r.returncode}: {r.stderr.strip()[-300:]})"
            worst = max(worst, r.returncode)
            print(f"| {label} | {seconds:.0f} s{status} | {load:.2f} |", flush=True)
    print("A load average above about 0.5 before a row means the machine was busy: that row's time is high.")
    return 1 if worst else 0


if __name__ == "__main__":
    raise SystemExit(main())
