"""End-of-run summary printed by run_all.sh: wall time per stage, compute seconds per stage × trajectory (from each
item's meta.json), every item that failed with the first stage it failed in, and where the results are.

`--ran STAGE` only answers (exit 0 or 1) whether STAGE recorded its items in this run (run_all.sh's run id), i.e.
whether a non-zero exit came from failing items (go on with the healthy ones) or from the stage itself.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

from .config import load_config
from .infra.artifacts import read_meta
from .infra.errors import EXIT_USER_ERROR, UserError
from .infra.layout import depth_dir, eval_dir, inversion_dir, result_dir
from .runner.workqueue import Item, read_summary, run_id
from .stages import STAGES


def failures(summary: dict, run_id: str = "") -> list[tuple[str, Item, str]]:
    """(stage, item, reason) for each failed item (of run `run_id` when given: a stage that did not run this time
    keeps its old section), keeping only the first stage where a (video, trajectory) pair — or a whole video or
    trajectory — failed, so a corrupt video is named once, not again by every later stage."""
    out, seen = [], []
    for stage in STAGES:
        section = summary.get(stage) or {}
        if run_id and section.get("run_id") != run_id:
            continue
        for it in section.get("items", []):
            if it.get("status") != "failed":
                continue
            item = Item.from_json(it.get("item"))
            if any(failed.covers(item) for failed in seen):
                continue
            seen.append(item)
            out.append((stage, item, it.get("reason", "")))
    return out


def compute_seconds(cfg) -> dict[tuple[str, str], float]:
    """Seconds each stage's items took when they were computed, summed per (stage, trajectory) from their records
    ('-' for per-video stages)."""
    from .runner.records import caption_folder

    per: dict[tuple[str, str], float] = defaultdict(float)

    def add(stage: str, traj: str, folder) -> None:
        meta = read_meta(folder)
        if meta and meta.get("stage") == stage:
            per[(stage, traj)] += meta.get("seconds", 0.0)

    for v in cfg.videos:
        add("depth", "-", depth_dir(cfg.work_dir, v.name))
        captions = {caption_folder(cfg, v, t): t.name for t in cfg.trajectories}
        for folder, traj in captions.items():
            add("caption", traj if cfg.caption.source == "render" else "-", folder)
        for t in cfg.trajectories:
            rdir = result_dir(cfg.work_dir, t.name, v.name)
            add("warp", t.name, rdir)
            add("invert", t.name, inversion_dir(cfg.work_dir, t.name, v.name))
            for root, stage in ((rdir, "infer"), (eval_dir(cfg.work_dir) / "runs" / t.name / v.name, "evaluate")):
                for sub in sorted(x for x in root.iterdir() if x.is_dir()) if root.is_dir() else []:
                    add(stage, t.name, sub)
    return per


def item_counts(summary: dict, run_id: str) -> dict[tuple[str, str], dict[str, int]]:
    """How many items of each (stage, trajectory) this run did, skipped, found busy or failed."""
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for stage in STAGES:
        section = summary.get(stage) or {}
        if stage == "preflight" or not run_id or section.get("run_id") != run_id:
            continue
        for it in section.get("items", []):
            counts[(stage, Item.from_json(it.get("item")).trajectory or "-")][it.get("status", "?")] += 1
    return counts


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
    p.add_argument("--shard", default=None)
    p.add_argument("--force", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--evaluate", action="store_true")
    a = p.parse_args(argv)
    try:
        cfg = load_config(a.config, a.overrides)
    except UserError as exc:
        sys.stderr.write(f"summary: {exc}\n")
        return EXIT_USER_ERROR
    rid = run_id()
    summary = read_summary(cfg.work_dir, rid)  # this run's own, whatever another run on the work folder wrote since
    if a.ran:
        ran = (summary.get(a.ran) or {}).get("run_id")
        return 0 if ran and ran == rid else 1
    out = sys.stdout
    stages = [s for s in a.stages.split(",") if s]
    spans = [s.split("-") for s in a.spans.split(",") if s]
    width = max([9, *(len(name) for name in stages)])
    out.write(f"\n== inverse-dvs run summary ==\n{'stage':<{width}} {'wall s':>8}\n")
    for name, (t0, t1) in zip(stages, spans, strict=False):
        out.write(f"{name:<{width}} {float(t1) - float(t0):8.1f}\n")
    per = compute_seconds(cfg)
    counts = item_counts(summary, rid)
    out.write("\ncompute seconds per stage and trajectory (as recorded when each item was computed, in this run or an "
              "earlier one), and this run's items\n")
    out.write(f"{'stage':<9} {'trajectory':<20} {'seconds':>8}  items\n")
    for key in sorted(set(per) | set(counts), key=lambda k: (STAGES.index(k[0]), k[1])):
        tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.get(key, {}).items()))
        out.write(f"{key[0]:<9} {key[1]:<20} {per.get(key, 0.0):8.1f}  {tally or '-'}\n")
    busy = [(s, Item.from_json(it.get("item"))) for s in STAGES for it in (summary.get(s) or {}).get("items", [])
            if it.get("status") == "busy"]
    if busy:
        out.write(f"\n{len(busy)} item(s) in progress in another process, not done here (rerun when it finishes):\n")
        out.writelines(f"  {s:<9} {item}\n" for s, item in busy)
    failed = failures(summary, rid)
    if failed:
        out.write(f"\nFAILED: {len(failed)} item(s); the other items went through every stage "
                  f"(details in {cfg.work_dir / 'run_summary.json'}):\n")
        out.writelines(f"  {s:<9} {item}: {reason}\n" for s, item, reason in failed)
    out.write("\nresults:\n")
    for t in cfg.trajectories:
        for v in cfg.videos:
            rdir = result_dir(cfg.work_dir, t.name, v.name).absolute()
            runs = sorted(x.name for x in rdir.iterdir() if (x / "output.mp4").is_file()) if rdir.is_dir() else []
            if runs:
                out.write(f"  {rdir}/  ({len(runs)} run(s); e.g. {runs[0]}/comparison.mp4)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
