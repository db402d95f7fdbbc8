"""Context parallel (`run.context_parallel`): one item's transformer split over several processes. Two (or four) CPU
processes over gloo, on both tiny backbones: the split transformer call equals the unsplit one to fp32 rounding
(Ulysses exactly, ring through a test kernel that returns the log-sum-exp: cp_worker.py), a whole tiny output
through run_all.sh equals the single-process one byte for byte, and degrees that cannot run exit 2 at preflight."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from inverse_dvs.core.backbone import detect
from inverse_dvs.models.context_parallel import degree_problem, token_problem
from tests.core.test_backbone import SCHEDULER, TRANSFORMER_5B, TRANSFORMER_15, VAE_5B, VAE_15

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("cp_worker.py")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_token_counts_of_the_real_models_and_the_degrees_they_allow():
    heads = {"num_attention_heads": 48, "max_text_seq_length": 226}
    five = detect(TRANSFORMER_5B | heads, VAE_5B, SCHEDULER)
    one5 = detect(TRANSFORMER_15 | heads, VAE_15, SCHEDULER)
    assert five.tokens(49, 480, 720) == 226 + 13 * 30 * 45 == 17776
    assert one5.tokens(81, 768, 1360) == 226 + 11 * 48 * 85 == 45106  # 21 latent frames padded to 22, in pairs
    assert all(token_problem(u, r, 17776, 48) is None for u, r in ((2, 1), (4, 1), (8, 1), (2, 4), (1, 8)))
    assert token_problem(8, 1, 45106, 48) is None  # Ulysses alone: parts of 5639 and 5638 tokens
    problem = token_problem(1, 4, 45106, 48, "video 'a' at 81×768×1360")  # ring: equal parts only
    assert "run.context_parallel" in problem and "45106" in problem and "video 'a'" in problem
    assert "these degrees divide the tokens: 2" in problem
    assert "heads do not divide by ulysses 5" in token_problem(5, 1, 17776, 48)
    assert token_problem(1, 1, 17777, 48) is None
    assert degree_problem(2, 2, 8) is None and degree_problem(1, 1, 1) is None
    assert "run.gpus" in degree_problem(2, 1, 3) and "one process" in degree_problem(2, 1, 1)


def _split_call(tmp_path, model: str, ulysses: int, ring: int, tiny_checkpoints, hw=(12, 18)) -> dict:
    out = tmp_path / f"{model}-{ulysses}-{ring}.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ulysses * ring),
           "--master_port", str(_port()), str(WORKER), str(tiny_checkpoints / model), str(ulysses), str(ring),
           str(out), *map(str, hw)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT,
                       env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tiny-cogvideox-i2v", "tiny-cogvideox15-i2v"])
@pytest.mark.parametrize(("ulysses", "ring"), [(2, 1), (1, 2)])
def test_the_split_transformer_call_equals_the_whole_one(tmp_path, tiny_checkpoints, model, ulysses, ring):
    got = _split_call(tmp_path, model, ulysses, ring, tiny_checkpoints)
    assert got["processes"] == 2 and got["part"] == [got["tokens"] // 2]  # the leader's attention saw half
    assert got["max_abs"] <= 1e-5 * max(1.0, got["scale"]), got


@pytest.mark.slow
def test_ulysses_splits_an_odd_token_count_into_unequal_parts(tmp_path, tiny_checkpoints):
    got = _split_call(tmp_path, "tiny-cogvideox15-i2v", 2, 1, tiny_checkpoints, hw=(10, 18))  # 16 + 7·5·9 = 331
    assert got["tokens"] == 331 and got["part"] == [166]  # and 165 on the other process
    assert got["max_abs"] <= 1e-5 * max(1.0, got["scale"]), got


@pytest.mark.slow
def test_ulysses_and_ring_together_over_four_processes(tmp_path, tiny_checkpoints):
    got = _split_call(tmp_path, "tiny-cogvideox15-i2v", 2, 2, tiny_checkpoints, hw=(12, 20))  # 436 tokens: 4 parts
    assert got["processes"] == 4 and got["part"] == [got["tokens"] // 4]
    assert got["max_abs"] <= 1e-5 * max(1.0, got["scale"]), got


def _run_all(config: Path, work: Path, *sets: str) -> subprocess.CompletedProcess:
    args = ["bash", str(ROOT / "run_all.sh"), str(config), "--only-trajectory", "orbit", "--set",
            f"run.work_dir={work}", "--set", "inference.guidance_scale=[4.0]", "--set", "inference.seeds=[1]"]
    for s in sets:
        args += ["--set", s]
    return subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=os.environ | {"OMP_NUM_THREADS": "1"})


@pytest.fixture
def tiny_config(tmp_path, tiny_checkpoints, demo_video) -> Path:
    """configs/tiny.yml on this session's tiny checkpoints and demo clip."""
    text = (ROOT / "configs/tiny.yml").read_text()
    text = text.replace("checkpoints/", f"{tiny_checkpoints}/").replace("data/demo.mp4", str(demo_video))
    config = tmp_path / "tiny.yml"
    config.write_text(text)
    shutil.copytree(ROOT / "trajectories", tmp_path / "trajectories")
    return config


@pytest.mark.slow
def test_a_whole_output_through_run_all_equals_the_single_process_one(tmp_path, tiny_config):
    one = _run_all(tiny_config, tmp_path / "one")
    assert one.returncode == 0, one.stderr[-3000:]
    two = _run_all(tiny_config, tmp_path / "two", "run.gpus=[0, 1]", "run.context_parallel.ulysses=2")
    assert two.returncode == 0, two.stderr[-3000:]
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").glob("**/*")
                   if p.suffix in (".safetensors", ".mp4", ".npz"))
    assert any(p.name == "output.mp4" for p in files) and any(p.suffix == ".safetensors" for p in files)
    for p in files:
        assert (tmp_path / "two" / p).read_bytes() == (tmp_path / "one" / p).read_bytes(), p
    for meta in [*(tmp_path / "two").glob("inversions/*/*/meta.json"),
                 *(tmp_path / "two").glob("results/*/*/*/meta.json")]:
        record = json.loads(meta.read_text())
        assert record["context_parallel"] == {"ulysses": 2, "ring": 1, "processes": 2}, meta
        assert record["attention_backend"] == "native"
    summary = json.loads((tmp_path / "two/run_summary.json").read_text())
    assert [i["status"] for i in summary["infer"]["items"]] == ["done"]  # one group: one process's records
    assert (summary["infer"]["processes"], summary["infer"]["groups"], summary["infer"]["processes_per_item"]) == (
        2, 1, 2)


@pytest.mark.parametrize(("sets", "says"), [
    (["run.gpus=[0, 1, 2]", "run.context_parallel.ulysses=2"], "List a multiple of 2 GPUs"),
    (["run.context_parallel.ulysses=2"], "run.gpus is null"),
    (["run.gpus=[0, 1, 2, 3]", "run.context_parallel.ulysses=4"], "2 attention heads do not divide by ulysses 4"),
    (["run.gpus=[0, 1]", "run.context_parallel.ring=2"], "needs a CUDA device"),
    (["run.gpus=[0, 1]", "run.context_parallel.ulysses=2", "inference.cache=pab"], "inference.cache"),
])
def test_degrees_that_cannot_run_exit_2_at_preflight(tmp_path, tiny_config, capsys, sets, says):
    from inverse_dvs import preflight

    argv = ["--config", str(tiny_config), "--set", f"run.work_dir={tmp_path / 'out'}"]
    for s in sets:
        argv += ["--set", s]
    assert preflight.main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and "run.context_parallel" in err
