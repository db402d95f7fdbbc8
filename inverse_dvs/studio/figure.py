"""The studio's 3D view: the first frame's coloured point cloud, the source camera, the pivot and the path's camera
frustums, as one plotly figure in the source camera's frame (OpenCV axes: x right, y down, z forward)."""

from __future__ import annotations

import numpy as np


def point_cloud(frame: np.ndarray, depth: np.ndarray, K: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `points` pixels of frame [H, W, 3] uint8 on a regular grid, lifted with their depth [H, W] through K →
    (xyz [N, 3], colours [N, 3] uint8)."""
    h, w = depth.shape
    step = max(1, int(np.ceil(np.sqrt(h * w / max(points, 1)))))
    v, u = np.mgrid[0:h:step, 0:w:step] + 0.5
    z = depth[::step, ::step]
    xyz = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], -1).reshape(-1, 3)
    return xyz.astype(np.float32), frame[::step, ::step].reshape(-1, 3)


# one frustum as a polyline through its centre (0) and image corners (1-4, clockwise from the top left); 5 = a gap
_STROKES = [0, 1, 2, 0, 3, 4, 0, 5, 2, 3, 5, 4, 1, 5]


def frustum_lines(camera_to_world: np.ndarray, K: np.ndarray, size: tuple[int, int], scale: float) -> np.ndarray:
    """Camera frustums (the centre joined to the four image corners at depth `scale`, and the image rectangle) of
    cameras [N, 4, 4] → points [N · 14, 3] of one polyline, NaN rows between strokes (plotly leaves a gap there)."""
    h, w = size
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    rays = np.stack([(corners[:, 0] - K[0, 2]) / K[0, 0], (corners[:, 1] - K[1, 2]) / K[1, 1], np.ones(4)], -1)
    local = np.concatenate([np.zeros((1, 3)), rays * scale])
    world = np.einsum("nij,kj->nki", camera_to_world[:, :3, :3], local) + camera_to_world[:, None, :3, 3]
    world = np.concatenate([world, np.full((len(world), 1, 3), np.nan)], 1)
    return world[:, _STROKES].reshape(-1, 3)


def _palette(rgb: np.ndarray, bits: int = 4) -> tuple[np.ndarray, list[list]]:
    """Colours [N, 3] uint8 quantised to `bits` per channel → (index per point [N] uint16, a plotly colorscale with
    one stop per colour in use). A numeric colour array travels to the page as packed binary, a list of colour
    strings as text several times its size (and plotly checks every string)."""
    q = (rgb >> (8 - bits)).astype(np.int64)
    n = 1 << bits
    used, index = np.unique((q[:, 0] * n + q[:, 1]) * n + q[:, 2], return_inverse=True)
    levels = np.arange(n) * 255 // (n - 1)
    last = max(len(used) - 1, 1)
    scale = [[i / last, f"rgb({levels[c // (n * n)]},{levels[c // n % n]},{levels[c % n]})"]
             for i, c in enumerate(used.tolist())]
    if len(scale) == 1:
        scale.append([1.0, scale[0][1]])
    return index.astype(np.uint16), scale


def scene_figure(frame: np.ndarray, depth: np.ndarray, K: np.ndarray, camera_to_world: np.ndarray, radius: float,
                 points: int = 6000, every: int = 4):
    """The figure (module docstring); cameras [T, 4, 4], every `every`-th frustum and the last are drawn. Built
    without plotly's per-value validation: the traces are made here, from arrays (an edit must redraw in well under
    100 ms)."""
    import plotly.graph_objects as go

    xyz, rgb = point_cloud(frame, depth, K, points)
    index, colorscale = _palette(rgb)
    picked = sorted({*range(0, len(camera_to_world), max(1, every)), len(camera_to_world) - 1})
    scale = 0.12 * radius
    path = camera_to_world[:, :3, 3]
    source = frustum_lines(np.eye(4)[None], K, depth.shape, scale)
    lines = frustum_lines(camera_to_world[picked], K, depth.shape, scale)

    def xyz_of(a: np.ndarray) -> dict:
        return {"x": a[:, 0], "y": a[:, 1], "z": a[:, 2]}

    traces = [
        {"type": "scatter3d", **xyz_of(xyz), "mode": "markers", "name": "first frame", "hoverinfo": "skip",
         "marker": {"size": 1.6, "color": index, "colorscale": colorscale, "cmin": 0, "cmax": len(colorscale) - 1}},
        {"type": "scatter3d", **xyz_of(source), "mode": "lines", "name": "source camera",
         "line": {"color": "black", "width": 4}},
        {"type": "scatter3d", **xyz_of(lines), "mode": "lines", "name": "path cameras",
         "line": {"color": "rgb(230,110,20)", "width": 3}},
        {"type": "scatter3d", **xyz_of(path), "mode": "lines+markers", "name": "camera path",
         "marker": {"size": 2.5, "color": np.arange(len(path)), "colorscale": "Viridis"},
         "line": {"color": "rgb(120,120,120)", "width": 2}, "text": [f"frame {i}" for i in range(len(path))]},
        {"type": "scatter3d", "x": [0.0], "y": [0.0], "z": [radius], "mode": "markers", "name": "pivot (orbit centre)",
         "marker": {"size": 6, "color": "red", "symbol": "cross"}},
    ]
    layout = {"margin": {"l": 0, "r": 0, "t": 0, "b": 0}, "legend": {"x": 0, "y": 1, "font": {"size": 10}},
              "uirevision": "studio",  # keep the user's view while the path changes
              "scene": {"aspectmode": "data", "xaxis": {"title": {"text": "x (right)"}},
                        "yaxis": {"title": {"text": "y (down)"}}, "zaxis": {"title": {"text": "z (forward)"}},
                        "camera": {"up": {"x": 0, "y": -1, "z": 0}, "eye": {"x": 0.3, "y": -0.9, "z": -1.6}}}}
    return go.Figure(traces, layout, _validate=False)
