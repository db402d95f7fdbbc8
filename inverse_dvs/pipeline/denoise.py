"""The denoiser, k-diffusion style: the transformer call (`model_v`), the classifier-free guidance wrapper around it
(`guided_v`); the samplers (core.ddim) only see v(x, t). This is the one place the transformer is called, apart
from the compile warm-up (`models.compile.warm_up`)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..models.caches import StepClock
from ..models.layout import ofs_embedding, rotary_embeddings
from ..models.placement import execution_device
from ..models.video_model import ModelStats

VFn = Callable[[torch.Tensor, int], torch.Tensor]


def model_v(pipe, image_latents: torch.Tensor, embeddings: torch.Tensor, stats: ModelStats,
            clock: StepClock | None = None) -> VFn:
    """The transformer's v-predictions for a batch of B latents x [B, t, C, h, w] at timestep t, float32.

    image_latents: the I2V condition [1, t, C, h, w], repeated for the batch; embeddings: [B, L, D], one prompt
    embedding per latent. x and image_latents are in the transformer's layout, latent frames padded to its temporal
    patch (`models.vae.encode_video`); a transformer with an `ofs` embedding gets it on every call (CogVideoX1.5).
    `stats` counts the passes (NFE); `clock` receives each call's timestep (for cache hooks)."""
    dev, dtype = execution_device(pipe), pipe.transformer.dtype
    batch = embeddings.shape[0]
    rotary = rotary_embeddings(pipe, image_latents.shape[1], *image_latents.shape[-2:], dev)
    ofs = ofs_embedding(pipe, batch, dev)
    enc = embeddings.to(dtype)
    img = (torch.cat([image_latents] * batch) if batch > 1 else image_latents).to(dev, dtype)

    def v(x: torch.Tensor, t: int) -> torch.Tensor:
        hidden = torch.cat([x.to(dev, dtype), img], dim=2)
        ts = torch.full((hidden.shape[0],), int(t), device=dev, dtype=torch.long)
        if clock is not None:
            clock.t = int(t)
        with torch.inference_mode(), pipe.transformer.cache_context("cond_uncond"):
            out = pipe.transformer(hidden_states=hidden, encoder_hidden_states=enc, timestep=ts,
                                   image_rotary_emb=rotary, ofs=ofs, return_dict=False)[0].float()
        stats.nfe += hidden.shape[0]
        return out

    return v


def guided_v(pipe, image_latents: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor | None,
             guidance: float | torch.Tensor | Callable[[int], float | torch.Tensor], stats: ModelStats,
             clock: StepClock | None = None) -> VFn:
    """v(x, t) with classifier-free guidance v_u + s·(v_c − v_u) when `uncond` is given (the caller decides, with
    core.guidance.uses_cfg; None: the conditional prediction alone, half the transformer work).

    cond/uncond: prompt embeddings [1, L, D]. `guidance`: one scale, a tensor broadcastable to the latents (one scale
    per cell), or a callable t → scale(s) of the step at timestep t (e.g. `core.guidance.RegionGuidance`)."""
    if uncond is None:
        v_c = model_v(pipe, image_latents, cond, stats, clock)
        return lambda x, t: v_c(x, t).clone()
    v_both = model_v(pipe, image_latents, torch.cat([uncond, cond]), stats, clock)
    dev = execution_device(pipe)

    def v_fn(x: torch.Tensor, t: int) -> torch.Tensor:
        v_u, v_c = v_both(torch.cat([x, x]), t).chunk(2)
        scale = guidance(t) if callable(guidance) else guidance
        if isinstance(scale, torch.Tensor):
            scale = scale.to(dev, torch.float32)
        return (v_u + scale * (v_c - v_u)).clone()

    return v_fn
