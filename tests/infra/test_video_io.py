"""Tests of infra.video_io."""

import numpy as np
import torch

from inverse_dvs.core.masks import latent_masks


def test_to_model_size_resizes_render_bilinear_and_visibility_by_area():
    from inverse_dvs.infra.video_io import to_model_size

    render = np.zeros((2, 8, 16, 3), np.uint8)
    render[:, :, 8:] = 200
    visible = np.ones((2, 8, 16), bool)
    visible[:, :, :4] = False
    out, vis = to_model_size(render, visible, (4, 6))
    assert out.shape == (2, 4, 6, 3) and vis.shape == (2, 4, 6) and vis.dtype == np.float32
    assert np.allclose(vis[0, 0], [0.0, 0.5, 1.0, 1.0, 1.0, 1.0])  # area: 8/3 source columns per output column
    same, ones = to_model_size(render, visible, (8, 16))
    assert same is render and np.array_equal(ones, visible.astype(np.float32))


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
