import numpy as np
import pytest

from inverse_dvs import depth as depth_stage
from inverse_dvs.core.disparity import disparity_to_depth, fit_scale_shift, stabilize_disparity
from inverse_dvs.infra.errors import UserError


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


def _cfg(tmp_path, video, backend, extra=""):
    p = tmp_path / "c.yml"
    p.write_text(f"""
run: {{work_dir: {tmp_path / 'out'}, device: cpu}}
videos: [{{path: {video}, name: demo}}]
trajectories: {{a: {{preset: orbit_left, amount: 5}}}}
depth: {{backend: {backend} {extra}}}
camera: {{num_frames: 49, height: 96, width: 144}}
""")
    return str(p)


def _load(tmp_path):
    with np.load(tmp_path / "out/depths/demo/depth.npz") as z:
        return z["depth"]


def test_ground_truth_backend_equals_scene_depth(tmp_path, demo_video):
    assert depth_stage.main(["--config", _cfg(tmp_path, demo_video, "ground_truth"), "--quiet"]) == 0
    d = _load(tmp_path)
    with np.load(demo_video.with_name("demo_depth.npz")) as z:
        assert np.array_equal(d, z["depth"])
    assert (tmp_path / "out/depths/demo/depth.mp4").is_file()


def test_npz_backend_video_depth_anything_layout(tmp_path, demo_video):
    with np.load(demo_video.with_name("demo_depth.npz")) as z:
        disp = 1.0 / z["depth"]
    src = tmp_path / "vda.npz"
    np.savez(src, depths=disp)  # Video-Depth-Anything --save_npz: key `depths`, relative disparity
    cfg = _cfg(tmp_path, demo_video, "npz", f", npz_path: '{src}', npz_kind: disparity")
    assert depth_stage.main(["--config", cfg, "--quiet"]) == 0
    d = _load(tmp_path)
    assert d.shape == (49, 96, 144) and (d > 0).all()
    true = 1.0 / disp
    corr = np.corrcoef(1 / d.ravel(), 1 / true.ravel())[0, 1]
    assert corr > 0.99  # same ordering/affine disparity as the input


def test_npz_backend_resizes_with_the_shared_policy(tmp_path, demo_video):
    with np.load(demo_video.with_name("demo_depth.npz")) as z:
        exact = z["depth"]
    big = exact.repeat(2, axis=1).repeat(2, axis=2)  # the same depth at 192×288
    src = tmp_path / "big.npz"
    np.savez(src, depth=big)
    cfg = _cfg(tmp_path, demo_video, "npz", f", npz_path: '{src}', npz_kind: depth")
    assert depth_stage.main(["--config", cfg, "--quiet"]) == 0
    assert np.array_equal(_load(tmp_path), exact)  # nearest sampling: no depth invented across edges


@pytest.mark.parametrize("content, words", [
    ({"a": np.ones((49, 96, 144)), "b": np.ones(3)}, ["keys", "npz_key"]),
    ({"depths": np.ones((10, 96, 144))}, ["10 frames"]),
    ({"depths": np.ones((49, 96))}, ["shape"]),
])
def test_npz_backend_bad_files(tmp_path, demo_video, capsys, content, words):
    src = tmp_path / "bad.npz"
    np.savez(src, **content)
    cfg = _cfg(tmp_path, demo_video, "npz", f", npz_path: '{src}', npz_kind: depth")
    assert depth_stage.main(["--config", cfg, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(src) in err and all(w in err for w in words), err
    assert not (tmp_path / "out/depths/demo/meta.json").exists()


def test_nan_depth_rejected_or_repaired(tmp_path, demo_video):
    with np.load(demo_video.with_name("demo_depth.npz")) as z:
        d = z["depth"].copy()
    d[3, 5, 5] = np.nan
    src = tmp_path / "nan.npz"
    np.savez(src, depth=d)
    cfg = _cfg(tmp_path, demo_video, "npz", f", npz_path: '{src}', npz_kind: depth")
    assert depth_stage.main(["--config", cfg, "--quiet"]) == 2
    assert depth_stage.main(["--config", cfg, "--quiet", "--set", "depth.repair_invalid=true"]) == 0
    assert np.isfinite(_load(tmp_path)).all()
    with pytest.raises(UserError, match="frames \\[3\\]"):
        import logging

        depth_stage.validate_depth(d, "x", False, logging.getLogger("t"))


def test_depth_anything_tiny_checkpoint(tmp_path, demo_video, tiny_checkpoints):
    cfg = _cfg(tmp_path, demo_video, "depth_anything", f", model: {tiny_checkpoints / 'tiny-depth-anything'}")
    assert depth_stage.main(["--config", cfg, "--quiet"]) == 0
    d = _load(tmp_path)
    assert d.dtype == np.float32 and d.shape == (49, 96, 144) and np.isfinite(d).all() and (d > 0).all()


def test_bad_videos(tmp_path, demo_video):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00not a video" * 100)
    assert depth_stage.main(["--config", _cfg(tmp_path, corrupt, "ground_truth"), "--quiet"]) == 2
    short = _cfg(tmp_path, demo_video, "ground_truth")
    assert depth_stage.main(["--config", short, "--quiet", "--set", "camera.stride=2"]) == 2
    assert depth_stage.main(["--config", short, "--quiet", "--set", "camera.stride=2",
                             "--set", "camera.pad_short=true"]) == 0


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


def test_npz_backend_with_reference_mapping(tmp_path, demo_video):
    with np.load(demo_video.with_name("demo_depth.npz")) as z:
        disp = 1.0 / z["depth"]
    src = tmp_path / "vda.npz"
    np.savez(src, depths=disp)  # Video-Depth-Anything's layout
    cfg = _cfg(tmp_path, demo_video, "npz", f", npz_path: '{src}', npz_kind: disparity, mapping: reference")
    assert depth_stage.main(["--config", cfg, "--quiet"]) == 0
    from inverse_dvs.core.disparity import reference_depth

    assert np.allclose(_load(tmp_path), reference_depth(disp.astype(np.float32)), rtol=1e-5)


def test_reference_mapping_normalises_over_every_frame_of_the_file(tmp_path, demo_video):
    """The official code min–max normalises the whole disparity file Video-Depth-Anything saved, also the frames past
    the 49 it uses: a 60-frame file whose brightest disparity sits in frame 55 sets n for the first 49."""
    from inverse_dvs.core.disparity import reference_depth
    from inverse_dvs.infra.video_io import write_video

    video = tmp_path / "long.mp4"
    write_video(video, np.full((60, 96, 144, 3), 128, np.uint8), 8.0)
    with np.load(demo_video.with_name("demo_depth.npz")) as z:
        disp = np.concatenate([1.0 / z["depth"], 1.0 / z["depth"][:11]]).astype(np.float32)
    disp[55] *= 1.5  # beyond the selected frames
    src = tmp_path / "long_depths.npz"
    np.savez(src, depths=disp)
    cfg = _cfg(tmp_path, video, "npz", f", npz_path: '{src}', npz_kind: disparity, mapping: reference")
    assert depth_stage.main(["--config", cfg, "--quiet"]) == 0
    got = _load(tmp_path)
    assert np.allclose(got, reference_depth(disp[:49], (float(disp.min()), float(disp.max()))), rtol=1e-5)
    assert not np.allclose(got, reference_depth(disp[:49]), rtol=0.05)  # the 49 frames alone give other depths
