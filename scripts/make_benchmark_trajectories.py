"""Write the benchmark's 10 canonical camera moves into trajectories/benchmark/ (the files are in the repository;
this script documents and reproduces them).

Arcs and dollies use the 3-line θ/φ/r keyframe format (orbits about the scene pivot, distance as a fraction of the
scene radius, so they fit any scene's scale); pans and tilts turn the camera about its own centre, which that format
cannot say, so they are `poses:` files of 49 camera-to-world matrices (OpenCV axes; rotation only, so scale-free).
Plus `identity.txt`, a camera that does not move (the reconstruction check).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from inverse_dvs.core.camera import rigid, rot_x, rot_y

T = 49
KEYFRAMES = {  # name: (θ line, φ line, r line); θ > 0 up, φ > 0 right, r > 0 towards the scene
    "arc_left": ("0 0", "0 -30", "0 0"), "arc_right": ("0 0", "0 30", "0 0"),
    "arc_up": ("0 15", "0 0", "0 0"), "arc_down": ("0 -15", "0 0", "0 0"),
    "dolly_in": ("0 0", "0 0", "0 0.3"), "dolly_out": ("0 0", "0 0", "0 -0.3"),
    "identity": ("0", "0", "0"),
}
# camera turns (degrees) about its own y axis (pan, > 0 turns right) or x axis (tilt, > 0 turns up)
TURNS = {"pan_left": ("y", -20.0), "pan_right": ("y", 20.0), "tilt_up": ("x", 10.0), "tilt_down": ("x", -10.0)}


def main() -> int:
    out = Path(__file__).resolve().parents[1] / "trajectories" / "benchmark"
    out.mkdir(parents=True, exist_ok=True)
    for name, lines in KEYFRAMES.items():
        (out / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name, (axis, deg) in TURNS.items():
        angles = np.linspace(0.0, deg, T)
        # OpenCV axes, y down: R_y(+a) turns the view towards +x (right), R_x(+b) towards −y (up)
        R = rot_y(angles) if axis == "y" else rot_x(angles)
        c2w = rigid(R, np.zeros((T, 3)))
        (out / f"{name}.json").write_text(json.dumps({"camera_to_world": np.round(c2w, 10).tolist()}) + "\n",
                                          encoding="utf-8")
    print(f"wrote {len(KEYFRAMES) + len(TURNS)} trajectories to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
