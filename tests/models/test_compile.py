"""models.compile: what compiles and when (sequential offload never; LoRA blocks match eager)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inverse_dvs.config import ModelConfig
from inverse_dvs.models.video_model import ModelStats
from inverse_dvs.pipeline.denoise import guided_v
from tests.models.helpers import small_config


def test_sequential_offload_cannot_be_compiled_so_auto_leaves_it_eager(tmp_path, tiny_checkpoints, demo_video):
    # the fact: sequential offload (`enable_sequential_cpu_offload` = accelerate's `cpu_offload` per component, here
    # with the CPU as the execution device) hooks every layer; the hooks run under torch.compiler.disable, which a
    # block compiled with fullgraph=True refuses to trace
    from accelerate import cpu_offload
    from diffusers import CogVideoXImageToVideoPipeline

    from inverse_dvs.config import load_config
    from inverse_dvs.infra.errors import ConfigError
    from inverse_dvs.models.compile import compile_blocks, compile_choice, warm_up

    pipe = CogVideoXImageToVideoPipeline.from_pretrained(str(tiny_checkpoints / "tiny-cogvideox-i2v"))
    cpu_offload(pipe.transformer, execution_device=torch.device("cpu"))
    assert sum(hasattr(m, "_hf_hook") for m in pipe.transformer.transformer_blocks[0].modules()) > 5  # per layer
    compile_blocks(pipe, "aot_eager")
    with pytest.raises(Exception, match="compiler.disable"):
        warm_up(pipe, 49, 96, 144, (1,))
    # so `auto` does not compile under sequential offload, and says why; `on` with it is a config error
    cuda = torch.device("cuda")
    on, why = compile_choice("auto", "sequential", cuda, "aot_eager")
    assert not on and "sequential" in why
    assert compile_choice("auto", "none", cuda, "aot_eager") == (True, "")
    assert compile_choice("auto", "model", cuda, "aot_eager") == (True, "")
    assert compile_choice("auto", "none", torch.device("cpu"), "inductor") == (False, "")
    assert compile_choice("on", "none", torch.device("cpu"), "inductor") == (True, "")
    cfg = small_config(tmp_path, tiny_checkpoints, demo_video, "model: {offload: sequential}")
    assert load_config(cfg).run.compile == "auto"
    with pytest.raises(ConfigError, match="run.compile.*model.offload"):
        load_config(cfg, ["run.compile=on"])


@pytest.mark.slow
def test_lora_blocks_compile_and_match_eager(tiny_checkpoints):
    import torch._dynamo

    from inverse_dvs.models.compile import compile_blocks
    from inverse_dvs.models.text import encode_texts
    from inverse_dvs.models.vae import encode_image_latents, encode_video
    from inverse_dvs.models.video_model import load_pipeline
    from inverse_dvs.testing.tiny import TINY_LORA_FILE

    lora = ModelConfig(lora=str(tiny_checkpoints / "tiny-lora"), lora_weight_name=TINY_LORA_FILE)
    pipe = load_pipeline(str(tiny_checkpoints / "tiny-cogvideox-i2v"), lora, torch.device("cpu"), torch.float32,
                         ModelStats())
    frames = np.random.default_rng(0).integers(0, 255, (49, 96, 144, 3), dtype=np.uint8)
    x0 = encode_video(pipe, frames)
    img = encode_image_latents(pipe, frames[0], x0.shape[1])
    (cond,) = encode_texts(pipe, ["a dog"])
    v_fn = guided_v(pipe, img, cond, None, 1.0, ModelStats())
    eager = v_fn(x0, 500)
    pipe.set_adapters(["user"], [0.0])
    assert not torch.allclose(v_fn(x0, 500), eager)  # the LoRA is in the computation
    pipe.set_adapters(["user"], [1.0])
    compile_blocks(pipe, "aot_eager")  # traced through peft's LoRA layers: the same kernels, the same bits
    assert torch.equal(v_fn(x0, 500), eager)
    torch._dynamo.reset()
    compile_blocks(pipe, "inductor")  # generated kernels: equal to rounding
    torch.testing.assert_close(v_fn(x0, 500), eager, rtol=1e-4, atol=1e-4)
