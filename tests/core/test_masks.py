"""Tests of core.masks."""

import numpy as np
import pytest
import torch

from inverse_dvs.core.masks import (
    background_mask,
    cell_fraction,
    latent_frame_groups,
    latent_masks,
    occlusion_mask,
    pool_visibility,
)


def test_latent_groups_follow_causal_vae():
    groups = latent_frame_groups(49)
    assert len(groups) == 13 and list(groups[0]) == [0] and list(groups[1]) == [1, 2, 3, 4]
    assert list(groups[-1]) == [45, 46, 47, 48]
    with pytest.raises(ValueError):
        latent_frame_groups(48)


def test_occlusion_and_background_footprints():
    vis = np.ones((49, 16, 24), bool)
    vis[5, 9, 17] = False  # one hole pixel in frame 5 → latent frame 2, cell (1, 2)
    occ = occlusion_mask(vis, 0.0)
    assert occ.shape == (13, 2, 3) and occ.sum() == 1 and occ[2, 1, 2]
    assert not occlusion_mask(vis, 0.5).any()  # 1/(4·64) of the footprint is below a 0.5 threshold
    frac = cell_fraction(~vis)
    assert np.isclose(frac[2, 1, 2], 1 / (4 * 64))
    depth = np.full((49, 16, 24), 2.0)
    depth[:, :, 16:] = 20.0  # far right column of cells
    bg = background_mask(depth, 0.3)
    assert bg[:, :, 2].all() and not bg[:, :, :2].any()


def test_real_vae_grouping_shapes():
    # The causal VAE of CogVideoX maps 49 frames to 13 latent frames: check with the real class, tiny widths.
    from diffusers import AutoencoderKLCogVideoX

    vae = AutoencoderKLCogVideoX(block_out_channels=(8, 8, 16, 16), latent_channels=4, layers_per_block=1,
                                 norm_num_groups=4, temporal_compression_ratio=4).eval()
    with torch.no_grad():
        z = vae.encode(torch.zeros(1, 3, 49, 16, 24)).latent_dist.mode()
    assert z.shape[2:] == occlusion_mask(np.ones((49, 16, 24), bool)).shape


def _issue_mask():
    vis = np.ones((49, 480, 720), bool)
    vis[:, 100:220, 200:360] = False
    vis[5, 300, 500] = False
    vis[17:21, 400:403, 100:103] = False
    return vis


def test_reference_pooling_matches_the_official_numbers():
    """Test vectors of the official pooling (bf16): 6585 occluded cells (6586 in fp32), 3458 ε-mask cells."""
    m = latent_masks(_issue_mask(), "reference")
    assert m.pooled.shape == (13, 60, 90) and m.pooled.dtype == np.float32
    assert int(m.occluded.sum()) == 6585 and int(m.occluded_eps.sum()) == 3458
    assert m.pooled[0, 12, 25] == np.float32(0.18457031) and m.pooled[2, 37, 62] == np.float32(0.99609375)
    assert (m.pooled[:, -1, :] < 1).all() and (m.pooled[:, :, -1] < 1).all()  # the zero padding
    assert (m.pooled[:, :-1, :-1] == 1).any()
    # hand-computed: the cascade's 1-D weights over its 15-px window are [1,1,1] * [1,0,1,0,1] * [1,0,0,0,1,0,0,0,1]
    # (convolved) / 27;
    # cell (12, 25) of frame 0 sees rows 96..110, of which 100.. are holes: visibility = sum of the first 4 weights
    w = np.convolve(np.convolve([1, 1, 1], [1, 0, 1, 0, 1]), [1, 0, 0, 0, 1, 0, 0, 0, 1]) / 27.0
    assert w.size == 15 and np.isclose(w.sum(), 1) and np.isclose(w[:4].sum(), 5 / 27)
    assert abs(m.pooled[0, 12, 25] - 5 / 27) < 2**-8  # bf16 rounding only
    assert abs(m.pooled[1, 30, 30] - 1.0) == 0  # far from every hole


def test_block_pooling_is_the_plain_block_mean():
    vis = np.ones((9, 16, 24), bool)
    vis[1, :8, :8] = False
    pooled = pool_visibility(vis, "block")
    assert pooled.shape == (3, 2, 3) and np.isclose(pooled[1, 0, 0], 0.75) and pooled[0].min() == 1.0
    assert np.array_equal(occlusion_mask(vis), pooled < 1)
    # ε-mask: at or below the eps_rank-th smallest distinct value, inside the x0 mask
    m = latent_masks(vis, "block", eps_rank=0)
    assert np.array_equal(m.occluded_eps, m.occluded)
    with pytest.raises(ValueError):
        pool_visibility(vis, "bogus")
