"""Random streams: one per purpose, derived from an item's seed, so no two purposes draw correlated numbers.

`generator(seed, purpose)` is a CPU torch.Generator seeded with:
- `vae`: the seed itself. The VAE posterior draws (`inversion.posterior: sample | reference`,
  `inference.vae_latents: resample`) keep the raw seed, as the official code and diffusers' `prepare_latents` seed
  them, so those fidelity checks stay bitwise.
- any other purpose (`slm`, ...): the first 8 bytes of sha256("inverse-dvs:{purpose}:{seed}"), big-endian, masked to
  63 bits. Streams of different purposes (or seeds) are then unrelated, and the derivation is stable across
  platforms and versions.
"""

from __future__ import annotations

import hashlib

import torch

RAW = ("vae",)  # purposes that keep the seed itself


def stream_seed(seed: int, purpose: str) -> int:
    """The seed of `purpose`'s stream for an item seed (module docstring)."""
    if purpose in RAW:
        return int(seed)
    digest = hashlib.sha256(f"inverse-dvs:{purpose}:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def generator(seed: int, purpose: str) -> torch.Generator:
    """A CPU generator for one purpose's draws of one item."""
    return torch.Generator("cpu").manual_seed(stream_seed(seed, purpose))
