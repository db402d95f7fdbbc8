import numpy as np
import pytest
import torch

from inverse_dvs.errors import UserError
from inverse_dvs.masks import background_mask, cell_fraction, latent_frame_groups, occlusion_mask
from inverse_dvs.slm import stochastic_latent_modulation


def _latents(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 4, 3, 5, 6, generator=g), torch.randn(1, 4, 3, 5, 6, generator=g)


@pytest.mark.parametrize("mode", ["reference", "frame"])
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
    out = stochastic_latent_modulation(x0, eps, occ, bg, torch.Generator().manual_seed(1), mode)
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
    a = stochastic_latent_modulation(x0, eps, occ, no_bg, torch.Generator().manual_seed(3))
    b = stochastic_latent_modulation(x0, eps, occ, no_bg, torch.Generator().manual_seed(3))
    c = stochastic_latent_modulation(x0, eps, occ, no_bg, torch.Generator().manual_seed(4))
    assert torch.equal(a.x0, b.x0) and not torch.equal(a.x0, c.x0)
    occ[0, 2] = True
    with pytest.raises(UserError, match="latent frame 2"):
        stochastic_latent_modulation(x0, eps, occ, no_bg, torch.Generator().manual_seed(3))


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
