from pathlib import Path

import pytest

from inverse_dvs.config import load_config
from inverse_dvs.errors import ConfigError

BASE = """
run: {work_dir: out}
videos: [{path: VIDEO}]
trajectories:
  a: {theta: [0, 5], phi: [0, 10], r: [0, 0]}
  b: {preset: orbit_left+arc_up, amount: 10}
"""


def make(tmp_path: Path, extra: str = "") -> Path:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    p = tmp_path / "c.yml"
    p.write_text(BASE.replace("VIDEO", str(video)) + extra)
    return p


def test_defaults_and_types(tmp_path):
    cfg = load_config(make(tmp_path))
    assert cfg.camera.num_frames == 49 and cfg.inference.k_order == [10.0]
    assert cfg.videos[0].name == "v"
    assert [t.kind for t in cfg.trajectories] == ["keyframes", "preset"]


def test_shipped_configs_load():
    root = Path(__file__).resolve().parents[1]
    for name in ("config.yml", "configs/tiny.yml"):
        cfg = load_config(root / name, check_paths=False)
        assert cfg.trajectories


@pytest.mark.parametrize("extra, words", [
    ("camera: {num_framez: 3}", ["camera.num_framez", "num_frames"]),
    ("inference: {steps: [-5]}", ["inference.steps[0]", "-5"]),
    ("inference: {strength: [1.0]}", ["inference.strength[0]", "zero terminal SNR"]),
    ("run: {dtype: fp8}", ["run.dtype", "fp8"]),
    ("inference: {k_order: [2], adaptive_order: [3]}", ["adaptive_order", "k_order"]),
    ("slm: {occlusion_threshold: 1.5}", ["slm.occlusion_threshold", "[0, 1]"]),
    ("camera: {height: true}", ["camera.height", "integer"]),
    ("inference: {steps: [1], strength: [0.5]}", ["no sampling step", "t_start"]),
    ("run: {gpus: [-1]}", ["run.gpus"]),
    ("bogus: 1", ["bogus"]),
])
def test_bad_values_name_the_key(tmp_path, extra, words):
    with pytest.raises(ConfigError) as e:
        load_config(make(tmp_path, extra))
    for w in words:
        assert w in str(e.value)


def test_missing_video_and_override(tmp_path):
    p = make(tmp_path)
    with pytest.raises(ConfigError, match="nope.mp4"):
        load_config(p, ["videos=[{path: nope.mp4}]"])
    cfg = load_config(p, ["inference.steps=[25, 50]", "run.seed=7"])
    assert cfg.inference.steps == [25, 50] and cfg.run.seed == 7


def test_unknown_preset_suggests(tmp_path):
    p = make(tmp_path, "")
    with pytest.raises(ConfigError, match="orbit_left"):
        load_config(p, ["trajectories.b.preset=orbit_lft"])
