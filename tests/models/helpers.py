"""Helpers of the tests of models/: a small run's config, the compiler's graph count, a LazyPipeline."""

from __future__ import annotations

import torch

from inverse_dvs.models.video_model import ModelStats
from tests.conftest import tiny_run_config, with_sections


def small_config(tmp_path, ckpt, video, extra=""):
    own = "inference: {steps: [4], strength: [0.75], guidance_scale: [5.0]}"
    return tiny_run_config(tmp_path, ckpt, f"{{path: {video}, name: demo, prompt: a ball}}", with_sections(own, extra))


def graph_count() -> int:
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def lazy_model(cfg_path, build=None, overrides=()):
    import logging

    from inverse_dvs.config import load_config, resolve_config
    from inverse_dvs.models.video_model import LazyPipeline

    return LazyPipeline(resolve_config(load_config(cfg_path, overrides)), torch.device("cpu"), torch.float32,
                        ModelStats(), logging.getLogger("inverse_dvs"), build=build)
