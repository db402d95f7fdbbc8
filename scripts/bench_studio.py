"""Studio benchmark: how long an edit and a preview take on the server, on this machine's CPU.

An edit is what the page does when a slider or keyframe moves: the path's cameras (`Studio.cameras`, the warp stage's
own computation) and the 3D view (`Studio.figure`, serialised to the JSON the page receives). A preview warps every
frame along the path with the depth cached (`Studio.preview`) at each preview size. Targets: an edit ≤ 100 ms, a
preview of 49 frames at 480×720 ≤ 3 s (on 2 CPU cores).

Default input: the demo scene at 480×720 with its exact depth (`data/demo.mp4`, from setup_env.sh), e.g.
`python scripts/bench_studio.py`; `--video PATH` for another clip (its depth through the configured backend).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", default=str(ROOT / "data/demo.mp4"))
    p.add_argument("--depth", default="ground_truth", help="depth.backend (ground_truth: {stem}_depth.npz beside it)")
    p.add_argument("--edits", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)

    import torch

    from inverse_dvs.studio.session import PREVIEW_SCALES, Studio

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "bench.yml"
        cfg.write_text(f"run: {{work_dir: {tmp}/out, device: cpu}}\n"
                       f"videos: [{{path: {a.video}, name: clip, prompt: x}}]\n"
                       f"trajectories: {{t: {{preset: orbit_left}}}}\ndepth: {{backend: {a.depth}}}\n")
        studio = Studio(cfg)
        t0 = time.perf_counter()
        scene = studio.open_video("clip")
        print(f"open (depth + decode): {time.perf_counter() - t0:.2f} s; {len(scene.clip.frames)} frames at "
              f"{scene.clip.frames.shape[2]}×{scene.clip.frames.shape[1]}; torch threads {torch.get_num_threads()}")
        studio.figure("clip", studio.preset("orbit_left", 1)).to_json()  # imports and first-call costs
        edits = []
        for i in range(a.edits):
            t0 = time.perf_counter()
            spec = studio.keyframes([0, 3 + i % 5, 1], [0, -10 - i, -20 - i], [0, 0.05, 0.1])
            studio.figure("clip", spec).to_json()
            edits.append(1000 * (time.perf_counter() - t0))
        edits.sort()
        print(f"edit → cameras + 3D view (JSON): median {statistics.median(edits):.1f} ms, "
              f"p90 {edits[int(0.9 * (len(edits) - 1))]:.1f} ms over {len(edits)} edits (target ≤ 100 ms)")
        spec = studio.preset("orbit_left+arc_up", 25)
        for size in PREVIEW_SCALES:
            runs = []
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                pv = studio.preview("clip", spec, size)
                runs.append(time.perf_counter() - t0)
            print(f"preview {size:<7} {pv.size[1]}×{pv.size[0]}, {len(pv.render)} frames: median "
                  f"{statistics.median(runs):.2f} s, best {min(runs):.2f} s (target ≤ 3 s at 480×720)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
