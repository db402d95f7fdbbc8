"""weights: finding models on disk (never downloading in a stage); the backbone from its configs is in
tests/models/test_backbone.py."""

import pytest

from inverse_dvs.infra.errors import WeightsMissingError
from inverse_dvs.weights import resolve_model


def test_a_local_folder_resolves_and_a_missing_model_says_how_to_fetch_it(tmp_path, tiny_checkpoints, monkeypatch):
    folder = tiny_checkpoints / "tiny-cogvideox-i2v"
    assert resolve_model(str(folder)) == str(folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("INVERSE_DVS_CHECKPOINTS", str(tmp_path / "none"))
    with pytest.raises(WeightsMissingError, match="weights download"):
        resolve_model("nobody/no-such-model")
