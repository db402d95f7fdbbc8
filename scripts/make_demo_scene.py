"""Render the procedural demo scene into data/demo.mp4 with its exact depth and intrinsics (no downloads).

Writes `data/demo.mp4` (49 frames, 480×720, 8 fps), `data/demo_depth.npz` (key `depth`: float32 [T, H, W], z-depth,
larger = farther — the depth.npz convention) and `data/demo_camera.json` (`K` in pixels, size, fov).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from inverse_dvs.infra.artifacts import save_npz, write_json
from inverse_dvs.infra.video_io import write_video
from inverse_dvs.testing.demo_scene import intrinsics_from_fov, render_video


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="data", help="output folder")
    p.add_argument("--frames", type=int, default=49)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=720)
    p.add_argument("--fov", type=float, default=60.0, help="horizontal field of view in degrees")
    p.add_argument("--fps", type=float, default=8.0)
    p.add_argument("--name", default="demo", help="file stem: NAME.mp4, NAME_depth.npz, NAME_camera.json")
    p.add_argument("--force", action="store_true")
    a = p.parse_args(argv)
    out = Path(a.out)
    video, depth_path, cam_path = out / f"{a.name}.mp4", out / f"{a.name}_depth.npz", out / f"{a.name}_camera.json"
    params = {"frames": a.frames, "height": a.height, "width": a.width, "fov_deg": a.fov, "fps": a.fps}
    if not a.force and video.exists() and depth_path.exists() and cam_path.exists():
        if json.loads(cam_path.read_text()).get("params") == params:
            print(f"demo scene up to date: {video}")
            return 0
    K = intrinsics_from_fov(a.height, a.width, a.fov)
    rgb, depth = render_video(np.eye(4), K, a.height, a.width, a.frames)
    write_video(video, rgb, a.fps, crf=12)
    save_npz(depth_path, depth=depth.astype(np.float32))
    write_json(cam_path, {"K": K.tolist(), "height": a.height, "width": a.width, "params": params})
    print(f"wrote {video}, {depth_path}, {cam_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
