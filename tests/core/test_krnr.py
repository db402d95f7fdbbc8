"""Tests of core.krnr."""

import math
from functools import partial

import pytest
import torch

from inverse_dvs.core.krnr import (
    adaptive_krnr,
    krnr,
    krnr_coefficients,
    krnr_recursive,
    noise_init,
)
from inverse_dvs.core.slm import stochastic_latent_modulation


def reference_init(x0, eps, alpha_bar, occluded, occluded_eps, generator, rounds=3):
    """The reference initialisation composed as the inference stage composes it."""
    fill = partial(stochastic_latent_modulation, occluded=occluded, generator=generator, mode="reference",
                   occluded_eps=occluded_eps)
    return noise_init("reference", x0, eps, alpha_bar, fill, rounds=rounds)


@pytest.mark.parametrize("alpha_bar", [0.001, 0.05, 0.3, 0.9, 0.999])
@pytest.mark.parametrize("k", [1, 2, 3, 10, 25])
def test_closed_form_equals_recursion(alpha_bar, k):
    g = torch.Generator().manual_seed(k)
    x0, eps = torch.randn(1, 3, 4, 5, 6, generator=g, dtype=torch.float64), torch.randn(1, 3, 4, 5, 6, generator=g,
                                                                                         dtype=torch.float64)
    assert torch.allclose(krnr(x0, eps, alpha_bar, k), krnr_recursive(x0, eps, alpha_bar, k), atol=1e-6, rtol=0)


def test_first_order_is_ddim_forward():
    x0, eps = torch.randn(10), torch.randn(10)
    a = 0.3
    assert torch.allclose(krnr(x0, eps, a, 1), math.sqrt(a) * x0 + math.sqrt(1 - a) * eps)


def test_edge_cases():
    assert krnr_coefficients(1.0, 5) == (1.0, 0.0)
    assert krnr_coefficients(0.0, 5) == (0.0, 1.0)
    a_inf, b_inf = krnr_coefficients(0.2, math.inf)
    s = math.sqrt(0.8)
    assert b_inf == 0.0 and math.isclose(a_inf, math.sqrt(0.2) / (1 - s))
    a_big, _ = krnr_coefficients(0.2, 1e4)
    assert math.isclose(a_big, a_inf, rel_tol=1e-9)
    a_half, b_half = krnr_coefficients(0.2, 2.5)  # real k lies between its integer neighbours
    assert krnr_coefficients(0.2, 2)[0] < a_half < krnr_coefficients(0.2, 3)[0]
    for bad in (-0.5, -1):
        with pytest.raises(ValueError):
            krnr_coefficients(0.5, bad)
    assert krnr_coefficients(0.5, 0) == (0.0, 1.0)


@pytest.mark.parametrize("stats", ["frame_channel", "global"])
def test_adaptive_krnr_takes_delta_statistics(stats):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 4, 3, 6, 8, generator=g, dtype=torch.float64) * 2 + 0.5
    eps = torch.randn(1, 4, 3, 6, 8, generator=g, dtype=torch.float64)
    out = adaptive_krnr(x0, eps, 0.1, 10, 3, stats)
    ref = krnr(x0, eps, 0.1, 3)
    dims = (-2, -1) if stats == "frame_channel" else (1, 2, 3, 4)
    assert torch.allclose(out.mean(dims), ref.mean(dims), atol=1e-9)
    assert torch.allclose(out.std(dims), ref.std(dims), atol=1e-5)
    # the standardised content is that of eps^(k)
    k10 = krnr(x0, eps, 0.1, 10)
    z = lambda t: (t - t.mean(dims, keepdim=True)) / t.std(dims, keepdim=True)  # noqa: E731
    assert torch.allclose(z(out), z(k10), atol=1e-5)
    with pytest.raises(ValueError):
        adaptive_krnr(x0, eps, 0.1, 2, 3)


def _official_adaptive_step(x0, eps, mu, sigma, alpha_bar, k):
    """The official code's "adaptive" K-RNR step written out literally from its description: normalise ε⁽ᵏ⁾ by the
    per-element mean a_k·μ + b_k·ε and std a_k·σ of order k (μ, σ: the VAE posterior), rescale to those of order 2."""
    s, r = math.sqrt(alpha_bar), math.sqrt(1 - alpha_bar)

    def coef(order):  # the finite geometric sum, term by term, and the noise weight
        return sum(s * r**i for i in range(order)), r**order

    a_k, b_k = coef(k)
    a_2, b_2 = coef(2)
    noisy = a_k * x0 + b_k * eps
    current_mean, current_std = a_k * mu + b_k * eps, a_k * sigma
    target_mean, target_std = a_2 * mu + b_2 * eps, a_2 * sigma
    return (noisy - current_mean) / (current_std + 1e-9) * target_std + target_mean


@pytest.mark.parametrize("k", [5, 10, 20])
def test_official_adaptive_step_is_plain_order_two(k):
    from diffusers import CogVideoXDDIMScheduler

    from inverse_dvs.testing.tiny import SCHEDULER_5B_I2V

    alpha_bar = float(CogVideoXDDIMScheduler(**SCHEDULER_5B_I2V).alphas_cumprod[966])  # reference t_start
    g = torch.Generator().manual_seed(k)
    shape = (1, 3, 4, 5, 6)
    mu = torch.randn(shape, generator=g, dtype=torch.float64)
    sigma = 0.05 + torch.rand(shape, generator=g, dtype=torch.float64)
    x0 = mu + sigma * torch.randn(shape, generator=g, dtype=torch.float64)  # a posterior sample
    eps = torch.randn(shape, generator=g, dtype=torch.float64)
    official = _official_adaptive_step(x0, eps, mu, sigma, alpha_bar, k)
    assert torch.allclose(official, krnr(x0, eps, alpha_bar, 2), atol=1e-5, rtol=0)
    assert not torch.allclose(official, krnr(x0, eps, alpha_bar, k), atol=1e-3)  # k really is ignored


def test_reference_rounds_without_occlusion_equal_order_six():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(1, 3, 4, 5, 6, generator=g), torch.randn(1, 3, 4, 5, 6, generator=g)
    none = torch.zeros(1, 3, 1, 5, 6, dtype=torch.bool)
    out = reference_init(x0, eps, 0.2, none, none, torch.Generator().manual_seed(1), rounds=3)
    assert torch.allclose(out, krnr(x0, eps, 0.2, 6), atol=1e-6)
    assert torch.allclose(noise_init("reference", x0, eps, 0.2, None, rounds=3), out, atol=1e-6)


def test_reference_init_keeps_order_six_on_visible_cells_and_fills_the_rest():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(1, 3, 4, 5, 6, generator=g), torch.randn(1, 3, 4, 5, 6, generator=g)
    occ = torch.zeros(1, 3, 1, 5, 6, dtype=torch.bool)
    occ[..., :2, :2] = True
    occ_eps = torch.zeros_like(occ)
    occ_eps[..., 0, 0] = True
    out = reference_init(x0, eps, 0.2, occ, occ_eps, torch.Generator().manual_seed(1))
    vis = ~occ.expand_as(x0)
    assert torch.allclose(out[vis], krnr(x0, eps, 0.2, 6)[vis], atol=1e-6)
    assert not torch.allclose(out[~vis], krnr(x0, eps, 0.2, 6)[~vis], atol=1e-3)


def test_adaptive_noise_init_fills_once_then_adain():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(1, 3, 4, 5, 6, generator=g), torch.randn(1, 3, 4, 5, 6, generator=g)
    calls = []

    def fill(a, b):
        calls.append(1)
        return a * 0 + 1, b

    out = noise_init("adaptive", x0, eps, 0.1, fill, k=10, delta=3)
    assert len(calls) == 1 and torch.allclose(out, adaptive_krnr(torch.ones_like(x0), eps, 0.1, 10, 3))
    assert torch.allclose(noise_init("adaptive", x0, eps, 0.1, None, k=4, delta=None), krnr(x0, eps, 0.1, 4))
    with pytest.raises(ValueError):
        noise_init("bogus", x0, eps, 0.1, None)


def test_order_zero_is_the_inverted_latent_itself():
    """The official reconstruction check sweeps k ∈ {0, 1, 2}; order 0 is ε_inv unchanged, at any noise level."""
    x0, eps = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0)).unbind(0)
    for alpha_bar in (0.0, 0.3, 1.0):
        assert torch.equal(krnr(x0, eps, alpha_bar, 0), eps)
    assert torch.allclose(krnr(x0, eps, 0.3, 1), krnr_recursive(x0, eps, 0.3, 1))
