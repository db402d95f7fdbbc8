"""pipeline.geometry: depth checks, the warp of a clip."""

import logging

import numpy as np
import pytest
import torch

from inverse_dvs.core import camera as g
from inverse_dvs.infra.errors import UserError
from inverse_dvs.pipeline.geometry import validate_depth, validate_disparity, visibility_report, warp_video
from inverse_dvs.testing import demo_scene


@pytest.mark.parametrize("splat", ["zbuffer", "reference"])
def test_warp_video_frames_in_parallel_match_one_at_a_time(splat):
    """On CPU warp_video runs batches on torch's threads (one intra-op thread each): same output as one thread,
    and the thread setting is restored."""
    H, W, T = 48, 72, 5
    K = g.intrinsics(H, W, "fov", fov_deg=60.0)
    rgb, depth = demo_scene.render_video(np.eye(4), K, H, W, T)
    s2t = g.orbit_source_to_target(np.linspace(0, 5, T), np.linspace(0, -15, T), np.zeros(T),
                                   radius=float(depth[0, H // 2, W // 2]))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = warp_video(rgb, depth, K, s2t, torch.device("cpu"), 2, 4, splat=splat)
        torch.set_num_threads(3)
        parallel = warp_video(rgb, depth, K, s2t, torch.device("cpu"), 2, 4, splat=splat)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(threads)
    assert one[0].shape == (T, H, W, 3) and one[1].shape == (T, H, W)
    assert np.array_equal(one[0], parallel[0]) and np.array_equal(one[1], parallel[1])
    assert 0.3 < one[1].mean() < 1.0  # the camera really moved


def test_invalid_depth_and_flat_disparity_are_named_or_repaired():
    log = logging.getLogger("t")
    d = np.ones((5, 4, 4), np.float32)
    d[3, 1, 1] = np.nan
    with pytest.raises(UserError, match="x: 1 depth .*frames \\[3\\].*repair_invalid"):
        validate_depth(d, "x", False, log)
    fixed = validate_depth(d, "x", True, log)
    assert np.isfinite(fixed).all() and np.isnan(d[3, 1, 1])  # repaired in a copy
    flat = np.zeros((3, 4, 4), np.float32)
    with pytest.raises(UserError, match="constant zero in every frame"):
        validate_disparity(flat, "y", True, log)
    flat[1] = np.arange(16, dtype=np.float32).reshape(4, 4)
    assert np.array_equal(validate_disparity(flat, "y", True, log)[0], flat[1])  # the nearest valid frame


def test_the_visibility_report_warns_and_names_empty_frames():
    warnings, error = visibility_report(np.array([1.0, 0.4, 0.0, 0.6]), 0.5, "here")
    assert error.startswith("here: frame(s) 2 are fully occluded") and len(warnings) == 1
    assert "2 frame(s) less than 50% visible (lowest 0.0% at frame 2)" in warnings[0]
    assert visibility_report(np.ones(3), 0.5, "here") == ([], None)
