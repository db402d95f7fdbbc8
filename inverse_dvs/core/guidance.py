"""Region-aware classifier-free guidance: one scale per latent cell and sampling step (pure functions).

Occluded cells (M = 1, the content to invent) get the guidance scale g, or its dynamic form; visible cells get the
preservation scale. With v = v_u + s·(v_c − v_u), s = 1 is the conditional prediction alone.

Dynamic form (`inference.dynamic_cfg: reference`, the official code): g + 2 − (1 + g·(1 − cos(π·((N − t)/N)⁵))/2),
where t is the timestep *value* (not the step index) and N the number of sampling steps actually run after the
strength cut — diffusers' CogVideoX `use_dynamic_cfg` uses the same (N − t)/N, which for t ≫ N makes the cosine's
argument huge, so the scale jumps between 1 and g + 1 from step to step rather than following a smooth ramp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

DYNAMIC_CFG = ("off", "reference")


def dynamic_guidance(g: float, t: int, num_steps: int) -> float:
    """The official dynamic scale for guidance g at timestep t with N = num_steps sampling steps (float64)."""
    n = float(num_steps)
    return g + 2.0 - (1.0 + g * (1.0 - math.cos(math.pi * ((n - t) / n) ** 5.0)) / 2.0)


def occluded_scale(mode: str, g: float, t: int, num_steps: int) -> float:
    """Guidance scale on occluded cells at timestep t: g (`off`) or the dynamic form (`reference`)."""
    if mode == "off":
        return float(g)
    if mode == "reference":
        return dynamic_guidance(g, t, num_steps)
    raise ValueError(f"unknown dynamic_cfg {mode!r}; one of {DYNAMIC_CFG}")


def uses_cfg(guidance: float, preservation: float, dynamic: str) -> bool:
    """False only when every scale is 1 at every step (then the unconditional pass is skipped)."""
    return not (guidance == 1.0 and preservation == 1.0 and dynamic == "off")


@dataclass(frozen=True)
class RegionGuidance:
    """Per-step CFG scales: `occluded` cells get `occluded_scale(dynamic, guidance, t, num_steps)`, the others
    `preservation`. occluded: bool [B, t, 1, h, w] (broadcast over channels) or None (one scale everywhere)."""

    guidance: float
    preservation: float
    dynamic: str
    num_steps: int
    occluded: torch.Tensor | None = None

    def __call__(self, t: int) -> float | torch.Tensor:
        g = occluded_scale(self.dynamic, self.guidance, t, self.num_steps)
        if self.occluded is None or g == self.preservation:
            return g
        return torch.where(self.occluded, g, self.preservation).float()

    @property
    def uses_cfg(self) -> bool:
        return uses_cfg(self.guidance, self.preservation, self.dynamic)
