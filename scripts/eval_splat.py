"""Both splats (`warp.splat`: zbuffer, reference) against the exact ray-cast views of the demo scene.

The demo scene (exact depth, 60° field of view) is warped at --height × --width along `trajectories/loop1.txt`
(49 frames, scene radius from the first frame's centre, as the warp stage does) and each chosen frame is compared
with the ray-cast view from the target camera. Per splat it prints: PSNR on pixels the warp marks visible whose true
surface the source saw; hole IoU against the exact disocclusions; and the leak — the share of sphere pixels the
source saw that the warp marks visible but fills with another surface (a channel off by > 60).
Usage: python scripts/eval_splat.py [--height 480] [--width 720] [--frames 8 16 24 32 40]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from inverse_dvs.core import camera
from inverse_dvs.core.splat import warp_frames
from inverse_dvs.infra.trajectories import read_trajectory_file
from inverse_dvs.testing import demo_scene


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=720)
    p.add_argument("--frames", type=int, nargs="+", default=[8, 16, 24, 32, 40])
    a = p.parse_args()
    torch.set_grad_enabled(False)
    H, W = a.height, a.width
    K = camera.intrinsics(H, W, "fov", fov_deg=60.0)
    radius = camera.scene_radius(demo_scene.render(np.eye(4), K, H, W, 0.0).depth, 1.0, 5.0)
    kf = read_trajectory_file(Path(__file__).resolve().parents[1] / "trajectories" / "loop1.txt")
    s2t = camera.orbit_source_to_target(*[camera.interpolate_keyframes(v, 49) for v in kf], radius=radius)
    print(f"demo scene {H}x{W}, loop1, frames {a.frames}")
    for mode in ("zbuffer", "reference"):
        checks = []
        for f in a.frames:
            t = f / 48
            src = demo_scene.render(np.eye(4), K, H, W, t)
            r = warp_frames(torch.tensor(src.rgb).permute(2, 0, 1)[None], torch.tensor(src.depth)[None],
                            torch.tensor(K), torch.tensor(s2t[f])[None], mode=mode)
            checks.append(demo_scene.check_warp(r.image[0].permute(1, 2, 0).numpy(), r.visible[0].numpy(), s2t[f],
                                                K, t))
        leak = sum(c.ball_leak * c.seen_ball for c in checks) / sum(c.seen_ball for c in checks)
        print(f"splat={mode}: PSNR " + " ".join(f"{c.psnr:.1f}" for c in checks)
              + f" dB (mean {np.mean([c.psnr for c in checks]):.1f}); hole IoU "
              + " ".join(f"{c.hole_iou:.3f}" for c in checks)
              + f" (mean {np.mean([c.hole_iou for c in checks]):.3f}); leak {100 * leak:.2f} % (per frame "
              + " ".join(f"{100 * c.ball_leak:.1f}" for c in checks) + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
