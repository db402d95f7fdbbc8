"""Per-pass time of one transformer call against the context-parallel degree (`run.context_parallel`), for users
with several GPUs. Prints one table: degree, Ulysses × ring, seconds per pass at batch 1 and 2 (median of 3 after a
warm-up), the speed-up over one GPU, and the peak memory of the leader's GPU.

    python scripts/bench_cp.py --model 1.5 --degrees 1,2,4,8          # CogVideoX1.5 at 81×768×1360 (45,106 tokens)
    python scripts/bench_cp.py --model 5b --degrees 1,2,4 --ring 2     # ring 2 inside each degree (Ulysses d/2)
    python scripts/bench_cp.py --model tiny --degrees 1,2              # CPU processes over gloo: tests this script

The real architectures are built with random weights on each GPU (bench_pipeline's model); each degree d > 1 runs as
`torchrun --nproc_per_node d` of this script, whose processes form one group through the project's own code path
(`run.gpus`, `run.context_parallel`, `LazyPipeline`): the leader times the passes, the others serve its calls.
Attention: `native` under Ulysses alone, `_native_flash` under ring (the defaults), or `--backend`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.bench_pipeline import ARCHS, bench_config, forward_seconds, make_model, tiny_arch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _arch(model: str):
    return tiny_arch("5b") if model == "tiny" else ARCHS[model]


def measure(a) -> dict:
    """This process's part of one degree: the leader's figures (None on the others)."""
    from inverse_dvs.models import context_parallel
    from inverse_dvs.models.placement import synchronize

    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() and a.model != "tiny"
    if world > 1:
        import torch.distributed as dist

        if cuda:
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    arch = _arch(a.model)
    ring = a.ring if world > 1 else 1
    overrides = (f"run.attention_backend={a.backend}",)
    if world > 1:
        overrides += (f"run.gpus={list(range(world))}", f"run.context_parallel.ulysses={world // ring}",
                      f"run.context_parallel.ring={ring}")
    cfg = bench_config(arch, "paper", "off", "inductor", "none", overrides=overrides)
    log = logging.getLogger("inverse_dvs")
    group = context_parallel.join(world // ring, ring) if world > 1 else None
    model = make_model(cfg, arch, device, log)
    if group is not None and not group.leader:
        context_parallel.serve(group, lambda: model.get().transformer, log)
        return {}
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    try:
        figures = {"degree": world, "ulysses": world // ring, "ring": ring,
                   "batch1_s": forward_seconds(model, 1), "batch2_s": forward_seconds(model, 2),
                   "backend": model.stats.extra.get("attention_backend")}
    finally:
        if group is not None:
            group.end(0)
    synchronize(device)
    figures["peak_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 1) if cuda else None
    return figures


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="1.5", choices=["5b", "1.5", "tiny"])
    p.add_argument("--degrees", default="1,2", help="comma-separated processes per item, e.g. 1,2,4,8")
    p.add_argument("--ring", type=int, default=1, help="ring degree inside each degree (the rest is Ulysses)")
    p.add_argument("--backend", default="auto", help="run.attention_backend")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    torch.set_grad_enabled(False)
    if a.worker:
        figures = measure(a)
        if figures:
            print("BENCH_CP " + json.dumps(figures), flush=True)
        return 0
    if a.model != "tiny" and not torch.cuda.is_available():
        print("bench_cp: no CUDA device here; `--model tiny` runs the same steps on CPU processes.", file=sys.stderr)
        return 2
    rows = []
    for d in (int(x) for x in a.degrees.split(",")):
        launch = ([sys.executable] if d == 1 else
                  [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(d), "--master_port",
                   str(_port())])
        cmd = [*launch, str(Path(__file__).resolve()), "--worker", "--model", a.model, "--ring",
               str(a.ring if d > 1 else 1), "--backend", a.backend]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)})
        found = [json.loads(line.split(" ", 1)[1]) for line in r.stdout.splitlines() if line.startswith("BENCH_CP ")]
        if r.returncode or not found:
            print(f"bench_cp: degree {d} failed (exit code {r.returncode}):\n{r.stderr[-3000:]}", file=sys.stderr)
            return 1
        rows.append(found[0])
    base = rows[0]["batch2_s"] if rows and rows[0]["degree"] == 1 else None
    arch = _arch(a.model)
    where = ("CPU processes over gloo: a test of this script, not a measurement" if a.model == "tiny"
             else torch.cuda.get_device_name())
    print(f"bench_cp: {a.model} at {arch.frames}×{arch.height}×{arch.width}, one transformer pass ({where})")
    print("| degree | ulysses × ring | backend | batch 1 | batch 2 | speed-up (batch 2) | peak GiB (leader) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        up = f"{base / r['batch2_s']:.2f}×" if base else ""
        peak = "" if r["peak_gb"] is None else f"{r['peak_gb']:.1f}"
        print(f"| {r['degree']} | {r['ulysses']} × {r['ring']} | {r['backend']} | {r['batch1_s']:.3f} s | "
              f"{r['batch2_s']:.3f} s | {up} | {peak} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
