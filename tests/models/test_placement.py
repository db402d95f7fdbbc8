"""models.placement: VAE tiling resolved from the card's total memory; the T5 encoder parked on the CPU."""

from __future__ import annotations

import torch

from inverse_dvs.config import ModelConfig
from inverse_dvs.models.placement import place_pipeline
from tests.models.helpers import small_config


def test_vae_tiling_resolves_from_total_memory_and_is_recorded_resolved(monkeypatch, tmp_path, tiny_checkpoints,
                                                                         demo_video):
    from types import SimpleNamespace

    from inverse_dvs.config import load_config, resolve_config
    from inverse_dvs.models.placement import resolve_vae_tiling
    from inverse_dvs.pipeline import sweep
    from inverse_dvs.runner.records import infer_depends, invert_depends

    total = {"bytes": 80 * 2**30}
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: SimpleNamespace(total_memory=total["bytes"]))

    def free_memory(device=None):
        raise AssertionError("what happens to be free must not decide the tiling")

    monkeypatch.setattr(torch.cuda, "mem_get_info", free_memory)
    cuda = torch.device("cuda")
    assert resolve_vae_tiling("auto", "none", cuda) is False
    assert resolve_vae_tiling("auto", "sequential", cuda) is True
    assert resolve_vae_tiling("off", "sequential", cuda) is False
    total["bytes"] = 24 * 2**30
    assert resolve_vae_tiling("auto", "none", cuda) is True and resolve_vae_tiling("auto", "model", cuda) is True
    assert resolve_vae_tiling("auto", "none", torch.device("cpu")) is False
    assert resolve_vae_tiling("on", "none", torch.device("cpu")) is True
    total["bytes"] = 139 * 2**30  # an H200: CogVideoX1.5's 81×768×1360 (about 130 GB untiled) still tiles
    assert resolve_vae_tiling("auto", "none", cuda) is False
    assert resolve_vae_tiling("auto", "none", cuda, 81 * 768 * 1360) is True
    # the records hold the resolution, not "auto": an inversion made tiled is never taken for an untiled one
    cfg = resolve_config(load_config(small_config(tmp_path, tiny_checkpoints, demo_video)))
    assert cfg.model.vae_tiling == "auto"
    assert invert_depends(cfg, "a ball", True)["model"]["vae_tiling"] == "on"
    assert invert_depends(cfg, "a ball", False) != invert_depends(cfg, "a ball", True)
    pt = sweep(cfg)[0]
    assert infer_depends(cfg, pt, "a ball", 8.0, False)["model"]["vae_tiling"] == "off"


def test_the_text_encoder_never_moves_to_the_gpu_at_placement(tiny_model, monkeypatch):
    moved = []

    def record(self, *args, **kwargs):
        target = args[0] if args else kwargs.get("device")
        moved.append((type(self).__name__, str(target)))
        return self

    monkeypatch.setattr(torch.nn.Module, "to", record)
    place_pipeline(tiny_model.pipe, ModelConfig(), torch.device("cuda"), False)
    assert ("CogVideoXTransformer3DModel", "cuda") in moved and ("AutoencoderKLCogVideoX", "cuda") in moved
    assert not [m for m in moved if m[0] == "T5EncoderModel"]  # 8.9 GiB that would only go back to the CPU
