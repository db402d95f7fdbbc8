"""CogVideoX's VAE: frames → scaled latents in the transformer's layout (padded to its temporal patch), the I2V image
condition as diffusers' pipeline builds it, and latents → frames."""

from __future__ import annotations

import numpy as np
import torch

from ..infra.errors import UserError
from .layout import latent_padding
from .placement import execution_device


def to_pixels(frames: np.ndarray, device, dtype) -> torch.Tensor:
    """frames [T, H, W, 3] uint8 → [1, 3, T, H, W] in [-1, 1]."""
    x = torch.as_tensor(frames, device=device).permute(3, 0, 1, 2).unsqueeze(0)
    return (x.to(torch.float32) / 127.5 - 1.0).to(dtype)

def _encode(pipe, pixels: torch.Tensor, posterior: str, generator: torch.Generator | None) -> torch.Tensor:
    dist = pipe.vae.encode(pixels).latent_dist
    # `mode` (default) is deterministic; `sample` draws from the posterior with the run's generator.
    z = dist.mode() if posterior == "mode" else dist.sample(generator=generator)
    return z.permute(0, 2, 1, 3, 4)  # [B, t, C, h, w]

def encode_video(pipe, frames: np.ndarray, posterior: str = "mode",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """frames [T, H, W, 3] uint8 → scaled latents x0 [1, p + t, C, h, w] float32 in the transformer's layout:
    t = (T − 1)/4 + 1 latent frames, after p = `latent_padding` copies of the first one (CogVideoX1.5: 21 → 22; the
    padding frame sits where diffusers' pipeline puts it, under the image condition, and `decode` drops it)."""
    dev, dtype = execution_device(pipe), pipe.vae.dtype
    with torch.inference_mode():
        z = _encode(pipe, to_pixels(frames, dev, dtype), posterior, generator)
    s = pipe.vae_scale_factor_spatial
    if z.shape[-2:] != (frames.shape[1] // s, frames.shape[2] // s):
        raise UserError(f"the VAE encoded {frames.shape[1]}×{frames.shape[2]} frames to {z.shape[-2]}×{z.shape[-1]} "
                        f"latent cells instead of {frames.shape[1] // s}×{frames.shape[2] // s}: its tiles (VAE tiling "
                        "on) do not divide this size evenly. Set model.vae_tiling: off, or another size.")
    z = z.float() * pipe.vae_scaling_factor_image
    pad = latent_padding(pipe, z.shape[1])
    return (torch.cat([z[:, :1]] * pad + [z], dim=1) if pad else z).clone()

def encode_image_latents(pipe, first_frame: np.ndarray, latent_frames: int, posterior: str = "mode",
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """The I2V condition, as the pipeline builds it: the first frame encoded on its own, then zero latent frames.

    first_frame [H, W, 3] uint8 → [1, t, C, h, w] float32; t: the latent frames with their padding (`encode_video`),
    so the image is over the padding frame where there is one, as in diffusers' pipeline.
    """
    dev, dtype = execution_device(pipe), pipe.vae.dtype
    with torch.inference_mode():
        z = _encode(pipe, to_pixels(first_frame[None], dev, dtype), posterior, generator).float()
    scale = pipe.vae_scaling_factor_image
    z = z * (1 / scale) if pipe.vae.config.invert_scale_latents else z * scale  # (1 / scale: as diffusers rounds)
    pad = torch.zeros((1, latent_frames - 1, *z.shape[2:]), device=z.device, dtype=z.dtype)
    return torch.cat([z, pad], dim=1).clone()

def sampling_latents(pipe, mode: str, inversion: dict[str, torch.Tensor], render: np.ndarray,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x0 and the image condition the sampler starts from, both float [1, t, C, h, w] on the model's device.

    `inversion`: the ones stored with the inversion (`x0`, `image_latents`). `resample` (official code): the render
    [T, H, W, 3] uint8 and its first frame re-encoded as VAE posterior samples drawn with `generator` (the run seed).
    """
    dev = execution_device(pipe)
    if mode == "inversion":
        return inversion["x0"].to(dev), inversion["image_latents"].to(dev)
    if mode == "resample":
        img = encode_image_latents(pipe, render[0], inversion["x0"].shape[1], "sample", generator)
        return encode_video(pipe, render, "sample", generator).to(dev), img.to(dev)
    raise ValueError(f"unknown vae_latents mode {mode!r}; one of ('inversion', 'resample')")

def decode(pipe, latents: torch.Tensor, padding: int = 0) -> np.ndarray:
    """Scaled latents [1, padding + t, C, h, w] → frames [T, H, W, 3] uint8 of the t real latent frames (the
    `padding` frames in front, `encode_video`'s, are dropped as diffusers' pipeline drops them)."""
    with torch.inference_mode():
        z = latents[:, padding:].to(execution_device(pipe), pipe.vae.dtype).permute(0, 2, 1, 3, 4) \
            / pipe.vae_scaling_factor_image
        video = pipe.vae.decode(z).sample  # [1, 3, T, H, W] in [-1, 1]
    frames = ((video[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return frames.permute(1, 2, 3, 0).cpu().numpy()
