"""Deterministic DDIM for v-prediction models, written as small pure functions (k-diffusion style).

`v_fn(x, t)` is the model: latents x [B, t, C, h, w] at integer timestep t → v-prediction, same shape.
`alphas_cumprod` is the scheduler's ᾱ table [1000] (float64 recommended); ᾱ = 1 stands for the clean sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

VFn = Callable[[torch.Tensor, int], torch.Tensor]


def ddim_coefficients(alpha_from: float, alpha_to: float) -> tuple[float, float]:
    """(c, d) with step(x, v) = c·x + d·v: the DDIM (η = 0) update for v-prediction as a linear map.

    x̂0 = √ᾱ·x − √(1−ᾱ)·v and ε̂ = √ᾱ·v + √(1−ᾱ)·x, then x' = √ᾱ'·x̂0 + √(1−ᾱ')·ε̂, so
    c = √ᾱ'√ᾱ + √(1−ᾱ')√(1−ᾱ) and d = √(1−ᾱ')√ᾱ − √ᾱ'√(1−ᾱ).
    """
    a, b = float(alpha_from), float(alpha_to)
    c = b**0.5 * a**0.5 + (1 - b) ** 0.5 * (1 - a) ** 0.5
    d = (1 - b) ** 0.5 * a**0.5 - b**0.5 * (1 - a) ** 0.5
    return c, d


def ddim_step(x: torch.Tensor, v: torch.Tensor, alpha_from: float, alpha_to: float) -> torch.Tensor:
    """Move x from noise level ᾱ_from to ᾱ_to along the DDIM (η = 0) path, given the v-prediction v at x."""
    c, d = ddim_coefficients(alpha_from, alpha_to)
    return c * x + d * v


class Schedule(NamedTuple):
    timesteps: list[int]  # sampling timesteps, high → low, starting at t_start
    prev_timesteps: list[int]  # where each step lands (-1 = clean sample, ᾱ = 1)
    t_start: int


def sampling_schedule(num_inference_steps: int, strength: float, num_train_timesteps: int = 1000) -> Schedule:
    """The CogVideoX DDIM img2img schedule: 'trailing' spacing, the first ⌊n·strength⌋ steps kept, and — as
    `CogVideoXDDIMScheduler.step` does — each step lands on t − num_train_timesteps // n (not the next listed t)."""
    n = num_inference_steps
    ratio = num_train_timesteps / n
    full = [int(t) - 1 for t in torch.arange(num_train_timesteps, 0, -ratio).round().tolist()]
    keep = min(int(n * strength), n)
    ts = full[n - keep:]
    if not ts:
        raise ValueError(f"strength {strength} with {n} steps leaves no sampling step")
    prev = [t - num_train_timesteps // n for t in ts]
    prev = [p if p >= 0 else -1 for p in prev]
    return Schedule(ts, prev, ts[0])


def inversion_timesteps(t_start: int, steps: int) -> list[int]:
    """Inversion grid: `steps` timesteps evenly spaced from the clean sample up to exactly t_start (inclusive)."""
    ts = torch.linspace(0, t_start, steps + 1).round().long().tolist()[1:]
    out = sorted(set(ts))
    if out[-1] != t_start:
        out.append(t_start)
    return out


def alpha_at(alphas_cumprod: torch.Tensor, t: int) -> float:
    return 1.0 if t < 0 else float(alphas_cumprod[t])


class Inversion(NamedTuple):
    latent: torch.Tensor  # x at t_start, same shape as x0
    timesteps: list[int]  # the grid that was climbed (last = t_start)
    trajectory: list[torch.Tensor]  # latents after each step (empty unless requested)


def ddim_invert(v_fn: VFn, x0: torch.Tensor, timesteps: Sequence[int], alphas_cumprod: torch.Tensor,
                refine_iterations: int = 0, keep_trajectory: bool = False,
                progress: Callable[[int], None] | None = None) -> Inversion:
    """Carry the clean latent x0 up the grid `timesteps` (ascending; the first step starts at ᾱ = 1, t = 0).

    Plain DDIM inversion evaluates v at the current (lower) point. `refine_iterations` > 0 instead solves the
    sampler's own step backwards, x = c·x_next + d·v(x_next, t_next) (coefficients of the step t_next → t), by the
    fixed-point iteration x_next ← (x − d·v(x_next, t_next)) / c started from the plain estimate; sampling back down
    the same grid then reproduces x0 up to the iteration's convergence.
    """
    x, t_prev, a_prev = x0, 0, 1.0
    traj = []
    for i, t in enumerate(timesteps):
        a_t = alpha_at(alphas_cumprod, t)
        if a_t <= 0:
            raise ValueError(f"inversion would reach t={t} where ᾱ=0 (zero terminal SNR): x_T holds no content")
        x_next = ddim_step(x, v_fn(x, t_prev), a_prev, a_t)
        c, d = ddim_coefficients(a_t, a_prev)
        for _ in range(refine_iterations):
            x_next = (x - d * v_fn(x_next, t)) / c
        x, t_prev, a_prev = x_next, t, a_t
        if keep_trajectory:
            traj.append(x.detach().clone())
        if progress is not None:
            progress(i)
    return Inversion(x, list(timesteps), traj)


def ddim_sample(v_fn: VFn, x: torch.Tensor, timesteps: Sequence[int], prev_timesteps: Sequence[int],
                alphas_cumprod: torch.Tensor, progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """Denoise x from timesteps[0] down: step i evaluates v at (x, timesteps[i]) and lands on prev_timesteps[i]."""
    for i, (t, tp) in enumerate(zip(timesteps, prev_timesteps, strict=True)):
        x = ddim_step(x, v_fn(x, t), alpha_at(alphas_cumprod, t), alpha_at(alphas_cumprod, tp))
        if progress is not None:
            progress(i)
    return x


def reverse_grid(timesteps: Sequence[int]) -> tuple[list[int], list[int]]:
    """Sampling (timesteps, prev_timesteps) that walk an inversion grid back down to the clean sample."""
    down = list(reversed(timesteps))
    return down, down[1:] + [-1]


def roundtrip_error(v_fn: VFn, x0: torch.Tensor, timesteps: Sequence[int], alphas_cumprod: torch.Tensor,
                    refine_iterations: int) -> float:
    """Relative error ‖x0' − x0‖ / ‖x0‖ after inverting up the grid and sampling back down the same grid."""
    inv = ddim_invert(v_fn, x0, timesteps, alphas_cumprod, refine_iterations)
    down, prev = reverse_grid(timesteps)
    back = ddim_sample(v_fn, inv.latent, down, prev, alphas_cumprod)
    return float((back - x0).norm() / x0.norm())
