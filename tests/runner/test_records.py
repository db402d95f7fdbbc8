"""runner.records: what each stage's record depends on."""

from inverse_dvs.config import load_config
from inverse_dvs.pipeline import inversion_ends
from inverse_dvs.runner.records import invert_depends


def _cfg(tmp_path, *overrides):
    p = tmp_path / "c.yml"
    p.write_text("videos: [{path: v.mp4}]\ntrajectories: {a: {preset: orbit_left}}\n"
                 "camera: {num_frames: 49, window: 49}\n")  # the model's configs are not here to decide `auto`
    return load_config(p, list(overrides))


def test_the_inversion_record_holds_settings_prompt_and_the_resolved_tiling(tmp_path):
    cfg = _cfg(tmp_path)
    rec = invert_depends(cfg, "a dog", False)
    assert rec["prompt"] == "a dog" and rec["model"]["vae_tiling"] == "off" and rec["ends"] == inversion_ends(cfg)
    assert "preview" not in rec["inversion"]  # a preview video does not change the inversion
    assert invert_depends(_cfg(tmp_path, "inversion.steps=10"), "a dog", False) != rec
