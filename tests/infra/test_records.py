"""infra.records: what each stage's record depends on, and the sweep."""

from inverse_dvs.config import load_config
from inverse_dvs.infra.records import inversion_ends, invert_depends, run_prefix, sweep, t_starts


def _cfg(tmp_path, *overrides):
    p = tmp_path / "c.yml"
    p.write_text("videos: [{path: v.mp4}]\ntrajectories: {a: {preset: orbit_left}}\n"
                 "camera: {num_frames: 49, window: 49}\n")  # the model's configs are not here to decide `auto`
    return load_config(p, list(overrides))


def test_sweep_points_t_starts_and_inversion_ends(tmp_path):
    cfg = _cfg(tmp_path, "inference.steps=[50, 25]", "inference.strength=[0.95, 0.5]", "inference.seeds=[1, 2]")
    assert len(sweep(cfg)) == 8 and t_starts(cfg) == sorted(t_starts(cfg)) and len(t_starts(cfg)) == 4
    assert inversion_ends(cfg) == t_starts(cfg)  # paper: one inversion per t_start
    ref = _cfg(tmp_path, "method=reference", "inference.steps=[30, 20]")
    assert inversion_ends(ref) == [999]  # reference: one terminal inversion serves them all
    # repeated combinations (a null preservation equal to a listed one) run once
    dup = _cfg(tmp_path, "inference.guidance_scale=[6.0]", "inference.preservation_scale=[null, 6.0]")
    assert len(sweep(dup)) == 1


def test_run_prefix_names_departures_from_the_preset_but_not_sweeps(tmp_path):
    assert run_prefix(_cfg(tmp_path)) == "paper"
    assert run_prefix(_cfg(tmp_path, "inference.steps=[25]", "inference.cache=pab")) == "paper"
    custom = run_prefix(_cfg(tmp_path, "slm.mode=frame"))
    assert custom.startswith("paper+") and custom != run_prefix(_cfg(tmp_path, "slm.mode=reference"))


def test_the_inversion_record_holds_settings_prompt_and_the_resolved_tiling(tmp_path):
    cfg = _cfg(tmp_path)
    rec = invert_depends(cfg, "a dog", False)
    assert rec["prompt"] == "a dog" and rec["model"]["vae_tiling"] == "off" and rec["ends"] == inversion_ends(cfg)
    assert "preview" not in rec["inversion"]  # a preview video does not change the inversion
    assert invert_depends(_cfg(tmp_path, "inversion.steps=10"), "a dog", False) != rec
