"""Tests of infra.device."""

import subprocess
import sys

import pytest
import torch

from tests.conftest import tiny_run_config


def test_keep_freed_memory_settings_are_accepted_by_glibc():
    """The warp stage's malloc settings (infra.device.keep_freed_memory): glibc accepts every value (it refuses e.g. an
    mmap threshold above 32 MiB); elsewhere nothing changes. Run in a child so this process keeps its allocator."""
    import platform

    code = "from inverse_dvs.infra.device import keep_freed_memory as k; print(k())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ("True" if platform.libc_ver()[0] == "glibc" else "False")


def test_a_fixed_gpu_is_refused_when_each_process_needs_its_own(tmp_path, tiny_checkpoints):

    from inverse_dvs.config import load_config
    from inverse_dvs.infra.device import resolve_device
    from inverse_dvs.infra.errors import ConfigError
    from inverse_dvs.runner.workqueue import Processes

    second = Processes(1, 2, "cuda:1", "token")
    assert resolve_device("auto", second) == resolve_device("cuda", second) == torch.device("cuda:1")
    with pytest.raises(ConfigError, match="run.device.*2 processes"):
        resolve_device("cuda:0", second)
    assert resolve_device("cpu", Processes(1, 2, "cpu", "token")) == torch.device("cpu")
    cfg = tiny_run_config(tmp_path, tiny_checkpoints, f"{{path: {tmp_path / 'demo.mp4'}, name: demo}}")
    with pytest.raises(ConfigError, match="run.device.*run.gpus"):
        load_config(cfg, ["run.device=cuda:0", "run.gpus=[0, 1]"])
    assert load_config(cfg, ["run.device=auto", "run.gpus=[0, 1]"]).run.gpus == [0, 1]


def test_the_process_group_is_destroyed_before_the_interpreter_ends(tmp_path):
    # atexit runs handlers last-registered first: `seen` (registered before) runs after ours and sees the group gone
    script = f"""
import atexit
import torch.distributed as dist
from inverse_dvs.infra.device import end_process_group_at_exit
dist.init_process_group("gloo", init_method="file://{tmp_path / 'store'}", rank=0, world_size=1)
atexit.register(lambda: print("initialized at exit:", dist.is_initialized()))
end_process_group_at_exit()
print("initialized:", dist.is_initialized())
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["initialized: True", "initialized at exit: False"], r.stdout
