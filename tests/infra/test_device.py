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
