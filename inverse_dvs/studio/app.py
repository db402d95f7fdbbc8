"""The studio's page (Gradio): pick a video, edit a camera path over its point cloud, preview the warp, save, run.

Offline by construction: Gradio serves its own bundled front end (plotly.js included), the theme uses the system's
fonts instead of Google Fonts, analytics are off and there is no share tunnel. It binds to 127.0.0.1; `--host`
binds elsewhere and then asks for the password printed at start.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import secrets
import sys
from pathlib import Path

import numpy as np

from ..config import model_hw
from ..config.paths import PROJECT_ROOT
from ..core.camera import PRESETS
from ..infra.errors import UserError
from .session import PREVIEW_SCALES, Studio

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

DEFAULT_KEYFRAMES = [[0.0, 0.0, 0.0], [0.0, -10.0, 0.0]]
EDIT_MODES = ("preset", "keyframes", "file")
_MARKDOWN = re.compile(r"([\\`*_\[\]|~#])")


def plain(text) -> str:
    """Text shown as it is in a Markdown message: HTML escaped (a video path like `<img src=x onerror=…>.mp4` stays
    text, whatever the page's own sanitiser does) and Markdown's markup characters backslash-escaped."""
    return _MARKDOWN.sub(r"\\\1", html.escape(str(text), quote=False))


def code(text) -> str:
    """Text shown as code in a Markdown message, escaped as `plain` (Markdown goes on inside an HTML tag)."""
    return f"<code>{plain(text)}</code>"


def warn(exc) -> str:
    """A problem for the page: ⚠ and its message as plain text."""
    return f"⚠ {plain(exc)}"


def windows_note(windows) -> str:
    """Where a long clip's windows fall, for the preview note ("" for a clip of one window)."""
    if not windows:
        return ""
    spans = ", ".join(f"{w.start}–{w.end - 1}" + (f" (overlap {w.overlap})" if w.overlap else "") for w in windows)
    return f"\n\nThe clip runs in {len(windows)} windows, frames {spans}: each is one model call."


def _frame_image(render: np.ndarray, visibility: np.ndarray, i: int) -> np.ndarray:
    """Render frame i beside its visibility (white = visible, red = a hole the model must fill)."""
    vis = visibility[i][..., None]
    mask = (vis * 255 + (1 - vis) * np.array([200, 30, 30])).astype(np.uint8)
    return np.concatenate([render[i], mask], 1)


def fraction_figure(fractions: np.ndarray, warn_below: float, windows=()):
    """The visible fraction per frame, the warning line and, for a long clip, its windows (alternating bands) with
    their overlaps (darker)."""
    import plotly.graph_objects as go

    x = np.arange(len(fractions))
    shapes = [{"type": "rect", "xref": "x", "yref": "paper", "x0": w.start - 0.5, "x1": w.end - 0.5, "y0": 0,
               "y1": 1, "fillcolor": "#1f77b4" if w.index % 2 else "#ff7f0e", "opacity": 0.08, "line": {"width": 0},
               "layer": "below"} for w in windows]
    shapes += [{"type": "rect", "xref": "x", "yref": "paper", "x0": w.start - 0.5, "x1": w.start + w.overlap - 0.5,
                "y0": 0, "y1": 1, "fillcolor": "#444", "opacity": 0.15, "line": {"width": 0}, "layer": "below"}
               for w in windows if w.overlap]
    return go.Figure([
        {"type": "scatter", "x": x, "y": fractions, "mode": "lines+markers", "name": "visible fraction",
         "marker": {"size": 4}},
        {"type": "scatter", "x": [0, len(fractions) - 1], "y": [warn_below, warn_below], "mode": "lines",
         "name": f"warp.min_visible_warn ({warn_below:g})", "line": {"dash": "dash", "color": "red"}},
    ], {"margin": {"l": 40, "r": 10, "t": 10, "b": 30}, "height": 220, "yaxis": {"range": [0, 1.02]},
        "xaxis": {"title": {"text": "frame"}}, "legend": {"orientation": "h", "y": -0.35}, "shapes": shapes},
        _validate=False)


def build(studio: Studio):
    """The page for one Studio; returns the gr.Blocks (not launched)."""
    import gradio as gr

    cfg = studio.cfg
    # full: the warp stage's own render (1.5 s for 49 frames at 480×720 on 2 CPU cores, scripts/bench_studio.py);
    # half or quarter for a large camera.warp_size
    try:
        largest = max(h * w for h, w in map(cfg.warp_hw, cfg.videos))
    except UserError:  # a video that does not open, or an `auto` size without the model's configs: the page says
        largest = 0
    default_size = "full" if largest <= 480 * 720 else "half"

    def spec_of(mode, presets, amount, table, file_path):
        if mode == "preset":
            return studio.preset("+".join(presets or ["orbit_left"]), amount)
        if mode == "keyframes":
            rows = [r for r in (table or []) if any(str(v).strip() for v in r)]
            try:
                cols = np.asarray([[float(v) for v in r] for r in rows], dtype=np.float64).reshape(-1, 3).T
            except ValueError as exc:
                raise UserError(f"a keyframe is not a number ({exc}).") from None
            return studio.keyframes(*cols)
        if not (file_path or "").strip():
            raise UserError("give the path of a 3-line trajectory file or a JSON pose file, then press Load.")
        return studio.from_file(file_path.strip())

    def edited(video, mode, presets, amount, table, file_path):
        """Any edit: the new cameras drawn over the point cloud, or the preflight message (`Studio.cameras`)."""
        try:
            return studio.figure(video, spec_of(mode, presets, amount, table, file_path)), ""
        except UserError as exc:
            return gr.update(), warn(exc)

    def opened(video):
        try:
            scene = studio.open_video(video)
        except UserError as exc:
            return warn(exc)
        t, h, w = scene.depth.shape
        return (f"**{plain(video)}**: {t} frames, warped at {h}×{w} (height × width), scene radius "
                f"{scene.radius:.2f}; depth from {code(studio.depth_file(video))} (the depth stage's own artifact: "
                "`run_all.sh` finds it up to date).")

    def previewed(video, mode, presets, amount, table, file_path, size):
        try:
            spec = spec_of(mode, presets, amount, table, file_path)
            p = studio.preview(video, spec, size)
        except UserError as exc:
            return None, gr.update(), None, warn(exc), None
        mh, mw = model_hw(cfg, studio.video(video))
        reduced = "" if size == "full" else f"; the warp stage renders at {mh}×{mw}"
        note = (f"Preview at {p.size[0]}×{p.size[1]} (height × width; {size} size{reduced}), {len(p.render)} frames "
                f"warped in {p.seconds:.2f} s. Lowest visible fraction {p.fractions.min():.0%} at frame "
                f"{int(p.fractions.argmin())}.")
        note += windows_note(p.windows)
        note += "".join(f"\n\n{warn(w)}" for w in p.warnings)
        last = len(p.render) - 1  # shown first: where the camera has moved furthest (frame 0 is the source view)
        return (studio.still(_frame_image(p.render, p.visibility, last)), gr.update(maximum=last, value=last),
                fraction_figure(p.fractions, cfg.warp.min_visible_warn, p.windows), note, (p.render, p.visibility))

    def scrubbed(state, i):
        if state is None:
            return None
        render, visibility = state
        return studio.still(_frame_image(render, visibility, min(int(i), len(render) - 1)))

    def saved(video, mode, presets, amount, table, file_path, name, new_config):
        try:
            s = studio.save(name.strip(), video, spec_of(mode, presets, amount, table, file_path), new_config)
        except UserError as exc:
            return warn(exc), None
        return (f"Saved {code(s.trajectory_file)} and added trajectory **{plain(name.strip())}** to "
                f"{code(s.config_file)}.\n\nRun it with:\n\n{code(s.command)}",
                (str(s.config_file), studio.video(video).name, name.strip()))

    def started(last):
        if last is None:
            return "⚠ Save the path first: a run is the saved trajectory's `run_all.sh`.", None, gr.update(active=False)
        config, video, name = last
        try:
            key = studio.start_run(Path(config), video, name)
        except UserError as exc:
            return f"⚠ Not started. {plain(exc)}", None, gr.update(active=False)
        return f"Started `run_all.sh` for {plain(key)}.", key, gr.update(active=True)

    def polled(key):
        if key is None:
            return gr.update(), gr.update(), gr.update(), gr.update(active=False)
        st = studio.run_status(key)
        marks = " → ".join(("✓ " if s in st["stages"] else "") + s for s in st["all_stages"])
        head = f"{plain(key)}: {marks}"
        if st["done"]:
            head += f"\n\nFinished with exit code {st['returncode']}" + (
                "." if st["returncode"] == 0 else " (see the log and README → Exit codes).")
        video = str(studio.snapshot(st["comparison"])) if st["comparison"] else None
        return head, st["log"], video, gr.update(active=not st["done"])

    with gr.Blocks(title="inverse-dvs studio", analytics_enabled=False) as page:
        gr.Markdown(f"## inverse-dvs studio — {code(studio.config_path.name)}\nDesign a camera path on the video's own "
                    "points, preview the warped render and its holes (what the model must keep and invent), save "
                    "it, run it.")
        with gr.Row():
            video = gr.Dropdown(studio.video_names(), value=studio.video_names()[0], label="video (or a path)",
                                allow_custom_value=True, elem_id="video")
            open_btn = gr.Button("Open", elem_id="open")
        status = gr.Markdown(elem_id="status")
        with gr.Row():
            with gr.Column(scale=2):
                mode = gr.Radio(list(EDIT_MODES), value="preset", label="path from", elem_id="mode")
                presets = gr.Dropdown(list(PRESETS), value=["orbit_left"], multiselect=True,
                                      label="preset (combined with +)", elem_id="presets")
                amount = gr.Slider(0, 90, value=20, step=1, label="amount (degrees; % of the scene radius for dolly)",
                                   elem_id="amount")
                table = gr.Dataframe(DEFAULT_KEYFRAMES, headers=["θ (°, up)", "φ (°, right)", "r (× radius)"],
                                     datatype=["number"] * 3, type="array", column_count=3,
                                     label="keyframes (rows; add or delete rows in the table)", elem_id="table")
                with gr.Row():
                    key_index = gr.Slider(0, 1, value=1, step=1, label="keyframe", elem_id="key_index")
                    theta = gr.Slider(-90, 90, value=0, step=0.5, label="θ", elem_id="theta")
                    phi = gr.Slider(-180, 180, value=-10, step=0.5, label="φ", elem_id="phi")
                    r = gr.Slider(-1, 1, value=0, step=0.01, label="r", elem_id="r")
                file_path = gr.Textbox(label="trajectory (.txt) or pose (.json) file", elem_id="file")
                load_btn = gr.Button("Load file")
                problem = gr.Markdown(elem_id="problem")
            with gr.Column(scale=3):
                plot = gr.Plot(label="point cloud, source camera (black), pivot (red), path cameras", elem_id="plot")
        with gr.Row():
            size = gr.Radio(list(PREVIEW_SCALES), value=default_size, label="preview size", elem_id="size")
            preview_btn = gr.Button("Preview", variant="primary", elem_id="preview")
        with gr.Row():
            with gr.Column(scale=3):
                frame_img = gr.Image(label="render | visibility (red: holes)", type="numpy", elem_id="render",
                                     interactive=False, height=320)
                frame = gr.Slider(0, 48, value=0, step=1, label="frame", elem_id="frame")
            with gr.Column(scale=2):
                fractions = gr.Plot(label="visible fraction per frame", elem_id="fractions")
                preview_note = gr.Markdown(elem_id="preview_note")
        preview_state = gr.State(None)
        with gr.Row():
            name = gr.Textbox(label="trajectory name", value="studio_path", elem_id="name")
            new_config = gr.Checkbox(label=f"write {studio.config_path.stem}.studio.yml instead of editing the config",
                                     elem_id="new_config")
            save_btn = gr.Button("Save", elem_id="save")
        saved_note = gr.Markdown(elem_id="saved")
        last_saved = gr.State(None)
        with gr.Row():
            run_btn = gr.Button("Run run_all.sh", elem_id="run")
        run_note = gr.Markdown(elem_id="run_note")
        run_log = gr.Textbox(label="log", lines=8, max_lines=16, elem_id="run_log")
        comparison = gr.Video(label="comparison.mp4 (input | render | output)", elem_id="comparison")
        run_key = gr.State(None)
        timer = gr.Timer(2.0, active=False)

        path_inputs = [video, mode, presets, amount, table, file_path]
        for trigger in (mode.change, presets.change, amount.change, table.change, load_btn.click):
            trigger(edited, path_inputs, [plot, problem])
        open_btn.click(opened, video, status).then(edited, path_inputs, [plot, problem])
        page.load(opened, video, status).then(edited, path_inputs, [plot, problem])

        def select_key(tab, i):
            rows = tab or []
            i = min(int(i), max(len(rows) - 1, 0))
            row = rows[i] if rows else [0, 0, 0]
            return gr.update(maximum=max(len(rows) - 1, 1)), *(float(v) for v in row)

        def drag(tab, i, t, p, rr):
            rows = [list(x) for x in (tab or [])]
            if rows:
                rows[min(int(i), len(rows) - 1)] = [t, p, rr]
            return rows, "keyframes"

        key_index.change(select_key, [table, key_index], [key_index, theta, phi, r])
        for s in (theta, phi, r):
            s.release(drag, [table, key_index, theta, phi, r], [table, mode])
        preview_btn.click(previewed, [*path_inputs, size], [frame_img, frame, fractions, preview_note, preview_state])
        frame.change(scrubbed, [preview_state, frame], frame_img)
        save_btn.click(saved, [*path_inputs, name, new_config], [saved_note, last_saved])
        run_btn.click(started, last_saved, [run_note, run_key, timer])
        timer.tick(polled, run_key, [run_note, run_log, comparison, timer])
    return page


def offline_theme():
    """Gradio's default theme on the system's fonts: the default loads Google Fonts, which an offline page lacks."""
    import gradio as gr

    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def launch(studio: Studio, host: str = "127.0.0.1", port: int | None = None, block: bool = True):
    """Serve the page; binding beyond this machine needs the password printed here. Returns (page, url)."""
    page = build(studio)
    local = host in ("127.0.0.1", "localhost", "::1")
    auth = None
    if not local:
        token = secrets.token_urlsafe(12)
        auth = ("studio", token)
        sys.stdout.write(f"studio: listening on {host}; log in as 'studio' with password {token}\n")
    _, url, _ = page.launch(server_name=host, server_port=port, share=False, auth=auth, prevent_thread_lock=True,
                            quiet=True, theme=offline_theme(), ssr_mode=False, pwa=False, mcp_server=False,
                            allowed_paths=[str(studio.view_dir)], footer_links=[])
    sys.stdout.write(f"studio: {url} (config {studio.config_path})\n")
    sys.stdout.flush()
    if block:
        page.block_thread()
    return page, url


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m inverse_dvs.studio", description=__doc__.splitlines()[0])
    p.add_argument("--config", default="config.yml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=V")
    p.add_argument("--port", type=int, default=None, help="port (default: 7860, or the next free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1, this machine only); any other asks for a password")
    a = p.parse_args(argv)
    config = Path(a.config)
    if not config.is_absolute() and not config.is_file():
        config = PROJECT_ROOT / config
    try:
        studio = Studio(config, tuple(a.overrides))
    except UserError as exc:
        sys.stderr.write(f"studio: {exc}\n")
        return 2
    launch(studio, a.host, a.port)
    return 0
