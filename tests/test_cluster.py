"""The Ray backend (`python -m inverse_dvs.cluster`, `run_all.sh --ray`) on a local Ray cluster with the tiny models,
and `--shard` (a Slurm array's slices). The Ray tests skip where Ray is not installed (`setup_env.sh --cluster`);
CI installs it and sets INVERSE_DVS_REQUIRE_RAY=1, so there they must run."""

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from inverse_dvs.config import Selection, load_config, select
from inverse_dvs.config.schema import parse_shard
from inverse_dvs.infra.errors import ConfigError
from tests.conftest import tiny_run_config, with_sections

ROOT = Path(__file__).resolve().parents[1]


# --shard ---------------------------------------------------------------------------------------------------------
def _config_of(tmp_path: Path, videos: int, trajectories: int):
    (tmp_path / "v.mp4").write_bytes(b"")
    vids = ", ".join(f"{{path: v.mp4, name: v{i}}}" for i in range(videos))
    trajs = ", ".join(f"t{i}: {{preset: orbit_left, amount: {i + 1}}}" for i in range(trajectories))
    (tmp_path / "c.yml").write_text(f"videos: [{vids}]\ntrajectories: {{{trajs}}}\n")
    return load_config(tmp_path / "c.yml")


@pytest.mark.parametrize("count", [1, 2, 3, 7, 9])
def test_shards_cover_every_item_exactly_once(tmp_path, count):
    cfg = _config_of(tmp_path, videos=7, trajectories=3)
    everything = {(t.name, v.name) for v in cfg.videos for t in cfg.trajectories}
    seen: list[tuple[str, str]] = []
    for index in range(count):
        videos, trajectories = select(cfg, Selection(shard=(index, count)))
        seen += [(t.name, v.name) for v in videos for t in trajectories]
    assert sorted(seen) == sorted(everything)  # every item, none twice
    assert select(cfg, Selection(shard=(1, 2)))[0] == select(cfg, Selection(shard=(1, 2)))[0]  # deterministic


def test_shards_apply_after_only_video_and_parse_from_slurm():
    assert parse_shard("2/5") == (2, 5)
    env = {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "8"}
    assert parse_shard("slurm", env) == (3, 8)
    for bad, words in (("5/5", "out of range"), ("1-3", "I/N"), ("0/0", "out of range")):
        with pytest.raises(ConfigError, match=words) as err:
            parse_shard(bad)
        assert "--shard" in str(err.value)
    with pytest.raises(ConfigError, match="SLURM_ARRAY_TASK_ID"):
        parse_shard("slurm", {})


def test_only_video_then_shard(tmp_path):
    cfg = _config_of(tmp_path, videos=5, trajectories=1)
    picked = Selection.parse("v1,v2,v4", None, "1/2")
    assert [v.name for v in select(cfg, picked)[0]] == ["v2"]


def test_a_bad_shard_on_the_command_line_is_exit_2_naming_the_option(tmp_path, capsys):
    from inverse_dvs import preflight

    cfg = _config_of(tmp_path, videos=2, trajectories=1)
    assert preflight.main(["--config", cfg.source, "--shard", "2/2"]) == 2
    assert "--shard 2/2" in capsys.readouterr().err


def test_context_parallel_is_refused_under_ray_before_joining_a_cluster(tmp_path, capsys):
    from inverse_dvs import cluster

    cfg = _config_of(tmp_path, videos=1, trajectories=1)
    assert cluster.main(["--config", cfg.source, "--address", "127.0.0.1:9", "--set", "run.gpus=[0, 1]",
                         "--set", "run.context_parallel.ulysses=2"]) == 2
    err = capsys.readouterr().err
    assert "run.context_parallel" in err and "run_all.sh" in err and "could not join" not in err


def test_pool_shares_follow_the_cluster_and_the_device(tmp_path):
    from inverse_dvs.cluster import shares
    from inverse_dvs.config import config_with

    cfg = _config_of(tmp_path, videos=1, trajectories=1)
    gpu = shares(cfg, 8.0)
    assert gpu["model"]["size"] == 8 and gpu["model"]["options"]["num_gpus"] == 1.0
    assert gpu["depth"]["options"]["num_gpus"] == 0.25 and gpu["warp"]["options"]["num_gpus"] == 0.0
    half = shares(config_with(cfg, {"cluster": {"model_gpus": 0.5}}), 8.0)
    assert half["model"]["size"] == 16
    cpu = shares(config_with(cfg, {"run": {"device": "cpu"}}), 8.0)
    assert all(p["options"]["num_gpus"] == 0 and p["device"] == "cpu" for p in cpu.values())
    assert cpu["model"]["size"] == 1 and shares(cfg, 0.0)["model"]["size"] == 1


# Ray -------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster for this module, started as the backend starts one (`cluster.connect`)."""
    try:
        import ray
    except ImportError:
        if os.environ.get("INVERSE_DVS_REQUIRE_RAY"):
            pytest.fail("Ray is not installed, but this run requires the Ray tests (bash setup_env.sh --cluster)")
        pytest.skip("Ray is not installed (bash setup_env.sh --cluster, or pip install -e '.[cluster]')")
    import logging

    from inverse_dvs.cluster import connect

    assert connect(None, logging.getLogger("test")) is True
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_checkpoints, demo_video):
    """One config, two videos: the demo clip and a copy whose depth file holds NaN (a bad input that preflight
    cannot see: the depth stage finds it). run_all.sh ran it into `alone/`."""
    tmp = tmp_path_factory.mktemp("cluster")
    for name in ("clip", "nan"):
        shutil.copy(demo_video, tmp / f"{name}.mp4")
    shutil.copy(demo_video.with_name("demo_depth.npz"), tmp / "clip_depth.npz")
    depth = np.load(demo_video.with_name("demo_depth.npz"))["depth"].copy()
    depth[3, :10] = np.nan
    np.savez(tmp / "nan_depth.npz", depth=depth)
    cfg = tiny_run_config(tmp, tiny_checkpoints, f"{{path: {tmp / 'clip.mp4'}, name: demo}}, "
                                                  f"{{path: {tmp / 'nan.mp4'}, name: nan}}")
    Path(cfg).write_text(with_sections(Path(cfg).read_text(), "cluster: {warp_workers: 1}\n"))
    alone = tmp / "alone"
    proc = subprocess.run(["bash", str(ROOT / "run_all.sh"), cfg, "--quiet", "--set", f"run.work_dir={alone}"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-3000:]  # the NaN depth is a bad input; the demo went through
    return tmp, cfg, alone


def _artifacts(work: Path) -> dict[str, bytes]:
    """Every computed file (not the records, logs or manifests, which hold times) by its path in the work folder."""
    return {str(p.relative_to(work)): p.read_bytes() for p in sorted(work.rglob("*"))
            if p.is_file() and p.parts[len(work.parts)] in ("depths", "results", "inversions", "prompts")
            and p.suffix != ".json"}


def _manifest(work: Path) -> list[dict]:
    return [json.loads(line) for line in (work / "manifest.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_ray_gives_run_all_bytes_reports_a_bad_video_and_a_rerun_computes_nothing(ray_cluster, runs):
    import pyarrow.parquet as pq

    from inverse_dvs.cluster import main

    tmp, cfg, alone = runs
    work = tmp / "ray"
    assert main(["--config", cfg, "--quiet", "--set", f"run.work_dir={work}"]) == 2  # only bad input failed
    mine, theirs = _artifacts(work), _artifacts(alone)
    assert any(k.endswith("output.mp4") for k in mine) and sorted(mine) == sorted(theirs)
    assert [k for k in mine if mine[k] != theirs[k]] == []  # byte-identical to run_all.sh
    rows = _manifest(work)
    bad = [r for r in rows if r["status"] == "failed"]
    assert [(r["stage"], r["video"]) for r in bad] == [("depth", "nan")] and bad[0]["bad_input"]
    assert "nan_depth.npz" in bad[0]["error"] or "NaN" in bad[0]["error"]
    outputs = [r for r in rows if r["stage"] == "infer"]
    assert len(outputs) == 1 and outputs[0]["status"] == "done" and outputs[0]["nfe"] > 0
    assert any(f.endswith("output.mp4") for f in outputs[0]["files"])
    table = pq.read_table(work / "manifest.parquet")
    assert table.num_rows == len(rows) and table.column("status").to_pylist() == [r["status"] for r in rows]
    summary = json.loads((work / "run_summary.json").read_text())
    assert summary["infer"]["backend"] == "ray" and summary["depth"]["failed"] == 1

    stamps = {p: p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file() and "logs" not in p.parts
              and not p.name.startswith("manifest") and p.name != "run_summary.json"}
    assert main(["--config", cfg, "--quiet", "--set", f"run.work_dir={work}"]) == 2
    again = _manifest(work)
    assert {r["status"] for r in again if r["video"] == "demo"} == {"skipped"}
    assert [p for p, t in stamps.items() if p.stat().st_mtime_ns != t] == []  # nothing rewritten


@pytest.mark.slow
def test_a_worker_killed_mid_item_is_retried_and_finishes_run_all_s_run_to_the_same_bytes(ray_cluster, runs):
    """A run of run_all.sh with its inversion and output removed, finished by the Ray backend while the model actor
    is killed (SIGKILL) in the middle of the inversion: a new actor tries the item again, and every byte is as
    run_all.sh made it."""
    from inverse_dvs.cluster import main

    tmp, cfg, alone = runs
    work = tmp / "killed"
    shutil.copytree(alone, work)
    run = next(p.parent for p in (work / "results/left/demo").glob("*/output.mp4"))
    shutil.rmtree(run)
    shutil.rmtree(work / "inversions/left/demo")
    lock = work / "inversions/left/demo/.lock"
    killed: list[int] = []

    def kill_the_holder() -> None:
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            try:
                pid = json.loads(lock.read_text())["pid"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.02)
                continue
            assert pid != os.getpid()  # an actor's process, never this one
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    watcher = threading.Thread(target=kill_the_holder, daemon=True)
    watcher.start()
    assert main(["--config", cfg, "--quiet", "--only-video", "demo", "--set", f"run.work_dir={work}"]) == 0
    watcher.join(timeout=5)
    assert len(killed) == 1
    invert = [r for r in _manifest(work) if r["stage"] == "invert"]
    assert len(invert) == 1 and invert[0]["status"] == "done" and invert[0]["attempts"] == 2
    assert str(killed[0]) not in invert[0]["worker"]
    mine, theirs = _artifacts(work), _artifacts(alone)
    demo = sorted(k for k in theirs if "/nan" not in k and not k.startswith("depths/nan"))
    assert sorted(mine) == demo and [k for k in demo if mine[k] != theirs[k]] == []


def test_a_shard_without_videos_ends_at_once_with_exit_0(tmp_path, capsys):
    from inverse_dvs import preflight

    cfg = _config_of(tmp_path, videos=1, trajectories=2)
    assert preflight.main(["--config", cfg.source, "--shard", "1/2", "--set", f"run.work_dir={tmp_path / 'w'}"]) == 0
    assert "shard 1/2 has no video" in capsys.readouterr().err


@pytest.mark.slow
def test_run_all_ray_passes_the_address_and_names_a_cluster_it_cannot_join(ray_cluster, runs):
    _, cfg, _ = runs
    proc = subprocess.run(["bash", str(ROOT / "run_all.sh"), cfg, "--ray=127.0.0.1:9", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "could not join the Ray cluster at '127.0.0.1:9'" in proc.stderr


def test_the_backend_called_in_process_leaves_no_run_id_behind(tmp_path):
    """main() sets this run's id for its own call only: a later run in the same process (or a child of it) is a new
    run, not this one."""
    from inverse_dvs.cluster import main

    cfg = _config_of(tmp_path, videos=1, trajectories=1)
    before = os.environ.pop("INVERSE_DVS_RUN_ID", None)
    try:
        main(["--config", cfg.source, "--shard", "1/2", "--address", "127.0.0.1:9", "--quiet", "--set",
              f"run.work_dir={tmp_path / 'w'}"])
        assert "INVERSE_DVS_RUN_ID" not in os.environ
    finally:
        if before is not None:
            os.environ["INVERSE_DVS_RUN_ID"] = before
