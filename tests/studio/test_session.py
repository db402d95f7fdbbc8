"""The studio through its API (`Studio`, what the page calls): a video, edits, previews, saving, safety, runs."""

import difflib
import gc
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from inverse_dvs import depth, preflight, warp
from inverse_dvs.infra.errors import UserError
from tests.conftest import tiny_run_config

pytest.importorskip("ruamel.yaml", reason="the studio extra is not installed (pip install -e '.[studio]')")
from inverse_dvs.studio.session import Studio  # noqa: E402


@pytest.fixture
def setup(tmp_path, tiny_checkpoints, demo_video):
    """A config in tmp_path (with a comment to keep) whose work folder is tmp_path/out; the demo video copied in."""
    video = tmp_path / "clip.mp4"
    shutil.copy(demo_video, video)
    shutil.copy(demo_video.with_name("demo_depth.npz"), tmp_path / "clip_depth.npz")
    cfg = Path(tiny_run_config(tmp_path, tiny_checkpoints, f"{{path: {video}, name: demo, prompt: a ball}}",
                               "trajectories: {moved: {theta: [0, 4, 2], phi: [0, -8, -12], r: [0, 0.05, 0.1]}}"))
    cfg.write_text("# my own notes: keep me\n" + cfg.read_text())
    return Studio(cfg), cfg, tmp_path / "out"


def test_opening_a_video_makes_its_depth_through_the_depth_stage(setup, capsys):
    studio, cfg, out = setup
    scene = studio.open_video("demo")
    assert scene.clip.frames.shape == (49, 96, 144, 3) and scene.depth.shape == (49, 96, 144)
    assert (out / "depths/demo/depth.npz").is_file() and (out / "depths/demo/meta.json").is_file()
    capsys.readouterr()
    assert depth.main(["--config", str(cfg)]) == 0  # run_all.sh's depth stage finds it up to date
    assert "skipped (up to date)" in capsys.readouterr().err


def test_a_failure_is_the_one_of_its_own_video(setup):
    """The failure the depth stage recorded for `cat2` is not `cat`'s (items are matched by their video, never by a
    substring of a label)."""
    studio, cfg, out = setup
    out.mkdir(parents=True, exist_ok=True)
    (out / "run_summary.json").write_text(json.dumps({"depth": {"items": [
        {"item": {"video": "cat2"}, "status": "failed", "reason": "cat2 is broken"},
        {"item": {"video": "cat"}, "status": "done", "reason": ""}]}}))
    assert studio.failure("depth", "cat") is None and studio.failure("depth", "cat2") == "cat2 is broken"


def test_an_edit_gives_the_warp_stages_cameras_and_the_preview_its_render(setup):
    studio, cfg, out = setup
    studio.open_video("demo")  # the depth the warp stage then reads
    assert warp.main(["--config", str(cfg), "--quiet", "--only-trajectory", "moved"]) == 0
    cams = json.loads((out / "results/moved/demo/cameras.json").read_text())
    spec = studio.keyframes([0, 4, 2], [0, -8, -12], [0, 0.05, 0.1])
    s2t = studio.cameras("demo", spec)
    assert np.array_equal(s2t, np.asarray(cams["source_to_target"]))  # the same numbers, not merely close
    fig = studio.figure("demo", spec)
    path = next(t for t in fig.data if t.name == "camera path")
    assert np.allclose(np.c_[path.x, path.y, path.z], np.asarray(cams["camera_to_world"])[:, :3, 3])
    p = studio.preview("demo", spec, "full")
    with np.load(out / "results/moved/demo/render.npz") as z:
        assert np.array_equal(p.render, z["frames"])
    with np.load(out / "results/moved/demo/masks.npz") as z:
        assert np.array_equal(p.visibility, z["visibility"])
    meta = json.loads((out / "results/moved/demo/meta.json").read_text())
    assert np.allclose(p.fractions, meta["visible_fraction"], atol=1e-5)
    half = studio.preview("demo", spec, "half")
    assert half.render.shape == (49, 48, 72, 3) and half.size == (48, 72)
    # another path moves the cameras
    assert not np.allclose(studio.cameras("demo", studio.preset("orbit_right", 30)), s2t)


def test_a_bad_keyframe_gets_the_preflight_message_and_no_crash(setup):
    studio, cfg, _ = setup
    from inverse_dvs.preflight import check_trajectory

    for spec, words in ((studio.keyframes([0, float("nan")], [0, 1], [0, 0]), "not finite"),
                        (studio.keyframes([0, 0], [0, 400], [0, 0]), "|φ| ≤ 360°")):
        message = studio.problem(spec)
        with pytest.raises(UserError) as exc:
            check_trajectory(studio.cfg, spec)
        assert message == str(exc.value) and words in message
        with pytest.raises(UserError, match="out of range|not finite"):
            studio.preview("demo", spec)
    assert studio.problem(studio.preset("orbit_left+nope", 10)).startswith("unknown preset 'nope'")


def test_paths_outside_the_allowed_folders_are_refused(setup, tmp_path):
    studio, cfg, out = setup
    for bad in ("/etc/hostname", "/etc", str(Path.home() / "secret.txt")):
        with pytest.raises(UserError, match="outside the folders the studio may read"):
            studio.check_path(bad)
    with pytest.raises(UserError, match="outside"):
        studio.from_file("/etc/hostname")
    with pytest.raises(UserError, match="outside"):
        studio.open_video("/etc/hostname")
    # what the config names, and files under the work folder, are readable
    assert studio.check_path(cfg) == cfg.resolve()
    assert studio.check_path(tmp_path / "clip.mp4") == (tmp_path / "clip.mp4").resolve()
    (out / "studio").mkdir(parents=True)
    (out / "studio/t.txt").write_text("0 5\n0 -10\n0 0\n")
    assert studio.from_file(str(out / "studio/t.txt")).kind == "file"
    with pytest.raises(UserError, match="outside"):
        studio.check_path(tmp_path / "c.yml.unnamed")


def test_the_page_reads_only_videos_trajectories_and_configs_and_never_hidden_folders(setup):
    """Not `.git/config` (not even its line count, which loading it as a trajectory used to report), not a file of
    another kind: only the kinds it shows, in the project outside its hidden folders, or the work folder."""
    from inverse_dvs.config.paths import PROJECT_ROOT

    studio, cfg, out = setup
    for hidden in (PROJECT_ROOT / ".git/config", PROJECT_ROOT / ".venv/pyvenv.cfg", PROJECT_ROOT / ".git/x.txt"):
        with pytest.raises(UserError, match="outside the folders") as err:
            studio.from_file(str(hidden))
        assert "lines" not in str(err.value)
    with pytest.raises(UserError, match="not a trajectory file"):
        studio.from_file(str(PROJECT_ROOT / "pyproject.toml"))
    with pytest.raises(UserError, match="not a video file"):
        studio.open_video(str(PROJECT_ROOT / "README.md"))
    assert studio.check_path(PROJECT_ROOT / "trajectories/loop1.txt", "trajectory").name == "loop1.txt"
    assert studio.check_path(PROJECT_ROOT / "configs/tiny.yml", "config").name == "tiny.yml"
    (out / "x").mkdir(parents=True)
    with pytest.raises(UserError, match="not a video file"):
        studio.check_path(out / "x/meta.json", "video")


def test_files_the_page_shows_are_complete_and_never_change(setup):
    """The page is given its own files, named by their content and written once: a run replacing comparison.mp4,
    or the page showing one image twice, never rewrites a file a browser may be fetching."""
    studio, _, out = setup
    image = np.zeros((4, 6, 3), np.uint8)
    first = studio.still(image)
    stamp = first.stat().st_mtime_ns
    assert studio.still(image) == first and first.stat().st_mtime_ns == stamp  # not written again
    assert studio.still(image + 1) != first
    work = out / "results/x/demo/r/comparison.mp4"
    work.parent.mkdir(parents=True)
    work.write_bytes(b"version 1")
    shown = studio.snapshot(work)
    work.write_bytes(b"version 2, longer")  # a later run replaces it
    assert shown.read_bytes() == b"version 1" and studio.snapshot(work).read_bytes() == b"version 2, longer"
    assert not list(studio.view_dir.glob(".*partial*"))
    other = Studio(setup[1])
    folder = other.still(image).parent
    del other
    gc.collect()
    assert not folder.exists()  # a studio's files go with it


def test_saving_writes_a_trajectory_run_all_accepts_and_keeps_the_config(setup, capsys):
    studio, cfg, _ = setup
    studio.open_video("demo")
    before = cfg.read_text()
    saved = studio.save("beside", "demo", studio.preset("orbit_left+arc_up", 12), new_config=True)
    assert cfg.read_text() == before and saved.config_file == cfg.with_name("c.studio.yml")
    cfg.write_text(before.replace("\nrun:", "\nrun:     # a comment, and a line far past eighty columns " + "x" * 60)
                   .replace("  dtype: fp32", "  dtype: 'fp32'"))  # the user's own layout, which a save used to re-wrap
    before = cfg.read_text()
    saved = studio.save("mine", "demo", studio.keyframes([0, 3], [0, -9], [0, 0.02]))
    assert saved.config_file == cfg
    text = cfg.read_text()
    diff = [d for d in difflib.unified_diff(before.splitlines(), text.splitlines(), lineterm="", n=0)
            if d[:1] in "+-" and d[:3] not in ("+++", "---")]
    assert diff == ["+  mine: {file: trajectories/mine.txt}"]  # one line added, in the block's indentation
    assert saved.trajectory_file == cfg.parent / "trajectories/mine.txt"
    assert saved.trajectory_file.read_text().splitlines() == ["0 3", "0 -9", "0 0.02"]
    assert saved.command.endswith("--only-video demo --only-trajectory mine")
    assert preflight.main(["--config", str(cfg), "--only-trajectory", "mine"]) == 0
    # warp with the saved file gives the cameras the studio showed
    assert warp.main(["--config", str(cfg), "--quiet", "--only-trajectory", "mine"]) == 0
    cams = json.loads((cfg.parent / "out/results/mine/demo/cameras.json").read_text())
    assert np.array_equal(studio.cameras("demo", studio.keyframes([0, 3], [0, -9], [0, 0.02])),
                          np.asarray(cams["source_to_target"]))
    with pytest.raises(UserError, match="already in"):
        studio.save("mine", "demo", studio.preset("orbit_left", 5))
    with pytest.raises(UserError, match="not usable"):
        studio.save("../escape", "demo", studio.preset("orbit_left", 5))
    with pytest.raises(UserError, match="out of range"):
        studio.save("bad", "demo", studio.keyframes([0, 0], [0, 999], [0, 0]))


def test_a_run_shows_preflights_message_instead_of_starting(setup, tiny_checkpoints):
    studio, cfg, _ = setup
    studio.save("mine", "demo", studio.preset("orbit_left", 5))
    broken = Studio(cfg, ("inversion.model=/nowhere/CogVideoX",))
    with pytest.raises(UserError, match="weights of .*/nowhere/CogVideoX.* are not on this machine"):
        broken.start_run(cfg, "demo", "mine")
    assert not broken.runs and not (cfg.parent / "out/studio").exists()


@pytest.mark.slow
def test_a_run_started_here_is_run_all_and_ends_with_its_comparison(setup):
    studio, cfg, out = setup
    studio.save("mine", "demo", studio.preset("orbit_left", 5))
    key = studio.start_run(cfg, "demo", "mine")
    deadline = time.time() + 300
    while not (status := studio.run_status(key))["done"] and time.time() < deadline:
        time.sleep(1)
    assert status["done"] and status["returncode"] == 0, status["log"]
    assert status["stages"] == ["preflight", "depth", "warp", "caption", "invert", "infer"]
    assert status["comparison"] is not None and status["comparison"].is_file()
    assert status["comparison"].is_relative_to(out / "results/mine/demo")


def test_without_the_extra_the_package_imports_and_the_studio_says_how_to_get_it():
    import subprocess
    import sys

    hide = "import sys, runpy; sys.modules['gradio'] = None; import inverse_dvs, inverse_dvs.studio; "
    done = subprocess.run([sys.executable, "-c", hide + "runpy.run_module('inverse_dvs.studio', run_name='__main__')"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 2
    assert "gradio not installed" in done.stderr and "pip install -e '.[studio]'" in done.stderr
