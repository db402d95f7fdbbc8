"""Shared fixtures: tiny checkpoints and a small demo scene built once per test session (no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> Path:
    from inverse_dvs.tiny import build_all

    root = tmp_path_factory.mktemp("checkpoints")
    build_all(root)
    return root


@pytest.fixture(scope="session")
def demo_video(tmp_path_factory) -> Path:
    """A 49-frame 96×144 render of the demo scene with its exact depth, as make_demo_scene.py writes them."""
    from scripts.make_demo_scene import main

    out = tmp_path_factory.mktemp("data")
    assert main(["--out", str(out), "--height", "96", "--width", "144"]) == 0
    return out / "demo.mp4"


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
