"""The reference method's render side, end to end through the public API, against the official code's operations
(tests/official.py): disparity → depth → scene radius → cameras → warp → resize, byte for byte."""

import numpy as np
import torch

from inverse_dvs import InverseDVSPipeline
from tests import official


def test_the_reference_render_is_the_official_render_byte_for_byte(tmp_path):
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"method: reference\nrun: {{work_dir: {tmp_path / 'out'}, device: cpu, dtype: fp32}}\n"
                   "videos: [{path: v.mp4}]\ntrajectories: {t: {preset: orbit_left}}\n", encoding="utf-8")
    pipe = InverseDVSPipeline.from_config(cfg)
    T, H, W = 3, 576, 1024  # the official warp size, where its intrinsics are f = 500, c = (512, 288)
    gen = np.random.default_rng(5)
    frames = gen.integers(0, 256, (T, H, W, 3), dtype=np.uint8)
    v, u = np.mgrid[0:H, 0:W]
    disparity = np.stack([0.2 + 0.5 * v / H + 0.1 * u / W + 0.02 * t for t in range(T)])
    disparity[:, 200:330, 400:600] += 0.6  # a nearer box: occlusions and disocclusions
    disparity = (disparity * 7.3).astype(np.float32)
    keys = {"theta": [0.0, 4.0, -2.0], "phi": [0.0, -12.0, 6.0], "r": [0.0, 0.2, 0.1]}

    depth = pipe.estimate_depth(frames, disparity=disparity, value_range=(float(disparity.min()),
                                                                          float(disparity.max())))
    out = pipe.warp(frames, depth, keys, model_hw=(480, 720))

    official_depth = official.depth_from_disparity(disparity)
    assert np.array_equal(depth, official_depth)
    radius = min(torch.from_numpy(official_depth)[0, H // 2, W // 2] * 1.0, 5)
    poses = official.relative_poses(keys["theta"], keys["phi"], keys["r"], radius, T)
    assert out.scene_radius == float(radius) and np.array_equal(out.source_to_target, poses)
    K = torch.tensor([[500.0, 0.0, 512.0], [0.0, 500.0, 288.0], [0.0, 0.0, 1.0]])
    colours = torch.from_numpy(frames.astype("float32") / 255.0).permute(0, 3, 1, 2)
    warped = [official.warp_frame(colours[t], torch.from_numpy(official_depth[t]), K,
                                  torch.from_numpy(poses[t]).float()) for t in range(T)]
    assert np.array_equal(out.visible_warp, torch.stack([m for _, m in warped]).numpy())
    assert np.array_equal(out.render, official.to_model_size(torch.stack([im for im, _ in warped]), (480, 720)))
    assert 0.05 < 1 - out.visible_warp[1:].mean() < 0.5  # the case moves the camera: holes open


def test_the_official_slm_draws_need_a_cuda_device(tmp_path, tiny_checkpoints, demo_video, capsys):
    """`slm.generator: reference` draws on the GPU as the official code does; on a CPU its draws cannot be
    reproduced, so preflight (exit 2, before any stage) and the pipeline refuse it at once, naming the key and the way
    out."""
    from inverse_dvs import preflight
    from tests.conftest import tiny_run_config

    run = tiny_run_config(tmp_path, tiny_checkpoints, f"{{path: '{demo_video}'}}", "slm: {generator: reference}")
    assert preflight.main(["--config", run]) == 2
    assert "slm.generator: stream" in capsys.readouterr().err and not (tmp_path / "out" / "results").exists()

    import pytest

    from inverse_dvs.infra.errors import ConfigError

    cfg = tmp_path / "c.yml"
    cfg.write_text(f"method: reference\nrun: {{work_dir: {tmp_path / 'out'}, device: cpu}}\n"
                   "slm: {generator: reference}\nvideos: [{path: v.mp4}]\ntrajectories: {t: {preset: orbit_left}}\n",
                   encoding="utf-8")
    with pytest.raises(ConfigError, match=r"slm\.generator.*cpu.*slm\.generator: stream"):
        InverseDVSPipeline.from_config(cfg)
