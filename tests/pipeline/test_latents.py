"""Tests of pipeline.latents (the render's latents) and of the inversion round trip on the tiny model."""

import torch

from inverse_dvs.core.ddim import inversion_plan, roundtrip_error, sampling_schedule
from inverse_dvs.models.video_model import alphas_cumprod


def test_refined_round_trip_on_tiny_model(tiny_model):
    pipe, x0, v_fn, stats = tiny_model[:4]
    plan = inversion_plan("t_start", sampling_schedule(50, 0.95).t_start, 30)
    alphas = alphas_cumprod(pipe)
    plain = roundtrip_error(v_fn, x0, plan, alphas, 0)
    refined = roundtrip_error(v_fn, x0, plan, alphas, 3)
    assert refined <= 1e-3 < plain
    assert stats.nfe == 30 + 30 * 4 + 2 * 30  # inversions (1 + 3 passes per refined step) and two samplings


def test_reference_posterior_is_the_mode_and_a_fresh_generator_image_sample(tiny_model):
    """The official inversion: x0 is the VAE posterior mode; only the image condition is sampled, by diffusers' own
    `prepare_latents` with a fresh generator seeded with the run seed."""
    import numpy as np

    from inverse_dvs.models.vae import encode_video, to_pixels
    from inverse_dvs.pipeline.latents import encode_render

    pipe = tiny_model.pipe
    frames = np.random.default_rng(3).integers(0, 255, (49, 96, 144, 3), dtype=np.uint8)
    x0, img, padding = encode_render(pipe, frames, "reference", 42)
    assert padding == 0  # CogVideoX-5B-I2V has no temporal patch
    assert torch.equal(x0, encode_video(pipe, frames, "mode"))
    _, oracle = pipe.prepare_latents(to_pixels(frames[:1], "cpu", torch.float32)[:, :, 0], 1, 4, 49, 96, 144,
                                     torch.float32, torch.device("cpu"), torch.Generator().manual_seed(42))
    assert torch.equal(img, oracle)
    # the other modes: one generator for both (x0 drawn first), or no draw at all
    x0_s, img_s, _ = encode_render(pipe, frames, "sample", 42)
    assert not torch.equal(x0_s, x0) and not torch.equal(img_s, img)
    assert torch.equal(encode_render(pipe, frames, "mode", 42)[0], x0)


def test_the_background_mask_is_taken_at_the_model_size():
    """Depth at a warp size other than the model size (camera.warp_size) gives the background cells of the model's
    latent grid, as the visibility's masks are."""
    import numpy as np

    from inverse_dvs.config import SLMConfig
    from inverse_dvs.pipeline.latents import clip_masks

    class Cfg:
        slm = SLMConfig()

    visibility = np.ones((9, 96, 144), np.float32)
    near_left = np.tile(np.linspace(1.0, 10.0, 256, dtype=np.float32), (9, 144, 1))  # 144×256 warp size
    m = clip_masks(Cfg, visibility, near_left)
    assert m.background.shape == m.masks.occluded.shape == (3, 12, 18)
    assert m.background[:, :, -1].all() and not m.background[:, :, 0].any()  # far on the right: background
