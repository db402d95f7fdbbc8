"""The studio's server: 127.0.0.1 without a password by default; any other address only with the password it prints."""

import contextlib
import http.cookiejar
import io
import re
import socket
import urllib.error
import urllib.parse
import urllib.request

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
