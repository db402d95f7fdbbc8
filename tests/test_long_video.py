"""Long clips on the tiny models: a 97-frame clip in 3 windows of 49 with an overlap of 9, the hand-over between
windows, resuming after a kill in window 2, determinism, and the bad inputs of long clips."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from inverse_dvs import chain, depth, evaluate, preflight, warp
from tests.conftest import tiny_run_config

ROOT = Path(__file__).resolve().parents[1]
LONG = "camera: {num_frames: all, height: 96, width: 144, window: 49, overlap: 9}"


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    """97 frames of the demo scene at 96×144, with its exact depth."""
    from scripts.make_demo_scene import main

    out = tmp_path_factory.mktemp("long")
    assert main(["--out", str(out), "--frames", "97", "--height", "96", "--width", "144"]) == 0
    return out / "demo.mp4"


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _frames(path: Path) -> np.ndarray:
    with np.load(path) as z:
        return z["frames"]


def _run_folder(work: Path) -> Path:
    (folder,) = (work / "results/left/demo").glob("paper*")
    return folder


@pytest.mark.slow
def test_a_97_frame_clip_runs_in_three_windows_resumes_after_a_kill_and_repeats_bytes(tmp_path, tiny_checkpoints,
                                                                                      long_video, capsys):
    ckpt = tiny_checkpoints
    cfg = tiny_run_config(tmp_path, ckpt, f"{{path: {long_video}, name: demo, prompt: a ball}}",
                          f"{LONG}\ninversion: {{model: {ckpt / 'tiny-cogvideox-i2v'}, steps: 6}}\n"
                          f"eval: {{clip_model: {ckpt / 'tiny-clip'}, lpips: false}}")
    work = tmp_path / "out"
    for stage in (depth, warp):
        assert stage.main(["--config", cfg, "--quiet"]) == 0
    with np.load(work / "results/left/demo/render.npz") as z:
        assert z["frames"].shape[0] == 97  # depth and warp run over the whole clip

    # kill -9 while window 2 is computed: windows 0 and 1 are finished, window 2 and the output are not
    proc = subprocess.Popen([sys.executable, "-m", "inverse_dvs.chain", "invert", "infer", "--config", cfg, "--quiet"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    marker = None
    while time.time() < deadline and proc.poll() is None:
        found = list(work.glob("results/left/demo/*/windows/w01/meta.json"))
        if found:
            marker = found[0]
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert marker is not None, "window 1 never finished"
    folder = marker.parents[2]
    assert not (folder / "windows/w02/meta.json").exists(), "killed too late: window 2 had finished"
    assert not (folder / "meta.json").exists() and not (folder / "output.mp4").exists()
    kept = {p: os.stat(p).st_mtime_ns for w in ("w00", "w01") for p in (folder / "windows" / w).iterdir()}

    capsys.readouterr()
    assert chain.main(["invert", "infer", "--config", cfg]) == 0
    log = capsys.readouterr().err
    assert "window 0 (frames 0–48): skipped (up to date)" in log
    assert "window 1 (frames 40–88): skipped (up to date)" in log
    assert "window 2 (frames 48–96): done" in log
    assert {p: os.stat(p).st_mtime_ns for p in kept} == kept  # windows 0 and 1 were not recomputed

    meta = json.loads((folder / "meta.json").read_text())
    wins = meta["windows"]
    assert [(w["window"], w["frames"], w["overlap"]) for w in wins] == [(0, [0, 49], 0), (1, [40, 89], 9),
                                                                         (2, [48, 97], 41)]
    assert meta["frames"] == 97 and meta["nfe_per_output"] == sum(w["nfe"] for w in wins) + meta["inversion_nfe"] \
        - sum(w["inversion_nfe"] for w in wins)
    outputs = [_frames(folder / f"windows/w{i:02d}/frames.npz") for i in range(3)]
    for prev, w in zip(wins, wins[1:], strict=False):
        start, offset = w["frames"][0], w["frames"][0] - prev["frames"][0]
        before = outputs[prev["window"]]
        # the image condition and the overlap fed to window w are window w−1's output frames at those positions
        assert w["condition_sha256"] == _digest(before[offset])
        assert w["overlap_sha256"] == _digest(before[offset:offset + w["overlap"]])
        assert start + w["overlap"] == prev["frames"][1]
    from inverse_dvs.infra.video_io import FrameSelection, read_clip

    out = read_clip(folder / "output.mp4", FrameSelection(None), (96, 144), "crop").frames
    assert out.shape == (97, 96, 144, 3)
    assert read_clip(folder / "comparison.mp4", FrameSelection(None), (120, 432), "crop").frames.shape[0] == 97

    # a second run from scratch with the same seed gives the same bytes (and so does the resumed one)
    again = tmp_path / "again"
    over = ["--set", f"run.work_dir={again}"]
    for stage in (depth, warp):
        assert stage.main(["--config", cfg, "--quiet", *over]) == 0
    assert chain.main(["invert", "infer", "--config", cfg, "--quiet", *over]) == 0
    twin = _run_folder(again)
    for name in ("output.mp4", "comparison.mp4", *(f"windows/w{i:02d}/frames.npz" for i in range(3))):
        assert (twin / name).read_bytes() == (folder / name).read_bytes(), name

    # the evaluation covers the whole clip and reports the seams
    assert evaluate.main(["--config", cfg, "--quiet"]) == 0
    (metrics,) = (work / "eval/runs").rglob("metrics.json")
    m = json.loads(metrics.read_text())
    assert m["summary"]["frames"] == 97 and len(m["per_frame"]["psnr_input"]) == 97
    assert [b["window"] for b in m["seams"]["boundaries"]] == [1, 2] and m["summary"]["seam_ratio"] > 0
    assert "## Seams of long clips" in (work / "eval/report.md").read_text()


def test_a_clip_shorter_than_one_window_is_refused_unless_padded(tmp_path, tiny_checkpoints, demo_video, capsys):
    """num_frames: all on a 49-frame video with a window of 65 frames (the tiny CogVideoX1.5, which takes 1 + 16k):
    exit 2 naming the video and its frame count."""
    cfg = tiny_run_config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo, prompt: a}}",
                          "camera: {num_frames: all, height: auto, width: auto, window: 65}\n"
                          f"inversion: {{model: {tiny_checkpoints / 'tiny-cogvideox15-i2v'}}}")
    assert preflight.main(["--config", cfg]) == 2
    err = capsys.readouterr().err
    assert str(demo_video) in err and "has 49 frames" in err and "camera.pad_short" in err
    assert depth.main(["--config", cfg, "--quiet"]) == 2
    assert depth.main(["--config", cfg, "--quiet", "--set", "camera.pad_short=true"]) == 0
    with np.load(tmp_path / "out/depths/demo/depth.npz") as z:
        assert z["depth"].shape == (65, 128, 192)  # 96×144 (aspect 1.5) at the tiny 1.5's auto size


@pytest.mark.parametrize(("setting", "words"), [
    ("camera.overlap=49", ["'camera.overlap'", "camera.window is 49"]),
    ("camera.overlap=10", ["'camera.overlap'", "1 + 4m"]),
    ("camera.window=50", ["'camera.window'", "1 + 4m"]),
    ("camera.num_frames=every", ["'camera.num_frames'", "'all'"]),
    ("camera.last_window=pad", ["'camera.last_window'", "'end'", "'drop'"]),
])
def test_bad_window_settings_exit_2_naming_the_key(tmp_path, tiny_checkpoints, demo_video, capsys, setting, words):
    cfg = tiny_run_config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo, prompt: a}}")
    assert preflight.main(["--config", cfg, "--set", setting]) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err


def test_pose_files_must_match_the_clip_and_keyframes_may_outnumber_frames(tmp_path, tiny_checkpoints, demo_video):
    """With num_frames: all, a pose file with fewer poses than the video has frames fails its item (exit 2); a
    trajectory file with more keyframes (60) than frames (49) warps."""
    poses = tmp_path / "poses.json"
    poses.write_text(json.dumps([np.eye(4).tolist()] * 30))
    keys = tmp_path / "many.txt"
    keys.write_text("\n".join(" ".join(f"{v:g}" for v in np.linspace(0, a, 60)) for a in (4, -3, 0.05)))
    cfg = tiny_run_config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo, prompt: a}}",
                          f"camera: {{num_frames: all, height: 96, width: 144}}\n"
                          f"trajectories: {{few: {{poses: {poses}}}, many: {{file: {keys}}}}}")
    assert depth.main(["--config", cfg, "--quiet"]) == 0
    assert warp.main(["--config", cfg, "--quiet"]) == 2
    summary = json.loads((tmp_path / "out/run_summary.json").read_text())["warp"]["items"]
    status = {i["item"]["trajectory"]: i for i in summary}
    assert status["many"]["status"] == "done"
    assert status["few"]["status"] == "failed"
    assert "has 30 poses but the clip has 49 frames" in status["few"]["reason"]
