"""Deterministic DDIM for v-prediction models, written as small pure functions (k-diffusion style).

`v_fn(x, t)` is the model: latents x [B, t, C, h, w] at integer timestep t → v-prediction, same shape.
`alphas_cumprod` is the scheduler's ᾱ table [1000] (float64 recommended); ᾱ = 1 stands for the clean sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
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


def trailing_timesteps(n: int, num_train_timesteps: int = 1000) -> list[int]:
    """diffusers' 'trailing' spacing of n steps, high → low (999, 966, …, 32 for n = 30), computed as diffusers does,
    in float64: in float32 the values that land on .5 round the other way (48 and 96 steps: 937 vs 936)."""
    ratio = num_train_timesteps / n
    return [int(t) - 1 for t in np.round(np.arange(num_train_timesteps, 0, -ratio))]


def sampling_schedule(num_inference_steps: int, strength: float, num_train_timesteps: int = 1000) -> Schedule:
    """The CogVideoX DDIM img2img schedule: 'trailing' spacing, the first ⌊n·strength⌋ steps kept, and — as
    `CogVideoXDDIMScheduler.step` does — each step lands on t − num_train_timesteps // n (not the next listed t)."""
    n = num_inference_steps
    full = trailing_timesteps(n, num_train_timesteps)
    keep = min(int(n * strength), n)
    ts = full[n - keep:]
    if not ts:
        raise ValueError(f"strength {strength} with {n} steps leaves no sampling step")
    prev = [t - num_train_timesteps // n for t in ts]
    prev = [p if p >= 0 else -1 for p in prev]
    return Schedule(ts, prev, ts[0])


INVERSION_ENDS = ("t_start", "terminal")


def inversion_timesteps(t_start: int, steps: int) -> list[int]:
    """Inversion grid: `steps` timesteps evenly spaced from the clean sample up to exactly t_start (inclusive)."""
    ts = np.round(np.linspace(0, t_start, steps + 1)).astype(np.int64).tolist()[1:]  # float64, as the grids above
    out = sorted(set(ts))
    if out[-1] != t_start:
        out.append(t_start)
    return out


def alpha_at(alphas_cumprod: torch.Tensor, t: int) -> float:
    return 1.0 if t < 0 else float(alphas_cumprod[t])


class InversionStep(NamedTuple):
    t_from: int  # noise level the step starts from (-1 = the clean sample, ᾱ = 1)
    t_to: int  # noise level it reaches
    t_model: int  # timestep the model is called with


def inversion_end(end: str, t_start: int, num_train_timesteps: int = 1000) -> int:
    """Timestep the stored inverted latent sits at: t_start (`t_start`), or the last one, 999 (`terminal`)."""
    if end == "t_start":
        return t_start
    if end == "terminal":
        return num_train_timesteps - 1
    raise ValueError(f"unknown inversion end {end!r}; one of {INVERSION_ENDS}")


def inversion_plan(end: str, t_start: int, steps: int, num_train_timesteps: int = 1000) -> list[InversionStep]:
    """The steps of DDIM inversion, from the clean sample upwards.

    `t_start` (paper: a positive terminal SNR): `steps` evenly spaced steps ending exactly at t_start; each step
    calls the model at its lower end (the current sample's own noise level).
    `terminal` (official code): diffusers' `DDIMInverseScheduler` on the 'trailing' grid of `steps` steps
    (32, 66, …, 966, 999 for 30), each step exactly its `step`: from t − num_train_timesteps // steps (ᾱ = 1 below
    0) to t, with the model called at the upper timestep t, as the official inversion loop calls it. The grid ends at
    999 where ᾱ = 0, so the last step returns the model's noise estimate ε̂ = √ᾱ·v + √(1−ᾱ)·x at t = 966 — that is
    what ε_inv is in this mode, whatever t_start is.
    """
    if end == "t_start":
        if t_start >= num_train_timesteps - 1:
            raise ValueError(f"t_start={t_start} reaches the zero-SNR timestep; use the terminal inversion")
        grid = inversion_timesteps(t_start, steps)
        return [InversionStep(f, t, max(f, 0)) for f, t in zip([-1, *grid[:-1]], grid, strict=True)]
    if end == "terminal":
        grid = trailing_timesteps(steps, num_train_timesteps)[::-1]
        jump = num_train_timesteps // steps
        return [InversionStep(t - jump if t - jump >= 0 else -1, t, t) for t in grid]
    raise ValueError(f"unknown inversion end {end!r}; one of {INVERSION_ENDS}")


class Inversion(NamedTuple):
    latent: torch.Tensor  # x at the plan's last t_to, same shape as x0
    timesteps: list[int]  # the t_to of every step (last = where the latent sits)
    trajectory: list[torch.Tensor]  # latents after each step (empty unless requested)


def ddim_invert(v_fn: VFn, x0: torch.Tensor, plan: Sequence[InversionStep], alphas_cumprod: torch.Tensor,
                refine_iterations: int = 0, keep_trajectory: bool = False,
                progress: Callable[[int], None] | None = None) -> Inversion:
    """Carry the clean latent x0 (float [B, t, C, h, w]) up the steps of `plan` (see `inversion_plan`).

    Each step is the DDIM (η = 0) update from ᾱ(t_from) to ᾱ(t_to) with v = v_fn(x, t_model). `refine_iterations`
    > 0 (only for plans that call the model at the lower end) instead solves the sampler's own step backwards,
    x = c·x_next + d·v(x_next, t_to) (coefficients of the step t_to → t_from), by the fixed-point iteration
    x_next ← (x − d·v(x_next, t_to)) / c started from the plain estimate; sampling back down the same grid then
    reproduces x0 up to the iteration's convergence.
    """
    if refine_iterations and any(s.t_model != max(s.t_from, 0) for s in plan):
        raise ValueError("refined inversion needs a plan that calls the model at the lower timestep (end=t_start)")
    x = x0
    traj = []
    for i, step in enumerate(plan):
        a_from, a_to = alpha_at(alphas_cumprod, step.t_from), alpha_at(alphas_cumprod, step.t_to)
        x_next = ddim_step(x, v_fn(x, step.t_model), a_from, a_to)
        if refine_iterations:
            c, d = ddim_coefficients(a_to, a_from)
            for _ in range(refine_iterations):
                x_next = (x - d * v_fn(x_next, step.t_to)) / c
        x = x_next
        if keep_trajectory:
            traj.append(x.detach().clone())
        if progress is not None:
            progress(i)
    return Inversion(x, [s.t_to for s in plan], traj)


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


def roundtrip_error(v_fn: VFn, x0: torch.Tensor, plan: Sequence[InversionStep], alphas_cumprod: torch.Tensor,
                    refine_iterations: int) -> float:
    """Relative error ‖x0' − x0‖ / ‖x0‖ after inverting up a `t_start` plan and sampling back down the same grid."""
    inv = ddim_invert(v_fn, x0, plan, alphas_cumprod, refine_iterations)
    down, prev = reverse_grid(inv.timesteps)
    back = ddim_sample(v_fn, inv.latent, down, prev, alphas_cumprod)
    return float((back - x0).norm() / x0.norm())
