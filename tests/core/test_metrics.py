"""Tests of core.metrics."""

import math

import numpy as np
import pytest
import torch

from inverse_dvs.core.metrics import clip_frame, clip_text, clip_view, psnr_per_frame, ssim_per_frame


def test_psnr_of_a_known_error():
    rng = np.random.default_rng(0)
    a = rng.integers(20, 200, (3, 16, 24, 3), dtype=np.uint8)
    b = a + np.uint8(10)  # every value off by 10 → MSE = (10/255)²
    assert np.allclose(psnr_per_frame(a, b), 20 * math.log10(255 / 10))
    mask = np.zeros((3, 16, 24), bool)
    mask[:, :4] = True
    c = b.copy()
    c[:, 4:] = 0  # outside the mask: ignored
    assert np.allclose(psnr_per_frame(a, c, mask), 20 * math.log10(255 / 10))
    assert psnr_per_frame(a, a)[0] == pytest.approx(100.0)  # identical: capped
    mask[1] = False
    assert math.isnan(psnr_per_frame(a, c, mask)[1])


def test_ssim_identical_and_constant_frames():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    assert np.allclose(ssim_per_frame(a, a), 1.0)
    # constant frames: the variance terms vanish, SSIM = (2μxμy + C1) / (μx² + μy² + C1) with C1 = (0.01·1)²
    x, y = np.full((1, 32, 32, 3), 51, np.uint8), np.full((1, 32, 32, 3), 102, np.uint8)
    mx, my, c1 = 0.2, 0.4, 0.01**2
    assert ssim_per_frame(x, y)[0] == pytest.approx((2 * mx * my + c1) / (mx**2 + my**2 + c1), abs=1e-5)
    mask = np.zeros((1, 32, 32), bool)
    mask[0, 8:24, 8:24] = True
    assert ssim_per_frame(x, y, mask)[0] == pytest.approx((2 * mx * my + c1) / (mx**2 + my**2 + c1), abs=1e-5)


def test_clip_scores_from_embeddings():
    e = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert clip_text(e, torch.tensor([1.0, 0.0])) == pytest.approx(100 * (1 + 0 + 2**-0.5) / 3)
    assert clip_frame(e) == pytest.approx(100 * (0 + 2**-0.5) / 2)
    assert clip_view(e, e) == pytest.approx(100.0)
    assert clip_view(e, -e) == pytest.approx(-100.0)
