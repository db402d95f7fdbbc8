"""Tests of scripts.time_demos."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_it_times_a_demo_into_a_temporary_work_folder():
    before = sorted((ROOT / "outputs").rglob("*")) if (ROOT / "outputs").is_dir() else []
    r = subprocess.run([sys.executable, "scripts/time_demos.py", "--only", "tiny15,clip"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert re.search(r"^\| `bash run_all.sh configs/tiny15.yml` \| \d+ s \| \d+\.\d\d \|$", r.stdout, re.M), r.stdout
    assert "| the same with a real clip | skipped (no --clip) | |" in r.stdout
    assert (sorted((ROOT / "outputs").rglob("*")) if (ROOT / "outputs").is_dir() else []) == before
    r = subprocess.run([sys.executable, "scripts/time_demos.py", "--only", "tiny16"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "unknown name(s) tiny16" in r.stderr
