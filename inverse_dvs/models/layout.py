"""What CogVideoX's transformer takes beyond the latents, per family (core.backbone): rotary position embeddings,
the latent frames padded to its temporal patch, and the `ofs` input of CogVideoX1.5."""

from __future__ import annotations

import torch


def rotary_embeddings(pipe, latent_frames: int, height: int, width: int, device: torch.device):
    """The transformer's rotary position embeddings for latents of t × h × w, as the pipeline prepares them; None for
    a transformer with learned positional embeddings (CogVideoX-5B-I2V)."""
    if not pipe.transformer.config.use_rotary_positional_embeddings:
        return None
    s = pipe.vae_scale_factor_spatial
    return pipe._prepare_rotary_positional_embeddings(height * s, width * s, latent_frames, device)

def latent_padding(pipe, latent_frames: int) -> int:
    """Latent frames put in front of `latent_frames` so the transformer's temporal patch (`patch_size_t`,
    CogVideoX1.5: 2) divides them, as diffusers' pipeline pads: 21 → 22; 0 without a temporal patch."""
    from ..core.backbone import of_pipeline

    return of_pipeline(pipe).padding(latent_frames)

def ofs_embedding(pipe, batch: int, device: torch.device) -> torch.Tensor | None:
    """The `ofs` input of a transformer with an ofs embedding (CogVideoX1.5-I2V: 2.0, the value diffusers' pipeline
    passes), one per batch element; None for one without (CogVideoX-5B-I2V)."""
    if not pipe.transformer.config.ofs_embed_dim:
        return None
    from ..core.backbone import of_pipeline

    return torch.full((batch,), of_pipeline(pipe).family.ofs, device=device, dtype=torch.float32)
