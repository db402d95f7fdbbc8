"""Tests of models.clip_scorer."""

from __future__ import annotations

import numpy as np
import torch

from tests.conftest import tiny_run_config, with_sections


def test_lpips_without_torchvision_says_exactly_what_to_install(tmp_path, monkeypatch):
    import builtins
    import re

    import torch

    from inverse_dvs.models.clip_scorer import lpips_available, matching_torchvision

    assert matching_torchvision("2.13.0+cpu") == "torchvision==0.28.*"
    assert matching_torchvision("2.11.0+cu130") == "torchvision==0.26.*"
    real_import = builtins.__import__

    def no_torchvision(name, *a, **k):
        if name == "torchvision":
            raise ImportError("no torchvision")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_torchvision)

    class Cfg:
        class eval:  # noqa: N801 - mimics the config section
            lpips = True

    note = lpips_available(Cfg)
    expected = matching_torchvision(torch.__version__)
    assert re.search(rf"pip install '{re.escape(expected)}'", note)


def small_config(tmp_path, ckpt, video, extra=""):
    own = "inference: {steps: [4], strength: [0.75], guidance_scale: [5.0]}"
    return tiny_run_config(tmp_path, ckpt, f"{{path: {video}, name: demo, prompt: a ball}}", with_sections(own, extra))


def test_clip_scorer_loads_once_and_is_deterministic(tmp_path, tiny_checkpoints, demo_video):
    from inverse_dvs.config import load_config
    from inverse_dvs.models.clip_scorer import clip_scorer

    cfg = load_config(small_config(tmp_path, tiny_checkpoints, demo_video,
                              f"eval: {{clip_model: {tiny_checkpoints / 'tiny-clip'}, lpips: false}}"))
    model = clip_scorer(cfg, None)
    assert not model.loaded  # nothing loads before the first use
    frames = np.random.default_rng(0).integers(0, 255, (5, 96, 144, 3), dtype=np.uint8)
    a, b = model.get().embed_frames(frames), model.get().embed_frames(frames)
    assert a.shape == (5, 16) and torch.equal(a, b) and model.get().embed_text("a dog").shape == (16,)
    assert model.loads == 1 and model.get().lpips(frames, frames) is None  # lpips off: no column
