"""Warp benchmark: 49 frames at 576×1024 (the official code's warp size) on CPU with 2 threads, and on CUDA if present.

Input is the procedural demo scene (smooth depth with a depth edge) rendered at that size, warped along the
repository's `trajectories/loop1.txt`, through `pipeline.geometry.warp_video` as the pipeline runs it (on CPU its
frames run in parallel on the --threads threads, one intra-op thread each). Each pass runs in a fresh process, as the
warp stage runs one splat per process: in one process, a pass of one splat slows the next pass of the other by up to
20 % (allocator state). The passes of the splats (`warp.splat`: zbuffer, reference) alternate, --repeats of each, so
that load on a shared machine hits both alike; prints min and median ms/frame and peak RSS (and peak GPU memory on
CUDA).
Usage: python scripts/bench_warp.py [--frames 49] [--height 576] [--width 1024] [--threads 2] [--batch 1]
                                    [--splat zbuffer reference] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from inverse_dvs.core import camera
from inverse_dvs.infra.device import keep_freed_memory
from inverse_dvs.infra.trajectories import read_trajectory_file
from inverse_dvs.pipeline.geometry import warp_video
from inverse_dvs.testing import demo_scene


def one_pass(inputs: Path, device: str, batch: int, splat: str, threads: int) -> dict:
    """Child process: a 2-frame warm-up, then one timed pass over the whole input (set up as the warp stage)."""
    if device == "cpu":
        keep_freed_memory()
    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    with np.load(inputs) as z:
        rgb, depth, K, s2t = z["rgb"], z["depth"], z["K"], z["s2t"]
    dev = torch.device(device)
    warp_video(rgb[:2], depth[:2], K, s2t[:2], dev, batch, 4, splat=splat)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    _, vis = warp_video(rgb, depth, K, s2t, dev, batch, 4, splat=splat)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return {"ms": (time.perf_counter() - t0) / len(rgb) * 1000, "visible": float(vis.mean()),
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=49)
    p.add_argument("--height", type=int, default=576)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, nargs="+", default=[1])
    p.add_argument("--splat", nargs="+", default=["zbuffer", "reference"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # inputs of one pass in a fresh process
    p.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(one_pass(a.child, a.device, a.batch[0], a.splat[0], a.threads)))
        return 0
    H, W, T = a.height, a.width, a.frames
    K = camera.intrinsics(H, W, "fov", fov_deg=60.0)
    rgb, depth = demo_scene.render_video(np.eye(4), K, H, W, T)
    kf = read_trajectory_file(Path(__file__).resolve().parents[1] / "trajectories" / "loop1.txt")
    s2t = camera.orbit_source_to_target(*[camera.interpolate_keyframes(v, T) for v in kf],
                                          radius=float(depth[0, H // 2, W // 2]))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"input: {T} frames {H}x{W}, loop1 trajectory; each pass in a fresh process")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "inputs.npz"
        np.savez(inputs, rgb=rgb, depth=depth, K=K, s2t=s2t)
        for dev in devices:
            for bs in a.batch:
                runs: dict[str, list[dict]] = {s: [] for s in a.splat}
                for _ in range(a.repeats):
                    for s in a.splat:
                        out = subprocess.run([sys.executable, __file__, "--child", str(inputs), "--device", dev,
                                              "--batch", str(bs), "--splat", s, "--threads", str(a.threads)],
                                             check=True, capture_output=True, text=True).stdout
                        runs[s].append(json.loads(out.strip().splitlines()[-1]))
                for s, rs in runs.items():
                    ms = [r["ms"] for r in rs]
                    gpu = f", peak GPU {max(r['gpu_mb'] for r in rs):.0f} MB" if dev == "cuda" else ""
                    print(f"device={dev} threads={a.threads} batch={bs} splat={s}: min {min(ms):.1f} / median "
                          f"{statistics.median(ms):.1f} ms/frame over {len(ms)} passes, visible "
                          f"{rs[-1]['visible']:.3f}, peak RSS {max(r['rss_mb'] for r in rs):.0f} MB{gpu}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
