"""The exit codes, defined once (infra.errors) and held here against run_all.sh, the README and real runs, with two
run_all.sh runs on one work folder at once."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from inverse_dvs.infra.errors import EXIT_CODES, EXIT_INTERRUPTED, EXIT_ITEMS_FAILED, EXIT_OK, EXIT_USER_ERROR
from tests.conftest import tiny_run_config

ROOT = Path(__file__).resolve().parents[1]


def run_all(cfg: str, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(["bash", str(ROOT / "run_all.sh"), cfg, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def artifacts(work: Path) -> dict[str, str]:
    """sha256 of every artifact a run makes, by path below the work folder: not the logs and summaries, nor the
    records (meta.json: they hold times and seconds)."""
    return {str(p.relative_to(work)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(work.rglob("*"))
            if p.is_file() and "logs" not in p.parts and p.name not in ("meta.json", "run_summary.json", ".lock")}


def test_the_codes_are_the_readmes_and_run_all_uses_them():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| `(\d+)` \| ([^|]+?) \|", readme.split("## Exit codes", 1)[1], re.M))
    assert {int(k): v for k, v in table.items()} == EXIT_CODES
    script = (ROOT / "run_all.sh").read_text(encoding="utf-8")
    assert {int(c) for c in re.findall(r"\bexit (\d+)", script)} <= set(EXIT_CODES)
    assert (EXIT_OK, EXIT_ITEMS_FAILED, EXIT_USER_ERROR, EXIT_INTERRUPTED) == (0, 1, 2, 130)


@pytest.mark.slow
def test_two_runs_on_one_work_folder_both_finish_and_match_a_single_run(tmp_path, tiny_checkpoints, demo_video):
    """Two run_all.sh at once on one work_dir share the work: each waits for what the other is computing, neither
    reports it as failed, both exit 0, and every artifact has the bytes of a run alone."""
    cfg = tiny_run_config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo, prompt: a ball}}",
                          "trajectories: {left: {preset: orbit_left, amount: 5}, up: {preset: arc_up, amount: 5}}")
    alone = run_all(cfg, "--quiet", "--set", f"run.work_dir={tmp_path / 'alone'}")
    out, _ = alone.communicate(timeout=600)
    assert alone.returncode == 0, out
    both = [run_all(cfg, "--set", f"run.work_dir={tmp_path / 'shared'}") for _ in range(2)]
    outs = [p.communicate(timeout=900)[0] for p in both]
    for p, text in zip(both, outs, strict=True):
        assert p.returncode == 0, text
        assert "FAILED" not in text and "failed" not in text.lower().replace("0 failed", ""), text
    assert any("in progress in another process" in text or "waiting" in text for text in outs)  # they did meet
    for text in outs:  # the run's progress line, one per item: step k of the 4 steps, stage, item n of N
        assert "[step 2/4 warp] item 2 of 2: trajectory=up video=demo" in text
        assert re.search(r"\[step 4/4 infer\] item 1 of 2: trajectory=left video=demo run=\S+ · \d+ s so far", text)
    runs = [json.loads(f.read_text()) for f in sorted((tmp_path / "shared/logs/runs").glob("*.json"))]
    assert len(runs) == 2  # each run's own summary: every item complete, none left to the other run ("busy")
    for summary in runs:
        statuses = {it["status"] for section in summary.values() for it in section["items"]}
        assert statuses <= {"done", "skipped"} and summary.keys() >= {"preflight", "depth", "warp", "invert", "infer"}
    assert artifacts(tmp_path / "shared") == artifacts(tmp_path / "alone")
    assert len(artifacts(tmp_path / "alone")) > 10


def test_exit_codes_of_real_runs(tmp_path, tiny_checkpoints, demo_video):
    """2 for bad input (a config key), 2 when every failed item's input is bad, 130 for Ctrl-C, 0 when all is well."""
    bad = tmp_path / "bad.yml"
    bad.write_text("videos: [{path: nowhere.mp4}]\ntrajectories: {a: {preset: orbit_left}}\nrun: {wokr_dir: x}\n")
    r = subprocess.run(["bash", str(ROOT / "run_all.sh"), str(bad)], capture_output=True, text=True, timeout=120)
    assert r.returncode == EXIT_USER_ERROR and "wokr_dir" in r.stderr
    cfg = tiny_run_config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo, prompt: a ball}}")
    # Ctrl-C in the middle: the process group gets SIGINT, as a terminal sends it
    p = run_all(cfg, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "out/depths/demo/meta.json").is_file():
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == EXIT_INTERRUPTED, out


def test_a_stage_exits_2_when_every_failure_is_bad_input_and_1_for_any_other(tmp_path, tiny_checkpoints, demo_video,
                                                                           monkeypatch):
    from inverse_dvs import depth

    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video")
    cfg = tiny_run_config(tmp_path, tiny_checkpoints, f"{{path: {corrupt}, name: bad}}, {{path: {demo_video}, "
                                                      "name: demo}")
    assert depth.main(["--config", cfg, "--quiet"]) == EXIT_USER_ERROR  # the corrupt video; demo's depth is made
    assert (tmp_path / "out/depths/demo/depth.npz").is_file()

    def crash(*a, **kw):
        raise RuntimeError("out of something")

    monkeypatch.setattr(depth, "_depth_item", crash)
    assert depth.main(["--config", cfg, "--quiet", "--force", "--only-video", "demo"]) == EXIT_ITEMS_FAILED
