"""Robustness: stale inputs refused at every stage boundary, failure isolation through run_all.sh, item locks,
stale partial files, preflight, and bad-input messages."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inverse_dvs import depth, infer, invert, warp
from inverse_dvs.infra.artifacts import host_name
from tests.conftest import tiny_run_config

ROOT = Path(__file__).resolve().parents[1]


_config = tiny_run_config


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_inputs_are_refused_at_every_stage_boundary(tmp_path, tiny_checkpoints, demo_video, capsys):
    cfg = _config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo, prompt: a ball}}")
    args = ["--config", cfg, "--quiet"]
    for stage in (depth, warp, invert):
        assert stage.main(args) == 0
    capsys.readouterr()
    out = tmp_path / "out"

    # depth → warp: a failed recompute removes the record but leaves the old depth.npz; warp must not use it
    broken_depth = ["--set", "depth.backend=npz", "--set", f"depth.npz_path={tmp_path}/none.npz"]
    assert depth.main([*args, *broken_depth]) == 2
    assert (out / "depths/demo/depth.npz").is_file() and not (out / "depths/demo/meta.json").exists()
    assert warp.main([*args, *broken_depth, "--force"]) == 2
    err = capsys.readouterr().err
    assert "no finished depth record" in err and "python -m inverse_dvs.depth" in err
    assert depth.main(args) == 0

    # warp → invert: a warp setting changed but warp not rerun
    assert invert.main([*args, "--set", "warp.edge_tolerance=0.1"]) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "warp.edge_tolerance" in err and "python -m inverse_dvs.warp" in err

    # warp → invert: the render replaced behind the record's back
    render = out / "results/left/demo/render.npz"
    saved = render.read_bytes()
    render.write_bytes(saved[:-10] + b"0123456789")
    assert invert.main([*args, "--force"]) == 2
    assert "not the file its warp record describes" in capsys.readouterr().err
    render.write_bytes(saved)

    # invert → infer: an inversion setting changed but invert not rerun
    assert infer.main([*args, "--set", "inversion.posterior=sample"]) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "inversion.posterior" in err and "python -m inverse_dvs.invert" in err

    # depth → infer (through the chain): the video file changed since depth ran
    other = tmp_path / "other.mp4"
    other.write_bytes(Path(demo_video).read_bytes() + b"\x00")
    assert infer.main([*args, "--set", f"videos=[{{path: {other}, name: demo, prompt: a ball}}]"]) == 2
    err = capsys.readouterr().err
    assert "the video the depth results" in err and "has changed since" in err
    assert infer.main(args) == 0  # everything consistent again
    assert list((out / "results/left/demo").glob("*/output.mp4"))


@pytest.mark.slow
def test_one_bad_video_never_blocks_the_good_one(tmp_path, tiny_checkpoints, demo_video):
    """run_all.sh from another folder, config path relative to the caller, --quiet: the good video goes through all
    four stages; the run exits non-zero and its summary names the bad one, once."""
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00garbage" * 64)  # an MP4 header, then nothing decodable
    shutil.copy(demo_video.with_name("demo_depth.npz"), tmp_path / "broken_depth.npz")
    cfg = _config(tmp_path, tiny_checkpoints,
                  f"{{path: {demo_video}, name: good, prompt: a ball}}, {{path: broken.mp4, name: broken, prompt: x}}")
    caller = tmp_path / "elsewhere"
    caller.mkdir()
    # the config's work_dir is overridden on the command line: preflight, stages and summary must all follow it
    Path(cfg).write_text(Path(cfg).read_text().replace(str(tmp_path / "out"), str(tmp_path / "unused")))
    shutil.copy(cfg, caller / "c.yml")
    shutil.copy(bad, caller / "broken.mp4")
    shutil.copy(tmp_path / "broken_depth.npz", caller / "broken_depth.npz")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = ["bash", str(ROOT / "run_all.sh"), "c.yml", "--quiet", "--set", f"run.work_dir={tmp_path / 'out'}"]
    r = subprocess.run(cmd, cwd=caller, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 2, r.stdout[-3000:] + r.stderr[-3000:]
    assert (tmp_path / "out/results/left/good").is_dir()
    assert list((tmp_path / "out/results/left/good").glob("*/output.mp4"))
    assert "FAILED: 1 item(s)" in r.stdout and "video=broken" in r.stdout and "corrupt or truncated" in r.stdout
    assert "%|" not in r.stderr and "Token indices" not in r.stderr  # --quiet: no progress bars, no per-item noise
    summary = json.loads((tmp_path / "out/run_summary.json").read_text())
    assert [i["item"] for i in summary["preflight"]["items"]] == [{"video": "broken"}]
    # the summary: one wall-time column for every step, the items of this run per stage (the failed one counted, not
    # shown as 0 s), result paths absolute
    wall = [ln for ln in r.stdout.split("== inverse-dvs run summary ==")[1].split("\n\n")[0].splitlines() if ln]
    assert len({len(line) for line in wall}) == 1 and any("invert infer" in line for line in wall)  # aligned
    assert "depth     -                         " in r.stdout and "1 done, 1 failed" in r.stdout
    assert f"  {tmp_path / 'out/results/left/good'}/" in r.stdout


def test_missing_video_model_weights_stop_before_anything_is_written(tmp_path, tiny_checkpoints, demo_video):
    cfg = _config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo}}",
                  "model: {lora: nobody/no-such-lora, lora_weight_name: x.safetensors}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "INVERSE_DVS_CHECKPOINTS": str(tmp_path / "ckpt")}
    r = subprocess.run(["bash", str(ROOT / "run_all.sh"), cfg], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 2
    assert "model.lora = nobody/no-such-lora" in r.stderr and "inverse_dvs.weights download" in r.stderr
    assert not (tmp_path / "out").exists()  # preflight stopped it before the depth stage wrote anything


def _holder(script: str) -> subprocess.Popen:
    """Another process: runs `script` (with os and time imported); reaped when it ends, since a zombie's pid is
    alive to `os.kill(pid, 0)`."""
    import threading

    proc = subprocess.Popen([sys.executable, "-c", f"import os, time\n{script}"])
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc


def _lock(folder: Path, pid: int) -> None:
    (folder / ".lock").write_text(json.dumps({"pid": pid, "host": host_name(), "started": "now"}))


def test_a_stage_waits_for_items_another_process_holds_and_never_fails_them(tmp_path, tiny_checkpoints, demo_video,
                                                                           capsys):
    """Another process holding an item, or the input it needs, is "in progress elsewhere": the stage goes on, waits
    for it before it ends and tries it again (up to date by then, or taken over when the holder died); exit 0."""
    cfg = _config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo}}")
    ddir = tmp_path / "out/depths/demo"
    assert depth.main(["--config", cfg, "--quiet"]) == 0
    capsys.readouterr()
    # the depth's record is not written yet and another process holds the folder: it finishes it 2 s later
    (ddir / "meta.json").rename(ddir / "meta.later")
    holder = _holder(f"time.sleep(2); os.replace({str(ddir / 'meta.later')!r}, {str(ddir / 'meta.json')!r}); "
                     f"os.remove({str(ddir / '.lock')!r})")
    _lock(ddir, holder.pid)
    assert warp.main(["--config", cfg]) == 0  # waited, then warped
    holder.wait()
    err = capsys.readouterr().err
    assert "waiting" in err and f"pid {holder.pid}" in err and "failed" not in err
    assert json.loads((tmp_path / "out/run_summary.json").read_text())["warp"]["items"][0]["status"] == "done"
    # so the next stage finds its input: when warp only skipped the busy item, invert failed here with "no finished
    # warp record", exit 2, for an item another run was still making
    assert invert.main(["--config", cfg, "--quiet"]) == 0
    # a holder that dies without releasing: its lock is taken over once it is dead, and the item is up to date
    holder = _holder("time.sleep(1.5)")
    _lock(ddir, holder.pid)
    assert depth.main(["--config", cfg]) == 0
    err = capsys.readouterr().err
    assert "in progress in another process" in err and f"pid {holder.pid}" in err
    assert json.loads((tmp_path / "out/run_summary.json").read_text())["depth"]["items"][0]["status"] == "skipped"
    assert not (ddir / ".lock").exists()
    holder.wait()


def test_partial_files_of_dead_processes_are_removed(tmp_path, tiny_checkpoints, demo_video):
    cfg = _config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo}}")
    folder = tmp_path / "out/depths/demo"
    folder.mkdir(parents=True)
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # still writing its file
    try:
        dead = folder / f".depth.partial-{host_name()}-{_dead_pid()}.npz"
        alive = folder / f".depth.partial-{host_name()}-{writer.pid}.mp4"
        elsewhere = folder / f".depth.partial-otherhost-{_dead_pid()}.npz"  # another host, recent: kept
        for p in (dead, alive, elsewhere):
            p.write_bytes(b"half")
        assert depth.main(["--config", cfg, "--quiet"]) == 0
        assert not dead.exists() and alive.exists() and elsewhere.exists()
        os.utime(elsewhere, (0, 0))  # a day old and more: abandoned
        assert depth.main(["--config", cfg, "--quiet", "--force"]) == 0
        assert not elsewhere.exists() and alive.exists()
    finally:
        writer.kill()
        writer.wait()


def test_preflight_reports_every_problem_up_front(tmp_path, tiny_checkpoints, demo_video, capsys):
    from inverse_dvs import preflight

    (tmp_path / "far.txt").write_text("0 400\n0 0\n0 0\n")
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("not a video")
    cfg = _config(tmp_path, tiny_checkpoints,
                  f"{{path: {demo_video}, name: good, prompt: a}}, {{path: empty.mp4, name: empty}}, "
                  f"{{path: notes.mp4, name: notes}}, {{path: gone.mp4, name: gone}}",
                  "trajectories: {left: {preset: orbit_left, amount: 5}, far: {file: far.txt}}")
    assert preflight.main(["--config", cfg]) == 0  # one healthy item remains
    err = capsys.readouterr().err
    assert "empty file (0 bytes)" in err and "is not a video file" in err and "does not exist" in err
    assert "θ (elevation) keyframe 400°" in err and "out of range" in err
    assert not (tmp_path / "out/depths").exists()
    assert preflight.main(["--config", cfg, "--only-video", "nosuch"]) == 2
    assert "no video named 'nosuch' in the config (have: good, empty, notes, gone)" in capsys.readouterr().err


def test_reinterpreted_input_is_said(tmp_path, demo_video, caplog):
    from inverse_dvs.infra.video_io import FrameSelection, read_clip

    with caplog.at_level(logging.INFO, logger="t"):
        read_clip(demo_video, FrameSelection(49, stride=2, pad_short=True), (96, 96), "crop", logging.getLogger("t"))
    assert "of its width is cropped" in caplog.text and "repeated 24 time(s)" in caplog.text
    assert "is 96×144 (height × width" in caplog.text  # sizes read height × width, labelled, in every message


def test_preflight_warns_of_an_upscale_and_of_outputs_at_another_frame_rate(tmp_path, tiny_checkpoints, demo_video,
                                                                            capsys):
    """A source smaller than the model's size is scaled up, and `inference.fps` unlike the source's changes how fast
    the output plays: both are said before any work, with the numbers; neither is said when it does not happen."""
    from inverse_dvs import preflight
    from inverse_dvs.config import load_config
    from inverse_dvs.infra.video_io import write_video

    small = tmp_path / "small.mp4"
    write_video(small, np.full((49, 48, 72, 3), 128, np.uint8), 8.0)
    cfg = _config(tmp_path, tiny_checkpoints, f"{{path: {small}, name: small, prompt: a}}",
                  "inference: {steps: [3], strength: [0.7], fps: 30}\n"
                  f"depth: {{backend: depth_anything, model: {tiny_checkpoints / 'tiny-depth-anything'}}}")
    assert preflight.main(["--config", cfg]) == 0
    err = capsys.readouterr().err
    assert "video 'small' is 48×72 (height × width) and is scaled up to 96×144" in err and "4.0× its pixels" in err
    assert "plays at 8 fps, but inference.fps is 30: its outputs play 3.75× as fast, 6.1 s of video in 1.6 s" in err
    cfg = _config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo, prompt: a}}")
    assert preflight.main(["--config", cfg]) == 0
    err = capsys.readouterr().err
    assert "scaled up" not in err and "inference.fps" not in err
    # the official method keeps the source's rate (it is a container setting); 30 fps is one key away
    root = Path(__file__).resolve().parents[1]
    for name in ("configs/reconstruction.yml", "configs/reference.yml", "config.yml"):
        assert load_config(root / name).inference.fps is None, name


@pytest.mark.parametrize("disp, words", [
    (np.zeros((49, 96, 144)), ["constant zero in every frame"]),
    (np.full((49, 96, 144), 3.0), ["constant in every frame"]),
])
def test_constant_disparity_is_refused(tmp_path, tiny_checkpoints, demo_video, capsys, disp, words):
    src = tmp_path / "d.npz"
    np.savez(src, depths=disp)
    cfg = _config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo}}",
                  f"depth: {{backend: npz, npz_path: '{src}', npz_kind: disparity}}")
    assert depth.main(["--config", cfg, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err


def test_nan_and_flat_frames_of_imported_disparity_are_repaired_on_request(tmp_path, tiny_checkpoints, demo_video):
    with np.load(demo_video.with_name("demo_depth.npz")) as z:
        disp = 1.0 / z["depth"]
    disp[3, 10, 10] = np.nan
    disp[7] = 0.5
    src = tmp_path / "d.npz"
    np.savez(src, depths=disp)
    cfg = _config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo}}",
                  f"depth: {{backend: npz, npz_path: '{src}', npz_kind: disparity}}")
    assert depth.main(["--config", cfg, "--quiet"]) == 2
    assert depth.main(["--config", cfg, "--quiet", "--set", "depth.repair_invalid=true"]) == 0
    with np.load(tmp_path / "out/depths/demo/depth.npz") as z:
        d = z["depth"]
    assert np.isfinite(d).all() and (d > 0).all() and d[7].std() > 0


def test_run_all_command_line():
    r = subprocess.run(["bash", str(ROOT / "run_all.sh"), "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "Usage: bash run_all.sh [CONFIG] [options]" in r.stdout
    r = subprocess.run(["bash", str(ROOT / "run_all.sh"), "--bogus"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "unknown option '--bogus'" in r.stderr
    r = subprocess.run(["bash", str(ROOT / "run_all.sh"), "a.yml", "b.yml"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "more than one config" in r.stderr


def test_a_frame_with_nothing_visible_is_an_error_at_warp(tmp_path, tiny_checkpoints, demo_video, caplog):
    """A camera that turns away from everything the source saw: the warp stops with the frames and the fix; hardly
    visible frames are warned about."""
    from inverse_dvs import InverseDVSPipeline
    from inverse_dvs.infra.errors import UserError
    from inverse_dvs.pipeline import visibility_report

    frac = np.full(49, 0.9)
    frac[[30, 31]] = 0.0
    _, error = visibility_report(frac, 0.5, "trajectory 't', video 'v'")
    assert re.search(r"frame\(s\) 30, 31 are fully occluded.*smaller angles or radius", error)
    frac[[30, 31]] = 0.2
    warnings, error = visibility_report(frac, 0.5, "trajectory 't', video 'v'")
    assert error is None and "2 frame(s) less than 50% visible" in warnings[0]
    pipe = InverseDVSPipeline.from_config(tiny_run_config(tmp_path, tiny_checkpoints, f"{{path: '{demo_video}'}}"))
    frames = np.full((49, 96, 144, 3), 128, np.uint8)
    depth = np.full((49, 96, 144), 2.0, np.float32)
    turned = np.tile(np.eye(4), (49, 1, 1))
    turned[1:, :3, :3] = np.diag([-1.0, 1.0, -1.0])  # the camera looks backwards from frame 1 on
    with pytest.raises(UserError, match=r"frame\(s\) 1, 2, 3.* are fully occluded"):
        pipe.warp(frames, depth, turned)
    with caplog.at_level(logging.WARNING, logger="inverse_dvs"):
        out = pipe.warp(frames, depth, {"preset": "orbit_left", "amount": 75})
    assert out.warnings and all(w in caplog.text for w in out.warnings)


def _flip(path: Path, at: float = 0.9) -> None:
    """Damage a file in place: one byte flipped at `at` of its length (the size stays, the header of an npz or
    safetensors file near its start stays intact)."""
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.slow
def test_a_damaged_artifact_is_computed_again_or_refused_never_used(tmp_path, tiny_checkpoints, demo_video, capsys):
    """A byte flipped in place in each kind of artifact — depth, render, masks, inversion (tensor bytes, header
    intact), output — is never reused: its own stage computes it again, the stages after it refuse it until then,
    and every artifact ends byte-identical to the undamaged run."""
    cfg = _config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo, prompt: a ball}}")
    args = ["--config", cfg, "--quiet"]
    stages = (depth, warp, invert, infer)
    for s in stages:
        assert s.main(args) == 0
    out = tmp_path / "out"
    files = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix in (
        ".npz", ".safetensors", ".mp4")}
    victims = ["depths/demo/depth.npz", "results/left/demo/render.npz", "results/left/demo/masks.npz",
               "inversions/left/demo/inversion_t0666.safetensors",
               next(str(p.relative_to(out)) for p in out.rglob("output.mp4"))]
    for victim in victims:
        _flip(out / victim)
        nxt = stages[["depths", "results", "results", "inversions", "results"].index(victim.split("/")[0]) + 1:]
        nxt = nxt if "output" not in victim else ()
        if nxt:  # the next stage refuses the damaged file (exit 2), and makes nothing from it
            assert nxt[0].main(args) == 2, victim
        capsys.readouterr()
        for s in stages:  # its own stage sees the damage and computes the file again
            assert s.main(args) == 0, victim
        assert "changed since it was made" in capsys.readouterr().err, victim
        now = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix in (
            ".npz", ".safetensors", ".mp4")}
        assert now == files, victim
    # --force recomputes the inversion instead of reusing a file whose header still matches
    _flip(out / victims[3])
    assert invert.main([*args, "--force"]) == 0
    assert (out / victims[3]).read_bytes() == files[Path(victims[3])]


def test_preflight_refuses_what_the_config_alone_decides(tmp_path, tiny_checkpoints, demo_video, capsys):
    """The model's size and frame count (from its own config files) and a work folder that cannot be written are
    caught before any stage runs, with the key and the fix."""
    from inverse_dvs import preflight

    cfg = _config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo, prompt: a}}")
    assert preflight.main(["--config", cfg, "--set", "camera.num_frames=21"]) == 2
    err = capsys.readouterr().err
    assert "'camera.num_frames'" in err and "takes 49" in err  # refused as the config loads
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert preflight.main(["--config", cfg, "--set", f"run.work_dir={blocker}/out"]) == 2
    assert "run.work_dir" in capsys.readouterr().err
    if os.geteuid() != 0:  # root writes anywhere: a read-only folder is only read-only to others
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        assert preflight.main(["--config", cfg, "--set", f"run.work_dir={ro}/out"]) == 2
        assert "run.work_dir" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_input_paths_say_what_they_are(tmp_path, demo_video, caplog):
    from inverse_dvs.infra.errors import UserError
    from inverse_dvs.infra.trajectories import read_pose_json
    from inverse_dvs.infra.video_io import FrameSelection, probe_video, read_clip, write_video

    (tmp_path / "clips.mp4").mkdir()
    (tmp_path / "loop.mp4").symlink_to(tmp_path / "loop.mp4")
    for name, words in (("clips.mp4", "is a folder"), ("loop.mp4", "loops back on itself"), ("gone.mp4", "does not")):
        with pytest.raises(UserError, match=words):
            probe_video(tmp_path / name)
    with pytest.raises(UserError, match="pose file .* does not exist"):
        read_pose_json(tmp_path / "poses.json", 49)
    # a variable frame rate: read by index, with a note
    frames = np.zeros((60, 96, 144, 3), np.uint8)
    cfr = tmp_path / "cfr.mp4"
    write_video(cfr, frames, 30.0)
    assert not probe_video(cfr).variable_rate
    import imageio_ffmpeg

    vfr = tmp_path / "vfr.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=144x96:rate=30", "-frames:v", "60", "-vf",
                    "setpts='if(lt(N,30),N,30+(N-30)*3)/(30*TB)'", "-fps_mode", "passthrough", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(vfr)], check=True)
    assert probe_video(vfr).variable_rate
    with caplog.at_level(logging.INFO, logger="test"):
        clip = read_clip(vfr, FrameSelection(49), (96, 144), "crop", logging.getLogger("test"))
    assert clip.frames.shape == (49, 96, 144, 3) and "variable frame rate" in caplog.text


def test_a_unicode_file_name_runs_and_an_empty_prompt_file_is_said(tmp_path, tiny_checkpoints, demo_video, capsys):
    from inverse_dvs import preflight

    video = tmp_path / "my clip ü 日本.mp4"
    shutil.copy(demo_video, video)
    shutil.copy(demo_video.with_name("demo_depth.npz"), tmp_path / "my clip ü 日本_depth.npz")
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "my_clip_ü_日本.txt").write_text("  \n", encoding="utf-8")
    cfg = _config(tmp_path, tiny_checkpoints, f"{{path: '{video}'}}")
    assert preflight.main(["--config", cfg]) == 0
    assert "is empty, so it gives no prompt" in capsys.readouterr().err
    assert depth.main(["--config", cfg, "--quiet"]) == 0 and warp.main(["--config", cfg, "--quiet"]) == 0
    assert (tmp_path / "out/results/left/my_clip_ü_日本/render.npz").is_file()


def test_an_interrupted_item_leaves_no_empty_folder(tmp_path):
    from inverse_dvs.runner.workqueue import Item, StageRunner

    runner = StageRunner("infer", tmp_path, False, logging.getLogger("test"))

    def interrupted(folder):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run(Item(video="b", trajectory="a", run="c"), tmp_path / "results/a/b/c", {}, dict, interrupted)
    assert not (tmp_path / "results/a/b/c").exists()


@pytest.mark.slow
def test_run_all_names_the_stage_a_killed_worker_was_in(tmp_path, tiny_checkpoints, demo_video):
    """A worker killed during invert (the invert + infer process) is reported as killed in invert, with nothing to
    fix (resuming after a kill is the item records' job: test_a_damaged_artifact…, test_end_to_end)."""
    import signal
    import time

    cfg = _config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo, prompt: a}}",
                  f"inversion: {{model: {tiny_checkpoints / 'tiny-cogvideox-i2v'}, steps: 8}}")  # long enough (the load
    # included) to be caught holding its lock
    proc = subprocess.Popen(["bash", str(ROOT / "run_all.sh"), cfg, "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "out/inversions/left/demo/.lock"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        try:
            holder = json.loads(lock.read_text())
            break
        except (OSError, ValueError):
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the invert stage never took its lock")
    os.kill(holder["pid"], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "stage 'invert' was killed (signal 9)" in err and "stage 'infer'" not in err
    assert not (tmp_path / "out/inversions/left/demo/meta.json").exists()  # nothing half-made looks done


def test_a_full_disk_stops_the_stage_naming_the_folder_the_free_space_and_the_fix(tmp_path, tiny_checkpoints,
                                                                                  demo_video, capsys, monkeypatch):
    """ENOSPC while an item writes (a partial file on disk): exit 2 with one paragraph, no traceback, no later item
    tried, nothing half-written left; the same on a write outside any item (the summary); the rerun resumes."""
    import errno

    from inverse_dvs.runner import workqueue

    cfg = _config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo, prompt: a ball}}",
                  "trajectories: {left: {preset: orbit_left, amount: 5}, right: {preset: orbit_right, amount: 5}}")
    assert depth.main(["--config", cfg, "--quiet"]) == 0
    depth_files = {p: p.read_bytes() for p in (tmp_path / "out/depths").rglob("*") if p.is_file()}
    real = np.savez_compressed
    tries = []

    def full(fh, **arrays):
        tries.append(Path(fh.name).parent)
        fh.write(b"half an archive")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full)
    assert warp.main(["--config", cfg, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "the disk is full: writing to" in err and str(tmp_path / "out") in err and " free of " in err
    assert "run.work_dir" in err and "rerun the same command to resume" in err and "Traceback" not in err
    assert len(set(tries)) == 1  # one item tried (its two files): the stage stopped, the next would not fit either
    assert not [p for p in (tmp_path / "out").rglob("*partial*")]
    assert {p: p.read_bytes() for p in (tmp_path / "out/depths").rglob("*") if p.is_file()} == depth_files

    monkeypatch.setattr(np, "savez_compressed", real)

    def summary_full(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(workqueue, "write_json", summary_full)  # every item fits, the run's summary does not
    assert warp.main(["--config", cfg, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "the disk is full: writing to" in err and "logs" in err and "Traceback" not in err
    monkeypatch.undo()
    assert warp.main(["--config", cfg]) == 0
    assert "up to date" in capsys.readouterr().err  # the items written before the summary failed are kept
