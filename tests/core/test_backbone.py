"""core.backbone: the model family read from the checkpoint's configs (the real ones, as their config.json files
read), the sizes and frame counts that follow, and the configs no family matches."""

import pytest

from inverse_dvs.core.backbone import COGVIDEOX15_5B_I2V, COGVIDEOX_5B_I2V, UnknownBackbone, detect

SCHEDULER = {"_class_name": "CogVideoXDDIMScheduler", "prediction_type": "v_prediction",
             "rescale_betas_zero_snr": True, "snr_shift_scale": 1.0, "timestep_spacing": "trailing"}
VAE_5B = {"block_out_channels": [128, 256, 256, 512], "temporal_compression_ratio": 4, "scaling_factor": 0.7}
VAE_15 = VAE_5B | {"invert_scale_latents": True}
TRANSFORMER_5B = {"in_channels": 32, "out_channels": 16, "patch_size": 2, "patch_size_t": None, "ofs_embed_dim": None,
                  "sample_frames": 49, "sample_height": 60, "sample_width": 90,
                  "use_learned_positional_embeddings": True, "use_rotary_positional_embeddings": True}
TRANSFORMER_15 = TRANSFORMER_5B | {"patch_size_t": 2, "ofs_embed_dim": 512, "sample_frames": 81, "sample_height": 300,
                                   "sample_width": 300, "use_learned_positional_embeddings": False}


def test_the_real_checkpoints_are_told_apart_by_their_structure_not_their_name():
    five, one5 = detect(TRANSFORMER_5B, VAE_5B, SCHEDULER), detect(TRANSFORMER_15, VAE_15, SCHEDULER)
    assert five.family is COGVIDEOX_5B_I2V and one5.family is COGVIDEOX15_5B_I2V
    assert five.fixed and five.table_hw == (480, 720) and five.default_frames == 49 and not five.invert_scale_latents
    assert not one5.fixed and one5.default_frames == 81 and one5.invert_scale_latents and one5.snr_shift_scale == 1.0
    assert one5.side_range == (768, 1360) and one5.side_step == 16  # the model card's rule at the real table
    assert five.family.reference_lora and not one5.family.reference_lora


@pytest.mark.parametrize(("source_hw", "size"), [
    ((1080, 1920), (768, 1360)),  # 16:9 landscape: the longest side allowed
    ((1920, 1080), (1360, 768)),  # a phone's portrait video: nothing cropped but the rounding
    ((1000, 1000), (768, 768)),
    ((480, 640), (768, 1024)),  # 4:3
    ((400, 1600), (768, 1360)),  # wider than allowed: the longest side, then the resize policy crops
])
def test_auto_size_is_the_largest_allowed_size_at_the_video_aspect(source_hw, size):
    assert detect(TRANSFORMER_15, VAE_15, SCHEDULER).auto_size(source_hw) == size
    assert detect(TRANSFORMER_5B, VAE_5B, SCHEDULER).auto_size(source_hw) == (480, 720)  # cropped to it, as before


def test_sizes_and_frame_counts_are_checked_against_the_family_rule():
    five, one5 = detect(TRANSFORMER_5B, VAE_5B, SCHEDULER), detect(TRANSFORMER_15, VAE_15, SCHEDULER)
    for ok in ((768, 1360), (1360, 768), (768, 768), (768, 1024)):
        assert one5.size_problem(*ok) is None
    for bad in ((480, 720), (768, 1376), (776, 1360), (800, 1200)):
        problem = one5.size_problem(*bad)
        assert "'camera.height'" in problem and "768" in problem and "1360" in problem and "auto" in problem
    assert five.size_problem(480, 720) is None and "480×720 only" in five.size_problem(768, 1360)
    assert [f for f in (17, 49, 81, 161) if one5.frames_problem(f, "camera.num_frames")] == []
    problem = one5.frames_problem(50, "camera.num_frames")
    assert "'camera.num_frames'" in problem and "50" in problem and "1 + 16·k" in problem and "161" in problem
    assert one5.frames_problem(177, "camera.window") and one5.frames_problem(1, "camera.window")
    assert five.frames_problem(49, "camera.num_frames") is None and five.frames_problem(81, "camera.num_frames")


def test_the_latent_layout_pads_to_the_temporal_patch():
    five, one5 = detect(TRANSFORMER_5B, VAE_5B, SCHEDULER), detect(TRANSFORMER_15, VAE_15, SCHEDULER)
    assert one5.padding(21) == 1 and one5.padding(22) == 0  # 81 frames: 21 latent frames, padded to 22
    assert five.padding(13) == 0


def test_a_smaller_positional_table_scales_the_rule_to_its_patch():
    tiny = detect(TRANSFORMER_15 | {"sample_height": 50, "sample_width": 50, "sample_frames": 33}, VAE_15, SCHEDULER)
    assert tiny.side_range == (128, 224) and tiny.auto_size((1080, 1920)) == (128, 224)
    assert tiny.default_frames == 33


@pytest.mark.parametrize(("transformer", "scheduler", "words"), [
    (TRANSFORMER_15 | {"ofs_embed_dim": None}, SCHEDULER, ["matches no model family", "patch_size_t 2"]),
    (TRANSFORMER_5B | {"use_learned_positional_embeddings": False}, SCHEDULER,  # CogVideoX-5B text-to-video-like
     ["matches no model family", "positional embeddings rotary"]),
    (TRANSFORMER_5B | {"in_channels": 16}, SCHEDULER, ["in_channels 16"]),  # not image-to-video
    (TRANSFORMER_5B, SCHEDULER | {"prediction_type": "epsilon"}, ["v-prediction", "zero terminal SNR"]),
    (TRANSFORMER_5B, SCHEDULER | {"rescale_betas_zero_snr": False}, ["rescale_betas_zero_snr False"]),
])
def test_configs_of_no_known_family_are_refused_with_what_was_found(transformer, scheduler, words):
    with pytest.raises(UnknownBackbone) as info:
        detect(transformer, VAE_5B, scheduler)
    assert all(w in str(info.value) for w in words), str(info.value)
