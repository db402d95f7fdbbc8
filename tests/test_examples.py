"""The README's Python API snippet and examples/orbit.py, run as written on the tiny models: the real model ids are
served from a checkpoints folder where they are the tiny checkpoints (`INVERSE_DVS_CHECKPOINTS`), and the video is
the demo clip at the path the snippet names. Outputs are noise: shapes and files are checked, never values."""

import re
import runpy
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from inverse_dvs.config.presets import REFERENCE

ROOT = Path(__file__).resolve().parents[1]


def _readme_snippet() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def as_a_user(tmp_path, tiny_checkpoints, demo_video, monkeypatch) -> Path:
    """A working folder with `data/demo.mp4`, and the real checkpoints' names pointing at the tiny ones."""
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    (ckpt / "CogVideoX-5b-I2V").symlink_to(tiny_checkpoints / "tiny-cogvideox-i2v")
    (ckpt / "Depth-Anything-V2-Large-hf").symlink_to(tiny_checkpoints / "tiny-depth-anything")
    lora = REFERENCE["model"]  # the default method (`reference`) loads this LoRA: the tiny one under its real name
    folder = ckpt / lora["lora"].split("/")[-1]
    folder.mkdir()
    (folder / lora["lora_weight_name"]).symlink_to(tiny_checkpoints / "tiny-lora/tiny_lora.safetensors")
    (tmp_path / "data").mkdir()
    shutil.copy(demo_video, tmp_path / "data/demo.mp4")
    monkeypatch.setenv("INVERSE_DVS_CHECKPOINTS", str(ckpt))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
def test_the_readme_snippet_runs_as_written(as_a_user):
    snippet = _readme_snippet()
    assert 'InverseDVSPipeline.from_pretrained("THUDM/CogVideoX-5b-I2V")' in snippet
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)  # noqa: S102 - the README's own code
    out = scope["out"]
    assert out.frames.shape == (49, 96, 144, 3) and out.frames.dtype == np.uint8  # the tiny model's own size
    assert (as_a_user / "orbit.mp4").stat().st_size > 0


@pytest.mark.slow
def test_the_orbit_example_saves_one_orbit(as_a_user, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["orbit.py", "data/demo.mp4", "--prompt", "a red ball", "--degrees", "10",
                                      "--out", "out/orbit.mp4"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(ROOT / "examples/orbit.py"), run_name="__main__")
    assert stop.value.code == 0
    assert (as_a_user / "out/orbit.mp4").stat().st_size > 0 and "49 frames at 144×96" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["orbit.py", "data/missing.mp4", "--prompt", "x"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(ROOT / "examples/orbit.py"), run_name="__main__")
    assert stop.value.code == 2 and "missing.mp4" in capsys.readouterr().err
