"""weights: finding models on disk (never downloading in a stage) and the model's size from its config."""

import pytest

from inverse_dvs.infra.errors import WeightsMissingError
from inverse_dvs.weights import model_size_problem, resolve_model, size_problem


def test_a_local_folder_resolves_and_a_missing_model_says_how_to_fetch_it(tmp_path, tiny_checkpoints, monkeypatch):
    folder = tiny_checkpoints / "tiny-cogvideox-i2v"
    assert resolve_model(str(folder)) == str(folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("INVERSE_DVS_CHECKPOINTS", str(tmp_path / "none"))
    with pytest.raises(WeightsMissingError, match="weights download"):
        resolve_model("nobody/no-such-model")


def test_the_model_size_comes_from_its_config(tiny_checkpoints):
    model = str(tiny_checkpoints / "tiny-cogvideox-i2v")
    assert model_size_problem(model, 49, 96, 144) is None
    assert "camera.num_frames: 49" in model_size_problem(model, 21, 96, 144)
    rotary = {"sample_frames": 81, "sample_height": 96, "sample_width": 170, "patch_size": 2}  # no learned positions
    assert size_problem(rotary, 8, 4, 49, 480, 720) is None  # any 1 + 4n frames, sides multiple of 16
    assert "1 + 4·n frames" in size_problem(rotary, 8, 4, 50, 480, 720)
