"""Tests of core.slm."""

import numpy as np
import pytest
import torch

from inverse_dvs.core.slm import NothingVisible, SLMResult, stochastic_latent_modulation


def _latents(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 4, 3, 5, 6, generator=g), torch.randn(1, 4, 3, 5, 6, generator=g)


@pytest.mark.parametrize("mode", ["paper", "frame"])
@pytest.mark.parametrize("full_mask", [False, True])
def test_only_occluded_cells_change_and_values_come_from_source(mode, full_mask):
    x0, eps = _latents()
    x0_copy, eps_copy = x0.clone(), eps.clone()
    occ = torch.zeros(1, 4, 1, 5, 6, dtype=torch.bool)
    occ[0, :, 0, :2, :3] = True
    bg = torch.zeros_like(occ)
    bg[0, :, 0, 3:, :] = True
    if full_mask:
        occ, bg = occ.expand(1, 4, 3, 5, 6).clone(), bg.expand(1, 4, 3, 5, 6).clone()
    out = stochastic_latent_modulation(x0, eps, occ, torch.Generator().manual_seed(1), mode, bg)
    assert torch.equal(x0, x0_copy) and torch.equal(eps, eps_copy)  # inputs untouched
    occ_full = occ.expand(x0.shape)
    assert torch.equal(out.x0[~occ_full], x0[~occ_full]) and torch.equal(out.eps[~occ_full], eps[~occ_full])
    assert bool((out.x0[occ_full] != x0[occ_full]).all())
    src = (~occ & bg).expand(x0.shape)
    for c in range(3):  # every filled value exists among the same channel's source values
        pool = set(x0[0, :, c][src[0, :, c]].tolist())
        assert set(out.x0[0, :, c][occ_full[0, :, c]].tolist()) <= pool
    if mode == "frame":  # whole C-vectors from the same latent frame: pairs (x0, eps) stay matched
        for t in range(4):
            vecs = {tuple(x0[0, t, :, i, j].tolist()) for i, j in zip(*np.nonzero(src[0, t, 0].numpy()), strict=True)}
            for i, j in zip(*np.nonzero(occ_full[0, t, 0].numpy()), strict=True):
                assert tuple(out.x0[0, t, :, i, j].tolist()) in vecs


def test_seeded_and_fallbacks():
    x0, eps = _latents()
    occ = torch.zeros(1, 4, 1, 5, 6, dtype=torch.bool)
    occ[0, :, 0, 0] = True
    no_bg = torch.zeros_like(occ)
    a = stochastic_latent_modulation(x0, eps, occ, torch.Generator().manual_seed(3), background=no_bg)
    b = stochastic_latent_modulation(x0, eps, occ, torch.Generator().manual_seed(3), background=no_bg)
    c = stochastic_latent_modulation(x0, eps, occ, torch.Generator().manual_seed(4), background=no_bg)
    assert torch.equal(a.x0, b.x0) and not torch.equal(a.x0, c.x0)
    occ[0, 2] = True
    with pytest.raises(NothingVisible, match="latent frame 2"):
        stochastic_latent_modulation(x0, eps, occ, torch.Generator().manual_seed(3), background=no_bg)


def test_reference_slm_fills_each_mask_from_any_visible_element():
    # channel c holds values in [10c, 10c + 1): where a filled value came from is readable from the value itself
    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, 4, 3, 6, 8, generator=g) + 10 * torch.arange(3).view(1, 1, 3, 1, 1)
    x0, eps = base.clone(), base.clone() + 100  # eps values are x0's shifted, so x0 and eps draws are told apart
    occ = torch.zeros(1, 4, 1, 6, 8, dtype=torch.bool)
    occ[0, :, 0, :3, :4] = True
    occ_eps = torch.zeros_like(occ)
    occ_eps[0, :, 0, :2, :2] = True
    out = stochastic_latent_modulation(x0, eps, occ, torch.Generator().manual_seed(1), "reference",
                                       occluded_eps=occ_eps)
    m, m_eps = occ.expand_as(x0), occ_eps.expand_as(x0)
    assert torch.equal(out.x0[~m], x0[~m]) and torch.equal(out.eps[~m_eps], eps[~m_eps])  # only masked cells change
    assert set(out.x0[m].tolist()) <= set(x0[~m].tolist())  # filled from visible elements of x0
    assert set(out.eps[m_eps].tolist()) <= set(eps[~m_eps].tolist())  # and of eps, from its own mask's complement
    assert bool((out.x0[m] != x0[m]).all())
    # channels mix: channel 0 cells receive values from channels 1 and 2 too
    src_channel = (out.x0[0, :, 0][occ[0, :, 0]] // 10).long()
    assert set(src_channel.tolist()) == {0, 1, 2}
    # independent draws for x0 and eps: at cells in both masks the pairs no longer match
    both = m_eps
    assert not torch.equal(out.eps[both] - 100, out.x0[both])
    # reproducible from the generator
    again = stochastic_latent_modulation(x0, eps, occ, torch.Generator().manual_seed(1), "reference",
                                         occluded_eps=occ_eps)
    assert torch.equal(again.x0, out.x0) and torch.equal(again.eps, out.eps)


def test_reference_slm_makes_the_official_draws_from_a_generator_in_the_official_state():
    """Three rounds of official SLM (tests/official.py) drawing from torch's global generator after
    `torch.manual_seed(seed)`, against ours given a generator seeded the same: the same values in every round, so
    the draws' order, sizes and pools are the official ones (what `slm.generator: reference` relies on, there with
    CUDA generators)."""
    from tests import official

    g = torch.Generator().manual_seed(3)
    x0, eps = torch.randn(1, 4, 3, 6, 8, generator=g), torch.randn(1, 4, 3, 6, 8, generator=g)
    occ = (torch.rand(1, 4, 1, 6, 8, generator=g) < 0.3).expand(1, 4, 3, 6, 8)
    occ_eps = occ & (torch.rand(1, 4, 1, 6, 8, generator=g) < 0.5)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(42)
        ox, oe = x0, eps
        expected = []
        for _ in range(3):
            ox, oe = official.slm(ox, oe, occ, occ_eps)
            expected.append((ox, oe))
    ours, gen = SLMResult(x0, eps), torch.Generator().manual_seed(42)
    for ox, oe in expected:
        ours = stochastic_latent_modulation(ours.x0, ours.eps, occ, gen, "reference", occluded_eps=occ_eps)
        assert torch.equal(ours.x0, ox) and torch.equal(ours.eps, oe)
    assert not torch.equal(ours.x0, x0) and not torch.equal(ours.eps, eps)
