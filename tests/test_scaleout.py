"""Sharding over processes (accelerate) and failure isolation."""

import json
import shutil
import subprocess
import sys

import pytest

from inverse_dvs import depth, infer, invert, warp
from tests.conftest import tiny_run_config, with_sections


def _config(tmp_path, videos, ckpt, extra=""):
    vids = ", ".join(f"{{path: {p}, name: {n}}}" for n, p in videos)
    own = f"""
depth: {{backend: depth_anything, model: {ckpt / 'tiny-depth-anything'}}}
inference: {{steps: [3], strength: [0.7], guidance_scale: [5.0], seeds: [1, 2, 3]}}
"""
    return tiny_run_config(tmp_path, ckpt, vids, with_sections(own, extra))


def test_one_corrupt_video_does_not_sink_the_run(tmp_path, tiny_checkpoints, demo_video, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x01 not an mp4" * 64)
    good2 = tmp_path / "second.mp4"
    shutil.copy(demo_video, good2)
    cfg = _config(tmp_path, [("first", demo_video), ("broken", bad), ("second", good2)], tiny_checkpoints)
    assert depth.main(["--config", cfg]) == 2  # non-zero: one item failed (bad input)
    err = capsys.readouterr().err
    assert "broken" in err and "is not a video file" in err
    summary = json.loads((tmp_path / "out/run_summary.json").read_text())["depth"]
    status = {i["item"]["video"]: i["status"] for i in summary["items"]}
    assert status == {"first": "done", "broken": "failed", "second": "done"}
    assert (tmp_path / "out/depths/first/depth.npz").is_file() and (tmp_path / "out/depths/second/depth.npz").is_file()
    # the next stage runs the good videos and reports the missing depth of the bad one
    assert warp.main(["--config", cfg, "--quiet"]) == 2
    assert (tmp_path / "out/results/left/second/render.mp4").is_file()
    # a rerun redoes only the failed item
    assert depth.main(["--config", cfg, "--quiet"]) == 2
    items = json.loads((tmp_path / "out/run_summary.json").read_text())["depth"]["items"]
    assert {i["item"]["video"]: i["status"] for i in items}["first"] == "skipped"


@pytest.mark.slow
def test_two_processes_split_items_and_match_single_process(tmp_path, tiny_checkpoints, demo_video):
    cfg = _config(tmp_path, [("demo", demo_video)], tiny_checkpoints,
                  "trajectories: {left: {preset: orbit_left, amount: 5}, up: {preset: arc_up, amount: 5}}")
    for s in (depth, warp, invert, infer):
        assert s.main(["--config", cfg, "--quiet"]) == 0
    out = tmp_path / "out"
    checks = (("invert", "inversions/*/*/*.safetensors", 2), ("infer", "results/*/*/*/output.mp4", 6))
    single = {stage: {p: p.read_bytes() for p in out.glob(pattern)} for stage, pattern, _ in checks}
    assert [len(single[stage]) for stage, _, _ in checks] == [n for _, _, n in checks]
    # one launch runs both model stages, as run_all.sh does with run.gpus > 1
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
           "29533", "-m", "inverse_dvs.chain", "invert", "infer", "--config", cfg, "--force", "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    summaries = json.loads((out / "run_summary.json").read_text())
    for stage, pattern, n in checks:
        summary = summaries[stage]
        assert summary["processes"] == 2
        by_proc = {0: set(), 1: set()}
        for item in summary["items"]:
            assert item["status"] == "done"
            by_proc[item["process"]].add(tuple(sorted(item["item"].items())))
        assert by_proc[0] and by_proc[1] and not by_proc[0] & by_proc[1]
        assert len(by_proc[0] | by_proc[1]) == len(summary["items"]) == n
        assert {p: p.read_bytes() for p in out.glob(pattern)} == single[stage]  # byte-identical to one process
