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
from inverse_dvs.core.slm import NothingVisible, stochastic_latent_modulation


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


def _whole_pixel_windows(mask: np.ndarray, H: int, W: int) -> torch.Tensor:
    """Slow oracle of the official mask resize, bf16 `F.interpolate(mode="area")`: each output pixel is the mean of
    the whole input pixels of its window [⌊i·h/H⌋, ⌈(i+1)·h/H⌉), rounded once to bf16."""
    T, h, w = mask.shape
    out = np.empty((T, H, W))
    for i in range(H):
        r0, r1 = i * h // H, -(-(i + 1) * h // H)
        for j in range(W):
            c0, c1 = j * w // W, -(-(j + 1) * w // W)
            out[:, i, j] = mask[:, r0:r1, c0:c1].mean(axis=(1, 2))
    return torch.from_numpy(out).to(torch.bfloat16).float()


def test_reference_mask_resize_is_the_official_area_interpolation_and_pools_to_the_same_cells():
    from inverse_dvs.core.masks import latent_masks
    from inverse_dvs.infra.video_io import to_model_size

    rng = np.random.default_rng(0)
    visible = np.ones((5, 96, 170), bool)  # warp size → model size 80×120, the official 576×1024 → 480×720 ratios
    for t in range(5):  # holes with ragged edges, as disocclusions have
        visible[t, 20 + 3 * t:70, 40:100 + 5 * t] = rng.random((50 - 3 * t, 60 + 5 * t)) > 0.7
    render = np.zeros((5, 96, 170, 3), np.uint8)
    _, vis = to_model_size(render, visible, (80, 120), "round", "reference")
    oracle = _whole_pixel_windows(visible.astype(np.float64), 80, 120)
    assert torch.equal(torch.from_numpy(vis), oracle)
    cells = latent_masks(vis, "reference").occluded
    assert int((cells != latent_masks(oracle.numpy(), "reference").occluded).sum()) == 0
    # the fractional-coverage area resize (ours) is another mask: the pooled cells differ
    _, ours = to_model_size(render, visible, (80, 120), "round", "area")
    assert not np.array_equal(latent_masks(ours, "reference").pooled, latent_masks(vis, "reference").pooled)


def test_reference_render_resize_is_float_bilinear_then_truncation():
    import torch.nn.functional as F

    from inverse_dvs.infra.video_io import to_model_size

    render = np.random.default_rng(1).random((2, 96, 170, 3)).astype(np.float32)
    out, _ = to_model_size(render, np.ones((2, 96, 170), bool), (80, 120), "reference", "area")
    x = F.interpolate(torch.from_numpy(render).permute(0, 3, 1, 2), size=(80, 120), mode="bilinear",
                      align_corners=False)
    expected = np.floor(x.permute(0, 2, 3, 1).numpy().astype(np.float64) * 255.0)
    assert out.dtype == np.uint8 and np.array_equal(out, np.clip(expected, 0, 255).astype(np.uint8))
    rounded, _ = to_model_size(np.round(render * 255).astype(np.uint8), np.ones((2, 96, 170), bool), (80, 120))
    assert (rounded.astype(int) - out).mean() > 0.2  # rounding vs truncation: the official bias of about −0.5 grey
