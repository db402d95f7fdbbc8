"""Warp benchmark: 49 frames at 576×1024 (the official code's warp size) on CPU with 2 threads, and on CUDA if present.

Input is the procedural demo scene (smooth depth with a depth edge) rendered at that size, warped along the
repository's `trajectories/loop1.txt`, through `warp_video` as the warp stage runs it (on CPU its frames run in
parallel on the --threads threads, one intra-op thread each). Each splat (`warp.splat`: zbuffer, reference) is timed
over --repeats passes, interleaved so that load on a shared machine hits both alike; prints min and median ms/frame
and peak RSS (and peak GPU memory on CUDA).
Usage: python scripts/bench_warp.py [--frames 49] [--height 576] [--width 1024] [--threads 2] [--batch 1]
                                    [--splat zbuffer reference] [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from inverse_dvs import demo_scene, geometry
from inverse_dvs.warp import warp_video


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=49)
    p.add_argument("--height", type=int, default=576)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, nargs="+", default=[1])
    p.add_argument("--splat", nargs="+", default=["zbuffer", "reference"])
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    H, W, T = a.height, a.width, a.frames
    K = geometry.intrinsics(H, W, "fov", fov_deg=60.0)
    rgb, depth = demo_scene.render_video(np.eye(4), K, H, W, T)
    kf = geometry.read_trajectory_file(Path(__file__).resolve().parents[1] / "trajectories" / "loop1.txt")
    s2t = geometry.orbit_source_to_target(*[geometry.interpolate_keyframes(v, T) for v in kf],
                                          radius=float(depth[0, H // 2, W // 2]))
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"input: {T} frames {H}x{W}, loop1 trajectory; RSS after rendering inputs {rss0:.0f} MB")
    for dev in devices:
        for bs in a.batch:
            times: dict[str, list[float]] = {s: [] for s in a.splat}
            visible = {}
            for s in a.splat:
                warp_video(rgb[:2], depth[:2], K, s2t[:2], dev, bs, 4, splat=s)  # warm-up
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            for _ in range(a.repeats):
                for s in a.splat:
                    if dev.type == "cuda":
                        torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    _, vis = warp_video(rgb, depth, K, s2t, dev, bs, 4, splat=s)
                    if dev.type == "cuda":
                        torch.cuda.synchronize()
                    times[s].append((time.perf_counter() - t0) / T * 1000)
                    visible[s] = float(vis.mean())
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            extra = f", peak GPU {torch.cuda.max_memory_allocated() / 2**20:.0f} MB" if dev.type == "cuda" else ""
            for s, ts in times.items():
                print(f"device={dev.type} threads={a.threads} batch={bs} splat={s}: min {min(ts):.1f} / median "
                      f"{statistics.median(ts):.1f} ms/frame over {len(ts)} passes, visible {visible[s]:.3f}")
            print(f"  peak RSS {rss:.0f} MB{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
