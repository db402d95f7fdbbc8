"""runner.records: what each stage's record depends on."""

from inverse_dvs.pipeline import inversion_ends
from inverse_dvs.runner.records import invert_depends
from tests.conftest import config_without_model


def test_the_inversion_record_holds_settings_prompt_and_the_resolved_tiling(tmp_path):
    cfg = config_without_model(tmp_path)
    rec = invert_depends(cfg, "a dog", False)
    assert rec["prompt"] == "a dog" and rec["model"]["vae_tiling"] == "off" and rec["ends"] == inversion_ends(cfg)
    assert "preview" not in rec["inversion"]  # a preview video does not change the inversion
    assert invert_depends(config_without_model(tmp_path, "inversion.steps=10"), "a dog", False) != rec
