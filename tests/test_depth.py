import numpy as np
import pytest

from inverse_dvs import depth as depth_stage


def _cfg(tmp_path, video, backend, extra=""):
    p = tmp_path / "c.yml"
    p.write_text(f"""
method: paper
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
