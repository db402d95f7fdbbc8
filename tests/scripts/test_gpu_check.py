"""Tests of scripts.gpu_check."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from inverse_dvs.core.ddim import sampling_schedule

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_cpu_mode_fills_its_table(tmp_path):
    r = subprocess.run(["bash", "scripts/gpu_check.sh", "--cpu"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600, env={**os.environ, "OUT": str(tmp_path)})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    table = (tmp_path / "gpu_check.md").read_text()
    assert table in r.stdout  # printed and written
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    for label in ("transformer pass, eager, batch 1 / 2", "transformer pass, compiled, batch 1 / 2",
                  "compile warm-up (batch 1 and 2)", "one output, paper settings, compiled, exact",
                  "one output, compiled + `inference.cache: faster`"):
        assert label in rows and "error" not in rows[label] and "skipped" not in rows[label], label
    # paper settings through the stages' own functions: 30 inversion passes + 2 × (50 steps × 0.95) CFG passes
    nfe = 30 + 2 * len(sampling_schedule(50, 0.95).timesteps)
    assert f"= {nfe}" in rows["one output, paper settings, compiled, exact"]
    for model in ("5b", "1.5"):  # the attention backends side by side, the stock one first
        label = f"attention backends, one pass at batch 2, {model} (Δ: largest difference from `auto`)"
        assert "`auto` " in rows[label] and "`native` " in rows[label] and "error" not in rows[label], rows[label]
    slm = next(line for label, line in rows.items() if label.startswith("SLM draws"))
    assert "| equal (" in slm and "| ok |" in slm, slm
    e2e = next(line for label, line in rows.items() if label.startswith("tiny end-to-end"))
    assert "exit code 0" in e2e and "| ok |" in e2e and "compiled [True]" in e2e
    assert (tmp_path / "gpu_check.json").is_file() and (tmp_path / "tiny_e2e.log").is_file()


def test_the_table_is_written_after_every_step(tmp_path):
    """A device call stopped at its time limit still leaves the figures of the steps that finished: the table is
    rewritten as each step starts (marked as running) and ends (figures, error or skip)."""
    from scripts.gpu_check import Check

    seen = []
    check = Check(100.0, lambda: seen.append({k: next(iter(v)) for k, v in check.results.items()}))
    check.estimates = {"slow": 1e6}
    assert check.step("fine", lambda: {"x": 1})["x"] == 1
    assert check.step("broken", lambda: 1 / 0) is None
    assert check.step("slow", lambda: {}) is None
    assert seen == [{"fine": "running"}, {"fine": "x"}, {"fine": "x", "broken": "running"},
                    {"fine": "x", "broken": "error"}, {"fine": "x", "broken": "error", "slow": "skipped"}]
    assert check.results["broken"]["error"].startswith("ZeroDivisionError")


@pytest.mark.slow
def test_bench_cp_prints_the_pass_time_against_the_degree():
    r = subprocess.run([sys.executable, "scripts/bench_cp.py", "--model", "tiny", "--degrees", "1,2"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [line.split(" | ") for line in r.stdout.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row[0] for row in rows] == ["| 1", "| 2"] and rows[1][1:3] == ["2 × 1", "native"], r.stdout
    assert "not a measurement" in r.stdout
