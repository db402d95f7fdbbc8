"""K-order Recursive Noise Representation (paper §4.2, Prop. 4.2), its adaptive form, and the two noise
initialisations built on them. Pure tensor functions.

ε⁽¹⁾ = √ᾱ·x0 + √(1−ᾱ)·ε_inv,  ε⁽ᵏ⁾ = √ᾱ·x0 + √(1−ᾱ)·ε⁽ᵏ⁻¹⁾.  With s = √(1−ᾱ) the closed form is
ε⁽ᵏ⁾ = a·x0 + b·ε_inv,  a = √ᾱ·(1 − sᵏ)/(1 − s),  b = sᵏ,  which also defines ε⁽ᵏ⁾ for real k > 0.
Edge cases: ᾱ = 1 (s = 0) gives a = 1, b = 0 for every k; ᾱ = 0 (s = 1) gives a = 0, b = 1 (x0 carries no
weight); k → ∞ gives a → √ᾱ/(1 − s), b → 0. Orders compose: ε⁽ᵐ⁾ of (x0, ε⁽ⁿ⁾) is ε⁽ᵐ⁺ⁿ⁾ of (x0, ε_inv).

Noise initialisations (`inference.noise_init`, `noise_init(mode, …)`):
- `adaptive` (paper §4.2–4.4): SLM once, then x_init = AdaIN(ε⁽ᵏ⁾, ε⁽ᵟ⁾) (k = 10, δ = 3).
- `reference` (the official code): `rounds` (3) times { SLM ; ε ← ε⁽²⁾(x0, ε) }. Its "adaptive" step is written
  as (ε⁽ᵏ⁾ − m_k)/(a_k·σ)·(a_2·σ) + m_2 with m_j = a_j·μ + b_j·ε the per-element mean and a_j·σ the std, μ and σ
  the VAE posterior's mean and std. Because the noise term b_j·ε sits inside the subtracted mean,
  ε⁽ᵏ⁾ − m_k = a_k·(x0 − μ), so the result is a_2·(x0 − μ) + a_2·μ + b_2·ε = ε⁽²⁾ whatever k is: the k of the
  official sweep has no effect, and three rounds without occlusion give ε⁽⁶⁾.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

NOISE_INITS = ("adaptive", "reference")
REFERENCE_ORDER = 2  # the official code's hard-coded target order


class KRNRCoefficients(NamedTuple):
    a: float  # weight of x0
    b: float  # weight of ε_inv


def krnr_coefficients(alpha_bar: float, k: float) -> KRNRCoefficients:
    """Closed-form weights (a, b) of ε⁽ᵏ⁾ = a·x0 + b·ε_inv for ᾱ ∈ [0, 1] and real k ≥ 0 (k = inf allowed; k = 0 is
    ε_inv itself, the official reconstruction's order 0)."""
    if not 0.0 <= alpha_bar <= 1.0:
        raise ValueError(f"alpha_bar must be in [0, 1], got {alpha_bar}")
    if not k >= 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if k == 0:
        return KRNRCoefficients(0.0, 1.0)
    s = math.sqrt(1.0 - alpha_bar)
    if s == 0.0:
        return KRNRCoefficients(1.0, 0.0)
    if s == 1.0:
        return KRNRCoefficients(0.0, 1.0)
    sk = 0.0 if math.isinf(k) else s**k
    # (1 − sᵏ)/(1 − s) computed with expm1/log1p-free form is stable here: 1 − s ≥ ~ᾱ/2 > 0 for ᾱ > 0.
    return KRNRCoefficients(math.sqrt(alpha_bar) * (1.0 - sk) / (1.0 - s), sk)


def krnr(x0: torch.Tensor, eps: torch.Tensor, alpha_bar: float, k: float) -> torch.Tensor:
    """ε⁽ᵏ⁾ in closed form (Prop. 4.2). x0, eps: latents of any equal shape, e.g. [B, t, C, h, w]."""
    a, b = krnr_coefficients(alpha_bar, k)
    return a * x0 + b * eps


def krnr_recursive(x0: torch.Tensor, eps: torch.Tensor, alpha_bar: float, k: int) -> torch.Tensor:
    """The literal recursion (integer k ≥ 1); the reference the closed form is tested against."""
    if int(k) != k or k < 1:
        raise ValueError(f"the recursion needs an integer k >= 1, got {k}")
    out = eps
    for _ in range(int(k)):
        out = math.sqrt(alpha_bar) * x0 + math.sqrt(1.0 - alpha_bar) * out
    return out


def adain(content: torch.Tensor, style: torch.Tensor, dims: tuple[int, ...], eps: float = 1e-6) -> torch.Tensor:
    """Standardise `content` over `dims` and give it the mean/std of `style` over the same dims."""
    c_mean, c_std = content.mean(dims, keepdim=True), content.std(dims, keepdim=True)
    s_mean, s_std = style.mean(dims, keepdim=True), style.std(dims, keepdim=True)
    return (content - c_mean) / (c_std + eps) * s_std + s_mean


def adaptive_krnr(x0: torch.Tensor, eps: torch.Tensor, alpha_bar: float, k: float, delta: float,
                  stats: str = "frame_channel") -> torch.Tensor:
    """Adaptive K-RNR: x_init = AdaIN(ε⁽ᵏ⁾, ε⁽ᵟ⁾).

    x0, eps: [B, t, C, h, w]. `stats='frame_channel'` takes mean/std per (batch, latent frame, channel) over h, w;
    `'global'` per batch item over everything else.
    """
    if delta > k:
        raise ValueError(f"adaptive order delta ({delta}) must not exceed k ({k})")
    dims = (-2, -1) if stats == "frame_channel" else tuple(range(1, x0.ndim))
    return adain(krnr(x0, eps, alpha_bar, k), krnr(x0, eps, alpha_bar, delta), dims)


# fill(x0, eps) → (x0', eps'): Stochastic Latent Modulation with its masks and generator bound; None = no filling.
Fill = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def noise_init(mode: str, x0: torch.Tensor, eps: torch.Tensor, alpha_bar: float, fill: Fill | None, *,
               k: float | None = 10.0, delta: float | None = 3.0, stats: str = "frame_channel",
               rounds: int = 3) -> torch.Tensor:
    """The sampler's starting latent at t_start from x0 and ε_inv, both float [B, t, C, h, w].

    `adaptive` (paper): (x0, ε) = fill(x0, ε); AdaIN(ε⁽ᵏ⁾, ε⁽ᵟ⁾), or plain ε⁽ᵏ⁾ when δ is None.
    `reference` (official code): `rounds` × { (x0, ε) = fill(x0, ε); ε ← ε⁽²⁾ }; k and δ are not used.
    """
    if mode == "adaptive":
        if k is None:
            raise ValueError("the adaptive noise initialisation needs the order k")
        if fill is not None:
            x0, eps = fill(x0, eps)
        if delta is None:
            return krnr(x0, eps, alpha_bar, k)
        return adaptive_krnr(x0, eps, alpha_bar, k, delta, stats)
    if mode == "reference":
        if rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {rounds}")
        for _ in range(rounds):
            if fill is not None:
                x0, eps = fill(x0, eps)
            eps = krnr(x0, eps, alpha_bar, REFERENCE_ORDER)
        return eps
    raise ValueError(f"unknown noise initialisation {mode!r}; one of {NOISE_INITS}")

