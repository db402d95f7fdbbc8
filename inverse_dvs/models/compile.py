"""Regional compilation of CogVideoX's transformer blocks: whether `run.compile` compiles here, compiling and
uncompiling the blocks, and the warm-up pass per batch size that moves compilation out of the first item."""

from __future__ import annotations

import torch

from .layout import latent_padding, ofs_embedding, rotary_embeddings
from .placement import execution_device, synchronize


def compile_choice(mode: str, offload: str, device: torch.device, backend: str) -> tuple[bool, str]:
    """Whether `run.compile` compiles the transformer blocks here, and why `auto` does not (empty when it does, or
    when nothing needs saying: `off`, or `auto` on a CPU). `on` + `offload: sequential` is refused by the config."""
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return False, ""
    if mode == "on":
        return True, ""
    if offload == "sequential":
        return False, ("model.offload: sequential puts accelerate hooks on every layer inside the blocks, which a "
                       "block compiled as one graph cannot trace")
    if backend == "inductor":
        from torch.utils._triton import has_triton

        if not has_triton():
            return False, "the inductor backend needs Triton on CUDA, and it is not installed"
    return True, ""

def compile_blocks(pipe, backend: str = "inductor") -> int:
    """Regional compilation: each CogVideoX transformer block compiled once (fullgraph, static shapes). The blocks
    share one compiled graph per input layout (the first block's input is a strided view, the others' contiguous)
    and batch size, instead of one graph of the whole model. Returns the number of blocks."""
    blocks = pipe.transformer.transformer_blocks
    for block in blocks:
        block.compile(fullgraph=True, dynamic=False, backend=backend)
    return len(blocks)

def uncompile_blocks(pipe) -> None:
    """Undo `compile_blocks`: the blocks run eagerly again (`nn.Module.compile` keeps its wrapper in this field)."""
    for block in pipe.transformer.transformer_blocks:
        block._compiled_call_impl = None

def transformer_call(pipe, frames: int, height: int, width: int, batch: int,
                     generator: torch.Generator | None = None) -> dict:
    """The arguments of one transformer pass at `batch` latents of a frames × height × width clip (the latent frames
    padded as the sampler pads them): zeros, or with `generator` standard-normal latents and text embeddings (on the
    CPU, then moved, so a seed gives the same inputs on every device)."""
    cfg = pipe.transformer.config
    dev, dtype = execution_device(pipe), pipe.transformer.dtype
    t = (frames - 1) // pipe.vae_scale_factor_temporal + 1
    t += latent_padding(pipe, t)
    h, w = height // pipe.vae_scale_factor_spatial, width // pipe.vae_scale_factor_spatial

    def fill(*shape):
        if generator is None:
            return torch.zeros(*shape, device=dev, dtype=dtype)
        return torch.randn(*shape, generator=generator).to(dev, dtype)

    return {"hidden_states": fill(batch, t, cfg.in_channels, h, w),
            "encoder_hidden_states": fill(batch, cfg.max_text_seq_length, cfg.text_embed_dim),
            "timestep": torch.full((batch,), 999, device=dev, dtype=torch.long),
            "image_rotary_emb": rotary_embeddings(pipe, t, h, w, dev), "ofs": ofs_embedding(pipe, batch, dev),
            "return_dict": False}


def warm_up(pipe, frames: int, height: int, width: int, batch_sizes: tuple[int, ...] = (1, 2)) -> None:
    """One transformer pass per batch size (1: inversion or sampling without CFG, 2: CFG sampling) on zeros of the
    run's shapes (`transformer_call`), so compilation happens here and not inside the first item."""
    for b in batch_sizes:
        with torch.inference_mode():
            pipe.transformer(**transformer_call(pipe, frames, height, width, b))
    synchronize(execution_device(pipe))
