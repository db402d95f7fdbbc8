"""Timing summary printed at the end of run_all.sh: wall time per stage, compute seconds per stage × trajectory
(from each item's meta.json), and where the results are."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

from .artifacts import read_meta
from .config import load_config
from .layout import depth_dir, inversion_dir, result_dir, run_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m inverse_dvs.summary", description=__doc__)
    p.add_argument("--config", default="config.yml")
    p.add_argument("--stages", default="", help="comma-separated stage names, in run order")
    p.add_argument("--spans", default="", help="comma-separated START-END epoch seconds per stage")
    a = p.parse_args(argv)
    cfg = load_config(a.config, check_paths=False)
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
    out.write("\nresults:\n")
    for t in cfg.trajectories:
        for v in cfg.videos:
            rdir = result_dir(cfg.work_dir, t.name, v.name)
            runs = sorted(x.name for x in rdir.iterdir() if x.is_dir()) if rdir.is_dir() else []
            example = run_dir(cfg.work_dir, t.name, v.name, runs[0]) / "comparison.mp4" if runs else "-"
            out.write(f"  {rdir}/  ({len(runs)} run(s); e.g. {example})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
