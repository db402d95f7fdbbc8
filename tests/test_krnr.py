import math

import pytest
import torch

from inverse_dvs.krnr import adaptive_krnr, krnr, krnr_coefficients, krnr_recursive


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
    for bad in (0, -1):
        with pytest.raises(ValueError):
            krnr_coefficients(0.5, bad)


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
