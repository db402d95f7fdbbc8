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


def test_setup_env_weights_fetches_what_the_default_config_needs_the_lora_included(tmp_path, monkeypatch):
    """`bash setup_env.sh --weights` runs `weights download --config config.yml`: with the default method (reference)
    that is the video model and the official LoRA, plus the depth, caption and CLIP models."""
    from pathlib import Path

    from inverse_dvs import weights

    root = Path(__file__).resolve().parents[1]
    script = (root / "setup_env.sh").read_text()
    assert "\nCONFIG=config.yml\n" in script and 'inverse_dvs.weights download --config "$CONFIG"' in script
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("INVERSE_DVS_CHECKPOINTS", str(tmp_path / "none"))
    fetched = []
    monkeypatch.setattr(weights, "download", fetched.extend)
    monkeypatch.setattr(weights, "alexnet_weights", lambda: root / "README.md")  # "on disk": no LPIPS fetch in a test
    monkeypatch.chdir(root)
    assert weights.main(["download"]) == 0
    roles = {n.role: (n.model, n.file) for n in fetched}
    assert roles["model.lora"] == ("Eyeline-Research/Go-with-the-Flow",
                                   "I2V5B_final_i38800_nearest_lora_weights.safetensors")
    assert roles["inversion.model"][0] == "THUDM/CogVideoX-5b-I2V"
    assert {"depth.model", "eval.clip_model"} <= set(roles)
