"""Tests of core.disparity."""

import numpy as np
import pytest

from inverse_dvs.core.disparity import disparity_to_depth, fit_scale_shift, stabilize_disparity
from tests import official


def consistent_sequence(T=12, H=40, W=60):
    """Disparity of a static tilted background with a moving near blob: one consistent scale for all frames."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    frames = []
    for t in range(T):
        d = 0.2 + 0.5 * v / H + 0.1 * u / W
        cx = 10 + 3 * t
        d = np.where((u - cx) ** 2 + (v - 20) ** 2 < 64, 1.5, d)
        frames.append(d)
    return np.stack(frames).astype(np.float32)


def test_stabilisation_removes_scale_shift_jitter():
    rng = np.random.default_rng(0)
    truth = consistent_sequence()
    scale = 1 + rng.uniform(-0.2, 0.2, len(truth))
    shift = rng.uniform(-0.1, 0.1, len(truth))
    jittered = truth * scale[:, None, None] + shift[:, None, None]
    out = stabilize_disparity(jittered)
    # the first frame fixes the video's scale: compare with the truth in that frame's scale
    expected = truth * scale[0] + shift[0]
    rel = np.abs(out - expected).max() / np.abs(expected).max()
    assert rel < 0.01, rel
    raw_rel = np.abs(jittered - expected).max() / np.abs(expected).max()
    assert raw_rel > 0.1  # the jitter was real


def test_fit_is_robust_to_outliers():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 1, (50, 50))
    dst = 2.0 * src + 0.3
    dst[:10] = 5.0  # 20% of pixels disagree (a moving object)
    s, b = fit_scale_shift(src, dst)
    assert abs(s - 2.0) < 1e-6 and abs(b - 0.3) < 1e-6


def test_disparity_to_depth_range_and_order():
    disp = consistent_sequence()
    depth = disparity_to_depth(disp, near=1.0, far=20.0)
    assert depth.min() >= 1.0 - 1e-5 and depth.max() <= 20.0 + 1e-4
    assert depth[0, 20, 10] < depth[0, 0, 59]  # larger disparity = nearer


def test_reference_mapping_is_the_official_formula():
    from inverse_dvs.core.disparity import depth_from_disparity, reference_depth

    disp = np.stack([np.full((4, 5), 1.0), np.full((4, 5), 3.0)]).astype(np.float32)
    disp[0, 0, 0], disp[1, 0, 0] = 0.0, 5.0  # the whole video's min 0 and max 5 define n
    d = reference_depth(disp)
    n = disp / 5.0
    expected = np.clip(10000.0 / np.maximum(3900.0 * n, 1e-5), 1e-4, 1e4)
    assert np.allclose(d, expected, rtol=1e-6) and d[0, 0, 0] == np.float32(1e4) and np.isclose(d[1, 0, 0],
                                                                                                 10000 / 3900)
    # no stabilisation in this mode: a per-frame scale change is kept
    assert np.allclose(depth_from_disparity(disp, "reference", stabilize=True), d)
    with pytest.raises(ValueError):
        depth_from_disparity(disp, "bogus")


def test_reference_mapping_is_bitwise_the_official_float32_sequence():
    """float32 disparity (as Video-Depth-Anything saves it) through the official steps (tests/official.py): equal
    bit for bit, over the whole file and over frames selected from it."""
    from inverse_dvs.core.disparity import reference_depth

    res = consistent_sequence() * np.float32(7.3) + np.float32(0.01)
    res[3, 5, 5] = res.min()  # n = 0 there: the 1e-5 floor and the far clip
    official_depth = official.depth_from_disparity(res)
    assert np.array_equal(reference_depth(res), official_depth)
    assert np.array_equal(reference_depth(res[4:], (float(res.min()), float(res.max()))), official_depth[4:])
    assert official_depth.max() == np.float32(1e4)
