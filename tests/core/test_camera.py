"""Tests of core.camera."""

import numpy as np

from inverse_dvs.config import TrajectorySpec
from inverse_dvs.core import camera as g
from inverse_dvs.infra import trajectories as tr
from tests import official


def test_interpolation_rules():
    lin = g.interpolate_keyframes(np.array([0.0, 30.0]), 49)
    assert np.allclose(lin, np.linspace(0, 30, 49))
    spl = g.interpolate_keyframes(np.array([0.0, 5.0, -3.0, 8.0, 1.0]), 49)
    assert spl[0] == 0.0 and spl[-1] == 1.0 and spl.shape == (49,)


def test_presets_move_the_right_way():
    def center(preset):
        s2t = tr.trajectory_source_to_target(TrajectorySpec(name="p", preset=preset, amount=20.0), 5, 2.0)
        return g.invert_rigid(s2t)[-1, :3, 3]

    assert center("orbit_left")[0] < 0 < center("orbit_right")[0]
    assert center("arc_up")[1] < 0 < center("arc_down")[1]  # y points down
    assert center("dolly_in")[2] > 0 > center("dolly_out")[2]
    for p in ("orbit_left", "arc_up", "dolly_in"):
        s2t = tr.trajectory_source_to_target(TrajectorySpec(name="p", preset=p, amount=20.0), 5, 2.0)
        assert np.allclose(s2t[0], np.eye(4))


def test_orbit_looks_at_pivot():
    s2t = g.orbit_source_to_target(np.array([10.0]), np.array([-25.0]), np.array([0.0]), radius=3.0)
    pivot_in_target = s2t[0] @ np.array([0, 0, 3.0, 1])
    assert np.allclose(pivot_in_target[:3], [0, 0, 3.0])


def test_intrinsics_modes():
    K = g.intrinsics(480, 720, "fov", fov_deg=90.0)
    assert np.isclose(K[0, 0], 360.0) and K[0, 2] == 360 and K[1, 2] == 240
    # the official f = 500, c = (512, 288) in its pixel-index convention (pixel j at j); ours has centres at j + 0.5
    R = g.intrinsics(576, 1024, "reference")
    assert np.array_equal(R, [[500, 0, 512.5], [0, 500, 288.5], [0, 0, 1]])
    X = np.array([[0.3, -0.2, 2.0], [-1.1, 0.7, 3.5]])
    official = X[:, :2] / X[:, 2:] * 500.0 + [512.0, 288.0]
    ours = (R @ X.T).T
    assert np.allclose(ours[:, :2] / ours[:, 2:] - 0.5, official)


def test_reference_r_spline_is_fitted_on_distances(tmp_path):
    """The official code multiplies r by the scene radius ρ before its smoothing spline; the spline is not
    scale-invariant, so a wavy r path differs from the spline of r scaled afterwards."""
    from scipy.interpolate import UnivariateSpline

    from inverse_dvs.config import TrajectorySpec

    f = tmp_path / "wave.txt"
    f.write_text("0 0\n0 0\n0 0.5 -0.5 0.6 -0.4 0.5 0\n")
    spec, rho = TrajectorySpec(name="w", file=str(f)), 5.0
    keys = np.array([0, 0.5, -0.5, 0.6, -0.4, 0.5, 0]) * rho
    official = UnivariateSpline(np.linspace(0, 1, 7), keys, k=3)(np.linspace(0, 1, 49))
    official[0], official[-1] = keys[0], keys[-1]

    def camera_z(r_spline: str) -> np.ndarray:  # the target camera centre's z is r·ρ on this path (θ = φ = 0)
        return g.invert_rigid(tr.trajectory_source_to_target(spec, 49, rho, r_spline))[:, 2, 3]

    assert np.allclose(camera_z("distance"), official, atol=1e-9)
    assert np.abs(camera_z("fraction") - official).max() > 1.0  # up to 2.3 scene units apart at ρ = 5


def test_reference_pose_arithmetic_is_the_official_float32_construction(tmp_path):
    """`camera.pose_arithmetic: reference` gives the official relative poses bit for bit: linear (3 keyframes) and
    spline (7) paths, ρ below the official cap (float32 products r·ρ) and at it (the integer 5), a first keyframe
    that is not 0 (the official path is relative to its own first frame)."""
    import torch

    rho32 = torch.tensor(2.37, dtype=torch.float32)
    cases = [([0, 8.0, -3.0], [0, -20.0, 10.0], [0, 0.3, -0.1]),
             ([2.0, 5.0, -3.0, 8.0, 1.0, 0.0, 4.0], [0, 10.0, 25.0, -5.0, 0, 3.0, 1.0],
              [0, 0.5, -0.5, 0.6, -0.4, 0.5, 0])]
    for theta, phi, r in cases:
        f = tmp_path / "path.txt"
        f.write_text("\n".join(" ".join(str(v) for v in row) for row in (theta, phi, r)) + "\n")
        spec = TrajectorySpec(name="p", file=str(f))
        for official_rho, rho in ((rho32, float(rho32)), (5, 5.0)):
            ours = tr.trajectory_source_to_target(spec, 49, rho, "distance", "reference")
            assert np.array_equal(ours, official.relative_poses(theta, phi, r, official_rho, 49)), (theta, rho)
            assert np.allclose(ours[0], np.eye(4), atol=1e-6)  # P·P⁻¹ in float32: identity up to rounding
            if theta[0] == 0:  # a path from the source camera: the float64 construction agrees to float32 rounding
                float64 = tr.trajectory_source_to_target(spec, 49, rho, "distance")
                assert np.abs(ours - float64).max() < 2e-6 and not np.array_equal(ours, float64)
            else:  # ours is relative to θ = φ = r = 0, the official code to the path's first frame
                assert not np.allclose(tr.trajectory_source_to_target(spec, 49, rho, "distance")[0], np.eye(4))
