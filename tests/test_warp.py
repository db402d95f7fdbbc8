"""Tests of warp."""

import numpy as np
import pytest
import torch

from inverse_dvs.core import camera as g
from inverse_dvs.testing import demo_scene


@pytest.mark.parametrize("splat", ["zbuffer", "reference"])
def test_warp_video_frames_in_parallel_match_one_at_a_time(splat):
    """On CPU warp_video runs batches on torch's threads (one intra-op thread each): same output as one thread,
    and the thread setting is restored."""
    from inverse_dvs.warp import warp_video

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
