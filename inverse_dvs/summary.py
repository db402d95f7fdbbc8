"""End-of-run summary printed by run_all.sh: wall time per stage, compute seconds per stage × trajectory (from each
item's meta.json), every item that failed with the first stage it failed in, and where the results are.

`--ran STAGE` only answers (exit 0 or 1) whether STAGE recorded its items in this run (run_all.sh's run id), i.e.
whether a non-zero exit came from failing items (go on with the healthy ones) or from the stage itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict

from .artifacts import read_meta
from .config import load_config
from .errors import EXIT_USER_ERROR, UserError
from .layout import depth_dir, inversion_dir, result_dir, run_dir
from .workqueue import covers, item_key

ORDER = ("preflight", "depth", "warp", "caption", "invert", "infer", "evaluate")


def failures(summary: dict) -> list[tuple[str, str, str]]:
    """(stage, item, reason) for each failed item, keeping only the first stage where a (video, trajectory) pair —
    or a whole video or trajectory — failed, so a corrupt video is named once, not again by every later stage."""
    out, seen = [], []
    for stage in ORDER:
        for it in (summary.get(stage) or {}).get("items", []):
            if it.get("status") != "failed":
                continue
            key = item_key(it["item"])
            if any(covers(failed, key) for failed in seen):
                continue
            seen.append(key)
            out.append((stage, it["item"], it.get("reason", "")))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m inverse_dvs.summary", description=__doc__)
    p.add_argument("--config", default="config.yml")
    p.add_argument("--stages", default="", help="comma-separated stage names, in run order")
    p.add_argument("--spans", default="", help="comma-separated START-END epoch seconds per stage")
    p.add_argument("--ran", default=None, metavar="STAGE", help="exit 0 iff STAGE recorded its items in this run")
    # the stages' options, so run_all.sh can pass its own through: overrides matter (work_dir), the rest not
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--only-video", default=None)
    p.add_argument("--only-trajectory", default=None)
    p.add_argument("--force", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--evaluate", action="store_true")
    a = p.parse_args(argv)
    try:
        cfg = load_config(a.config, a.overrides)
    except UserError as exc:
        sys.stderr.write(f"summary: {exc}\n")
        return EXIT_USER_ERROR
    try:
        summary = json.loads((cfg.work_dir / "run_summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = {}
    if a.ran:
        ran = (summary.get(a.ran) or {}).get("run_id")
        return 0 if ran and ran == os.environ.get("INVERSE_DVS_RUN_ID") else 1
    out = sys.stdout
    stages = [s for s in a.stages.split(",") if s]
    spans = [s.split("-") for s in a.spans.split(",") if s]
    out.write("\n== inverse-dvs run summary ==\nstage     wall s\n")
    for name, (t0, t1) in zip(stages, spans, strict=False):
        out.write(f"{name:<9} {float(t1) - float(t0):7.1f}\n")
    per = defaultdict(float)
    for v in cfg.videos:
        per[("depth", "-")] += (read_meta(depth_dir(cfg.work_dir, v.name)) or {}).get("seconds", 0.0)
        for t in cfg.trajectories:
            rdir = result_dir(cfg.work_dir, t.name, v.name)
            per[("warp", t.name)] += (read_meta(rdir) or {}).get("seconds", 0.0)
            inv_meta = read_meta(inversion_dir(cfg.work_dir, t.name, v.name)) or {}
            per[("invert", t.name)] += inv_meta.get("seconds", 0.0)
            if rdir.is_dir():
                for sub in sorted(x for x in rdir.iterdir() if x.is_dir()):
                    m = read_meta(sub)
                    if m and m.get("stage") == "infer":
                        per[("infer", t.name)] += m.get("seconds", 0.0)
    out.write("\ncompute seconds per stage and trajectory (as recorded when each item was computed)\n")
    out.write(f"{'stage':<9} {'trajectory':<20} {'seconds':>8}\n")
    for (stage, traj), secs in per.items():
        out.write(f"{stage:<9} {traj:<20} {secs:8.1f}\n")
    busy = [(s, it["item"]) for s in ORDER for it in (summary.get(s) or {}).get("items", [])
            if it.get("status") == "busy"]
    if busy:
        out.write(f"\n{len(busy)} item(s) in progress in another process, not done here (rerun when it finishes):\n")
        out.writelines(f"  {s:<9} {item}\n" for s, item in busy)
    failed = failures(summary)
    if failed:
        out.write(f"\nFAILED: {len(failed)} item(s); the other items went through every stage "
                  f"(details in {cfg.work_dir / 'run_summary.json'}):\n")
        out.writelines(f"  {s:<9} {item}: {reason}\n" for s, item, reason in failed)
    out.write("\nresults:\n")
    for t in cfg.trajectories:
        for v in cfg.videos:
            rdir = result_dir(cfg.work_dir, t.name, v.name)
            runs = sorted(x.name for x in rdir.iterdir() if (x / "output.mp4").is_file()) if rdir.is_dir() else []
            if runs:
                example = run_dir(cfg.work_dir, t.name, v.name, runs[0]) / "comparison.mp4"
                out.write(f"  {rdir}/  ({len(runs)} run(s); e.g. {example})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
