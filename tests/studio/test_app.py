"""The studio's server: 127.0.0.1 without a password by default; any other address only with the password it prints."""

import contextlib
import http.cookiejar
import io
import re
import socket
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest

pytest.importorskip("gradio", reason="the studio extra is not installed (pip install -e '.[studio]')")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(opener, url: str, data: dict | None = None) -> int:
    try:
        return opener.open(url, data=urllib.parse.urlencode(data).encode() if data else None).status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow
def test_the_page_binds_locally_and_elsewhere_only_behind_the_printed_password(tmp_path, tiny_checkpoints,
                                                                              demo_video):
    from inverse_dvs.studio.app import launch
    from inverse_dvs.studio.session import Studio
    from tests.conftest import tiny_run_config

    studio = Studio(tiny_run_config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo}}"))
    port = _free_port()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        page, _ = launch(studio, port=port, block=False)
    try:
        assert page.server_name == "127.0.0.1" and "password" not in out.getvalue()
        assert _status(urllib.request.build_opener(), f"http://127.0.0.1:{port}/config") == 200
    finally:
        page.close()

    port = _free_port()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        page, _ = launch(studio, host="0.0.0.0", port=port, block=False)
    try:
        password = re.search(r"log in as 'studio' with password (\S+)", out.getvalue()).group(1)
        base = f"http://127.0.0.1:{port}"
        anonymous = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        assert _status(anonymous, f"{base}/config") == 401
        assert _status(anonymous, f"{base}/login", {"username": "studio", "password": "guess"}) >= 400
        assert _status(anonymous, f"{base}/config") == 401
        user = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        assert _status(user, f"{base}/login", {"username": "studio", "password": password}) == 200
        assert _status(user, f"{base}/config") == 200
    finally:
        page.close()


def test_messages_show_paths_and_errors_as_text_never_as_markup():
    # CommonMark with raw HTML let through, as Gradio's Markdown does before its sanitiser (the browser test runs that)
    markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py comes with Gradio (through rich)")

    from inverse_dvs.studio.app import code, plain, warn

    evil = "<img src=x onerror=alert(1)>_*bold*_[link](http://x).mp4"
    for shown in (plain(evil), warn(f"video '{evil}' is not a file"), code(evil)):
        rendered = markdown_it.MarkdownIt("commonmark", {"html": True}).render(shown)
        assert not any(tag in rendered for tag in ("<img", "<a ", "<em>", "<strong>"))
        assert "&lt;img src=x onerror=alert(1)&gt;" in rendered


def test_the_preview_note_says_where_a_long_clips_windows_fall():
    from inverse_dvs.core.windows import plan_windows
    from inverse_dvs.studio.app import fraction_figure, windows_note

    windows = plan_windows(100, 49, 9)
    note = windows_note(windows)
    assert note.strip().startswith(f"The clip runs in {len(windows)} windows")
    assert all(f"{w.start}–{w.end - 1}" in note for w in windows) and "(overlap 9)" in note
    assert windows_note([]) == ""
    fig = fraction_figure(np.linspace(1, 0.5, 100), 0.3, windows)
    bands = [(s.x0, s.x1) for s in fig.layout.shapes]
    assert (windows[1].start - 0.5, windows[1].end - 0.5) in bands  # each window is a band
    assert (windows[1].start - 0.5, windows[1].start + windows[1].overlap - 0.5) in bands  # and each overlap
