"""Tests of infra.trajectories."""

import json

import numpy as np
import pytest

from inverse_dvs.config import TrajectorySpec
from inverse_dvs.core import camera as g
from inverse_dvs.infra import trajectories as tr
from inverse_dvs.infra.errors import UserError

LOOP1 = "0 2 10 15 12 6 0 -2 -5 -12 -8 -3 0\n0 -3 -10 -20 -30 -25 -17 -10 0\n0 0.02 0.09 0.16 0.25 0.2 0.09 0"


WAVE1 = "0 30\n0 -1 -2 -1 0 3 0 -3 0 1 2\n0 0"


VECTORS = [
    (LOOP1, 12, [[0.9832, -0.0442, -0.1773, 0.3842], [0, 0.9702, -0.2421, 0.5249], [0.1827, 0.2381, 0.9539, -0.0677]]),
    (LOOP1, 24, [[0.8844, -0.0058, -0.4667, 1.1099], [0, 0.9999, -0.0124, 0.0295], [0.4668, 0.0110, 0.8843, -0.1030]]),
    (WAVE1, 30, [[1.0000, -0.0005, -0.0014, 0.0029], [0, 0.9469, -0.3214, 0.6429], [0.0015, 0.3214, 0.9469, 0.1061]]),
]


@pytest.mark.parametrize("text, frame, expected", VECTORS)
def test_trajectory_file_test_vectors(tmp_path, text, frame, expected):
    f = tmp_path / "t.txt"
    f.write_text(text)
    s2t = tr.trajectory_source_to_target(TrajectorySpec(name="t", file=str(f)), 49, radius=2.0)
    assert np.abs(s2t[frame, :3] - np.array(expected)).max() < 1e-3
    assert np.allclose(s2t[frame, 3], [0, 0, 0, 1])


def test_inline_keyframes_equal_file(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text(LOOP1)
    kf = tr.read_trajectory_file(f)
    inline = TrajectorySpec(name="i", theta=tuple(kf.theta), phi=tuple(kf.phi), r=tuple(kf.r))
    a = tr.trajectory_source_to_target(inline, 49, 2.0)
    b = tr.trajectory_source_to_target(TrajectorySpec(name="f", file=str(f)), 49, 2.0)
    assert np.array_equal(a, b)


def test_pose_json_roundtrip_and_errors(tmp_path):
    c2w = g.invert_rigid(g.orbit_source_to_target(np.zeros(4), np.linspace(0, 20, 4), np.zeros(4), 2.0))
    shifted = np.einsum("ij,tjk->tik", g.rigid(g.rot_y(np.array(30.0)), np.array([1.0, 2, 3])), c2w)
    p = tmp_path / "poses.json"
    p.write_text(json.dumps(shifted.tolist()))
    s2t = tr.read_pose_json(p, 4)
    assert np.allclose(s2t, g.invert_rigid(c2w))  # independent of the world frame the poses are written in
    with pytest.raises(UserError, match="has 4 poses"):
        tr.read_pose_json(p, 5)
    bad = shifted.copy()
    bad[2, :3, :3] *= 2.0
    p.write_text(json.dumps(bad.tolist()))
    with pytest.raises(UserError, match="pose 2 is not a rigid"):
        tr.read_pose_json(p, 4)
    p.write_text(json.dumps([[1, 2, 3]]))
    with pytest.raises(UserError, match="shape"):
        tr.read_pose_json(p, 4)


@pytest.mark.parametrize("text, match", [
    ("0 1\n0 1", "exactly 3"),
    ("0 1\n0 x\n0 0", "line 2"),
    ("0 1\n0 nan\n0 0", "NaN"),
    ("", "exactly 3"),
])
def test_malformed_trajectory_files(tmp_path, text, match):
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(UserError, match=match):
        tr.read_trajectory_file(f)
