"""Shared fixtures: tiny checkpoints and a small demo scene built once per test session (no downloads)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _fresh_compiler():
    """Tests that compile blocks leave dynamo's caches behind; drop them so one test's graphs never count towards
    another's recompile limit."""
    yield
    import sys

    if "torch._dynamo" in sys.modules:
        sys.modules["torch._dynamo"].reset()


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> Path:
    from inverse_dvs.testing.tiny import build_all

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


def with_sections(base: str, extra: str) -> str:
    """A test config: `base` with each top-level section that `extra` also gives replaced by the one in `extra`
    (a config may name a section once: the loader refuses repeated keys)."""
    import yaml

    data = yaml.safe_load(base) or {}
    data.update(yaml.safe_load(extra) or {})
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def tiny_run_config(tmp_path: Path, ckpt: Path, videos: str, extra: str = "") -> str:
    """The tests' small run on CPU: `videos` is the body of the YAML `videos:` list, one trajectory, ground-truth
    depth, no captions, the tiny CogVideoX; each top-level section in `extra` replaces the one here. Written to
    tmp_path/c.yml, with the work folder tmp_path/out; returns the config's path."""
    cfg = tmp_path / "c.yml"
    cfg.write_text(with_sections(f"""
method: paper
run: {{work_dir: {tmp_path / 'out'}, device: cpu, dtype: fp32}}
videos: [{videos}]
trajectories: {{left: {{preset: orbit_left, amount: 5}}}}
depth: {{backend: ground_truth}}
camera: {{num_frames: 49, height: 96, width: 144}}
caption: {{source: 'off'}}
inversion: {{model: {ckpt / 'tiny-cogvideox-i2v'}, steps: 2}}
inference: {{steps: [3], strength: [0.7], guidance_scale: [5.0]}}
""", extra), encoding="utf-8")
    return str(cfg)


def config_without_model(tmp_path: Path, *overrides: str):
    """A loaded config of one video and one preset, 49 frames per window, whose model's files are not here (so
    `auto` stays unresolved): for the sweep and the records, which need no model."""
    from inverse_dvs.config import load_config

    p = tmp_path / "c.yml"
    p.write_text("method: paper\nvideos: [{path: v.mp4}]\ntrajectories: {a: {preset: orbit_left}}\n"
                 "camera: {num_frames: 49, window: 49}\n")
    return load_config(p, list(overrides))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


class TinyModel(NamedTuple):
    pipe: object
    x0: object  # [1, 13, 4, 12, 18] latents of random frames
    v_fn: object  # v-model without CFG
    stats: object
    img: object  # the I2V condition of the first frame, [1, 13, 4, 12, 18]
    cond: object  # embeddings of "a dog", [1, L, D]
    uncond: object  # embeddings of "", [1, L, D]


@pytest.fixture(scope="session")
def _tiny_encoded(tiny_checkpoints) -> tuple:
    """The tiny CogVideoX pipeline loaded through the real loader and random 49×96×144 frames encoded: loaded once
    per session (tests that change the pipeline restore it, or load their own)."""
    import torch

    from inverse_dvs.config import ModelConfig
    from inverse_dvs.models.text import encode_texts
    from inverse_dvs.models.vae import encode_image_latents, encode_video
    from inverse_dvs.models.video_model import ModelStats, load_pipeline

    pipe = load_pipeline(str(tiny_checkpoints / "tiny-cogvideox-i2v"), ModelConfig(), torch.device("cpu"),
                         torch.float32, ModelStats())
    frames = np.random.default_rng(0).integers(0, 255, (49, 96, 144, 3), dtype=np.uint8)
    x0 = encode_video(pipe, frames)
    img = encode_image_latents(pipe, frames[0], x0.shape[1])
    cond, uncond = encode_texts(pipe, ["a dog", ""])
    return pipe, x0, img, cond, uncond


@pytest.fixture
def tiny_model(_tiny_encoded) -> TinyModel:
    """The session's tiny pipeline and encodings, with fresh counters and a v-model without CFG."""
    from inverse_dvs.models.video_model import ModelStats
    from inverse_dvs.pipeline.denoise import guided_v

    pipe, x0, img, cond, uncond = _tiny_encoded
    stats = ModelStats()
    return TinyModel(pipe, x0, guided_v(pipe, img, cond, None, 1.0, stats), stats, img, cond, uncond)
