"""CogVideoX attention through diffusers' dispatcher (`run.attention_backend`): the same numbers as diffusers' stock
processor on the tiny 5B (with and without a LoRA) and the tiny CogVideoX1.5 (rotary), and a backend this machine
cannot run is a preflight error naming what is installed."""

import numpy as np
import pytest
import torch

from inverse_dvs.config.schema import ATTENTION_BACKENDS
from inverse_dvs.models.attention import BACKENDS, DispatchAttnProcessor, available_backends, backend_problem


def test_the_config_and_the_requirements_name_the_same_backends():
    assert set(BACKENDS) == set(ATTENTION_BACKENDS)


def test_an_unavailable_backend_names_what_is_installed():
    assert backend_problem("auto", cuda=False) is None and backend_problem("native", cuda=False) is None
    problem = backend_problem("_native_cudnn", cuda=False)
    assert "run.attention_backend" in problem and "CUDA" in problem and "native" in problem
    assert "_native_cudnn" not in available_backends(cuda=False) and "native" in available_backends(cuda=False)


def _inverted(ckpt, model: str, backend: str, lora: dict) -> tuple[torch.Tensor, object]:
    from inverse_dvs import InverseDVSPipeline

    pipe = InverseDVSPipeline.from_pretrained(ckpt / model, "paper", device="cpu", dtype="fp32",
                                              run={"attention_backend": backend}, model=lora,
                                              inversion={"steps": 2})
    pipe.set_progress_bar_config(disable=True)
    h, w = pipe.config.model_hw((96, 144))
    frames = np.random.default_rng(0).integers(0, 255, (pipe.config.model_frames, h, w, 3), dtype=np.uint8)
    out = pipe.invert(frames, "a red ball")
    return out.eps_inv, pipe.video_model.get().transformer


@pytest.mark.slow
@pytest.mark.parametrize(("model", "lora"), [
    ("tiny-cogvideox-i2v", {"lora": None}),
    ("tiny-cogvideox-i2v", "tiny-lora"),
    ("tiny-cogvideox15-i2v", {"lora": None}),
])
def test_the_dispatcher_computes_what_the_stock_processor_computes(tiny_checkpoints, model, lora):
    if lora == "tiny-lora":
        lora = {"lora": str(tiny_checkpoints / "tiny-lora"), "lora_weight_name": "tiny_lora.safetensors"}
    stock, t_stock = _inverted(tiny_checkpoints, model, "auto", lora)
    mine, t_mine = _inverted(tiny_checkpoints, model, "native", lora)
    assert not any(isinstance(p, DispatchAttnProcessor) for p in t_stock.attn_processors.values())
    assert all(isinstance(p, DispatchAttnProcessor) for p in t_mine.attn_processors.values())
    assert torch.allclose(mine, stock, rtol=1e-5, atol=1e-5), (mine - stock).abs().max()


def test_preflight_refuses_a_backend_this_machine_cannot_run(tmp_path, tiny_checkpoints, demo_video, capsys):
    from inverse_dvs import preflight
    from tests.conftest import tiny_run_config

    cfg = tiny_run_config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo}}")
    assert preflight.main(["--config", cfg, "--set", "run.attention_backend=_native_cudnn"]) == 2
    err = capsys.readouterr().err
    assert "run.attention_backend" in err and "Available here: auto, native" in err
    assert preflight.main(["--config", cfg, "--set", "run.attention_backend=native"]) == 0
