"""The studio page in a real browser: headless Chromium (Debian's package) driven by playwright, which never downloads a
browser here. CI installs Chromium and sets INVERSE_DVS_REQUIRE_BROWSER=1, so there a missing browser fails instead
of skipping. INVERSE_DVS_STUDIO_SCREENSHOT=PATH also keeps the screenshot there (the README's is made so)."""

import io
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import tiny_run_config

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pixels(png: bytes) -> np.ndarray:
    """A screenshot's pixels (Pillow, which Gradio installs; OpenCV's libpng refuses Chromium's PNGs)."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.mark.slow
def test_the_page_previews_a_path_while_a_run_writes_and_shows_paths_as_text(tmp_path, tiny_checkpoints, demo_video):
    if CHROMIUM is None:
        if os.environ.get("INVERSE_DVS_REQUIRE_BROWSER"):
            pytest.fail("Chromium is not installed, but this run requires the browser test (apt install chromium)")
        pytest.skip("no Chromium on this machine (Debian: apt install chromium); the studio's browser test needs it")
    pytest.importorskip("gradio", reason="the studio extra is not installed (pip install -e '.[studio]')")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
    from inverse_dvs.studio.app import launch
    from inverse_dvs.studio.session import Studio

    shutil.copy(demo_video, tmp_path / "clip.mp4")
    shutil.copy(demo_video.with_name("demo_depth.npz"), tmp_path / "clip_depth.npz")
    cfg = tiny_run_config(tmp_path, tiny_checkpoints, f"{{path: {tmp_path / 'clip.mp4'}, name: demo}}")
    page, url = launch(Studio(cfg), port=_free_port(), block=False)
    outside, broken = [], []
    run = None
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            tab = browser.new_page(viewport={"width": 1400, "height": 1700})
            tab.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
                   else outside.append(r.url))
            tab.on("requestfailed", lambda r: broken.append(f"{r.url}: {r.failure}")  # a file cut short, e.g.
                   if "/file=" in r.url else None)  # ERR_CONTENT_LENGTH_MISMATCH (the event stream's end is not)
            tab.on("response", lambda r: broken.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None)
            tab.goto(url)
            tab.wait_for_selector("#status p", timeout=60_000)  # the video is open: its depth is made
            assert "49 frames" in tab.inner_text("#status")
            tab.wait_for_selector("#plot .js-plotly-plot", timeout=30_000)
            # a run writing into the same work folder all along (its warp, inversion and outputs), as a user runs
            # run_all.sh beside the studio: every preview must still arrive whole
            run = subprocess.Popen(["bash", str(ROOT / "run_all.sh"), cfg, "--quiet"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)

            def preview() -> np.ndarray:
                before = tab.locator("#render img").get_attribute("src") if tab.locator("#render img").count() else None
                tab.click("#preview")
                tab.wait_for_function(
                    "b => { const i = document.querySelector('#render img'); return i && i.complete && "
                    "i.naturalWidth > 0 && i.getAttribute('src') !== b; }", arg=before, timeout=60_000)
                tab.wait_for_selector("#preview_note p", timeout=30_000)
                return _pixels(tab.locator("#render img").screenshot())

            first = preview()
            assert first.std() > 10, "the preview image is blank"
            assert "49 frames warped" in tab.inner_text("#preview_note")
            amount = tab.locator("#amount input[type=number]")
            amount.fill("60")
            amount.press("Enter")
            time.sleep(1.0)  # the edit redraws the cameras
            second = preview()
            assert second.std() > 10
            assert first.shape == second.shape and np.abs(first.astype(int) - second.astype(int)).mean() > 1.0, \
                "the preview did not change with the path"
            for value in (30, 45, 10):  # more previews and scrubbing while the run writes
                amount.fill(str(value))
                amount.press("Enter")
                time.sleep(0.5)
                assert preview().std() > 10
                tab.locator("#frame input[type=number]").fill("3")
                tab.locator("#frame input[type=number]").press("Enter")
                tab.wait_for_function("() => { const i = document.querySelector('#render img'); return i && "
                                      "i.complete && i.naturalWidth > 0; }", timeout=30_000)
            assert run.poll() is None, "the run ended before the previews: it did not overlap them"
            # a path with HTML in it is shown as text, never as markup
            evil = str(tmp_path / "<img src=x onerror=window.pwned=1>.mp4")
            tab.locator("#video input").fill(evil)
            tab.locator("#video input").press("Enter")
            tab.click("#open")
            tab.wait_for_function("() => document.querySelector('#status').innerText.includes('onerror')",
                                  timeout=30_000)
            assert "<img src=x onerror=window.pwned=1>" in tab.inner_text("#status")
            assert tab.locator("#status img").count() == 0 and not tab.evaluate("() => window.pwned")
            shot = tmp_path / "studio.png"
            tab.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("INVERSE_DVS_STUDIO_SCREENSHOT"):
                shutil.copy(shot, Path(os.environ["INVERSE_DVS_STUDIO_SCREENSHOT"]))
            browser.close()
    finally:
        page.close()
        if run is not None:
            run.wait(timeout=600)
    assert not outside, f"the page asked for resources outside this machine: {outside[:5]}"
    assert not broken, f"a file the page fetched did not arrive whole: {broken[:5]}"
    assert run.returncode == 0
