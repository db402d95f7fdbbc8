"""K-order Recursive Noise Representation (paper §4, Prop. 4.2) and its adaptive form. Pure tensor functions.

ε⁽¹⁾ = √ᾱ·x0 + √(1−ᾱ)·ε_inv,  ε⁽ᵏ⁾ = √ᾱ·x0 + √(1−ᾱ)·ε⁽ᵏ⁻¹⁾.  With s = √(1−ᾱ) the closed form is
ε⁽ᵏ⁾ = a·x0 + b·ε_inv,  a = √ᾱ·(1 − sᵏ)/(1 − s),  b = sᵏ,  which also defines ε⁽ᵏ⁾ for real k > 0.
Edge cases: ᾱ = 1 (s = 0) gives a = 1, b = 0 for every k; ᾱ = 0 (s = 1) gives a = 0, b = 1 (x0 carries no
weight, which is why inversion must stop before the zero-SNR timestep); k → ∞ gives a → √ᾱ/(1 − s), b → 0.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch


class KRNRCoefficients(NamedTuple):
    a: float  # weight of x0
    b: float  # weight of ε_inv


def krnr_coefficients(alpha_bar: float, k: float) -> KRNRCoefficients:
    """Closed-form weights (a, b) of ε⁽ᵏ⁾ = a·x0 + b·ε_inv for ᾱ ∈ [0, 1] and real k > 0 (k = inf allowed)."""
    if not 0.0 <= alpha_bar <= 1.0:
        raise ValueError(f"alpha_bar must be in [0, 1], got {alpha_bar}")
    if not k > 0:
        raise ValueError(f"k must be > 0, got {k}")
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
