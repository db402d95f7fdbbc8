"""The method's latent-side values (paper §4.3–4.4): the render's VAE latents, an inversion and what an inversion file
holds, the latent masks of one clip or window, and SLM restricted to a backbone's real latent frames."""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
import torch

from ..core.masks import LatentMasks, background_mask, latent_masks
from ..core.streams import generator
from ..models.layout import latent_padding
from ..models.vae import encode_image_latents, encode_video


class Encoded(NamedTuple):
    x0: torch.Tensor  # float [1, p + t, C, h, w]: the render's VAE latents after p padding frames (encode_video)
    image_latents: torch.Tensor  # float [1, p + t, C, h, w]: the I2V condition (the first frame, then zero frames)
    padding: int = 0  # p: latent frames in front that are no frame of the video (CogVideoX1.5: 1)


def encode_render(pipe, frames: np.ndarray, posterior: str, seed: int) -> Encoded:
    """The render [T, H, W, 3] uint8 as VAE latents: `mode` both deterministic; `sample` both posterior samples, x0
    first, from one generator seeded with `seed`; `reference` (official) x0 the mode and the image latent a sample
    from a fresh generator seeded with `seed`, as diffusers' I2V `prepare_latents` draws it."""
    gen = generator(seed, "vae")
    pad = latent_padding(pipe, (len(frames) - 1) // pipe.vae_scale_factor_temporal + 1)
    if posterior == "reference":
        x0 = encode_video(pipe, frames, "mode")
        return Encoded(x0, encode_image_latents(pipe, frames[0], x0.shape[1], "sample", gen), pad)
    x0 = encode_video(pipe, frames, posterior, gen)
    return Encoded(x0, encode_image_latents(pipe, frames[0], x0.shape[1], posterior, gen), pad)


class Inverted(NamedTuple):
    """A render inverted to where sampling starts: what `InverseDVSPipeline.generate` starts from, and what an
    inversion file holds (`tensors`)."""

    x0: torch.Tensor  # float [1, p + t, C, h, w]: the render's latents (Encoded.x0)
    eps_inv: torch.Tensor  # float [1, p + t, C, h, w]: the inverted latent ε_inv at `t_end`
    image_latents: torch.Tensor  # float [1, p + t, C, h, w]: the I2V condition
    timesteps: torch.Tensor  # int64 [steps]: the timestep after each inversion step; the last is t_end
    trajectory: torch.Tensor | None = None  # float [steps, 1, p + t, C, h, w]: after each step (when kept)

    @property
    def t_end(self) -> int:
        return int(self.timesteps[-1])

    def tensors(self) -> dict[str, torch.Tensor]:
        """The tensors of an inversion file: `x0`, `eps_inv`, `image_latents`, `timesteps` (int64) and `trajectory`
        when kept."""
        out = {"x0": self.x0, "eps_inv": self.eps_inv, "image_latents": self.image_latents,
               "timesteps": self.timesteps}
        return out if self.trajectory is None else out | {"trajectory": self.trajectory}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> Inverted:
        """The inversion an inversion file's tensors (`tensors()`) describe."""
        return cls(tensors["x0"], tensors["eps_inv"], tensors["image_latents"], tensors["timesteps"],
                   tensors.get("trajectory"))


class ClipMasks(NamedTuple):
    """What SLM and the region-aware guidance read of one clip or window, per latent cell."""

    masks: LatentMasks  # pooled visibility, `occluded` and `occluded_eps`, bool [t, h, w]
    background: np.ndarray  # bool [t, h, w]: the background cells D (paper §4.4)


def clip_masks(cfg, visibility: np.ndarray, depth: np.ndarray) -> ClipMasks:
    """The latent masks (`core.masks.latent_masks` of the visibility [T, H, W] float in [0, 1] at the model size)
    and the background mask of the depth [T, h, w] (at the warp size; taken at the model size by nearest
    neighbour when the warp size differs) with the config's `slm` settings."""
    s = cfg.slm
    if depth.shape[1:] != visibility.shape[1:]:
        h, w = visibility.shape[1:]
        depth = np.stack([cv2.resize(d, (w, h), interpolation=cv2.INTER_NEAREST) for d in depth])
    return ClipMasks(latent_masks(visibility, s.mask_pooling, s.occlusion_threshold, s.eps_rank),
                     background_mask(depth, s.background_threshold))


def real_frames(fill, pad: int):
    """SLM over the real latent frames only: `fill` (x0, ε) → (x0, ε) applied after the `pad` padding frames in
    front, which are passed through untouched (no mask describes them; diffusers' pipeline treats the padding frame
    as one more latent frame and drops it after sampling)."""
    if not pad:
        return fill

    def run(x0: torch.Tensor, eps: torch.Tensor):
        x, e = fill(x0[:, pad:], eps[:, pad:])
        return torch.cat([x0[:, :pad], x], dim=1), torch.cat([eps[:, :pad], e], dim=1)

    return run
