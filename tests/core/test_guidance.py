"""Tests of core.guidance."""

import pytest
import torch

from inverse_dvs.core.guidance import RegionGuidance, dynamic_guidance, occluded_scale


def test_dynamic_scale_matches_the_official_numbers():
    # g = 10, N = 29 sampling steps (30 × 0.98), at the first four timesteps of the reference schedule
    got = [dynamic_guidance(10.0, t, 29) for t in (966, 932, 899, 866)]
    assert got == pytest.approx([7.5688, 1.0346, 11.0000, 1.0067], abs=5e-5)
    assert occluded_scale("off", 10.0, 966, 29) == 10.0
    with pytest.raises(ValueError):
        occluded_scale("bogus", 10.0, 966, 29)


def test_region_scales_follow_the_mask():
    occ = torch.zeros(1, 2, 1, 3, 4, dtype=torch.bool)
    occ[0, 1, 0, 2, 3] = True
    g = RegionGuidance(10.0, 1.0, "reference", 29, occ)
    s = g(966)
    assert s.shape == occ.shape and s[0, 1, 0, 2, 3] == pytest.approx(7.5688, abs=5e-5)
    assert bool((s[~occ] == 1.0).all())
    assert RegionGuidance(6.0, 6.0, "off", 47, occ)(939) == 6.0  # equal scales: one number, no mask
    assert RegionGuidance(6.0, 3.0, "off", 47, None)(939) == 6.0
    assert not RegionGuidance(1.0, 1.0, "off", 10, occ).uses_cfg and g.uses_cfg
