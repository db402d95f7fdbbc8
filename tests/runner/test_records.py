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


def test_new_keys_at_their_defaults_leave_older_records_valid_and_the_reference_render_side_is_redone(tmp_path):
    """camera.pose_arithmetic and slm.generator at their defaults are not in the records (work folders made before
    the keys existed stay up to date); the reference mapping, splat and poses are, so their float32 rewrite
    (Fidelity IV) recomputes depth and renders made by the earlier code."""
    from inverse_dvs.pipeline.schedule import plan_sweep
    from inverse_dvs.runner.records import depth_depends, infer_depends, warp_depends

    paper = config_without_model(tmp_path, "camera.warp_size=[96, 144]")  # a warp size: no video to probe
    video, traj = paper.videos[0], paper.trajectories[0]
    rec = warp_depends(paper, traj)
    assert "pose_arithmetic" not in rec["camera"] and "arithmetic" not in rec["warp"]
    point = plan_sweep(paper)[0].point
    assert "generator" not in infer_depends(paper, point, "a dog", 30.0, False)["slm"]
    assert "arithmetic" not in depth_depends(paper, video)["depth"]
    reference = config_without_model(tmp_path, "method=reference")
    rec = warp_depends(reference, traj)
    assert rec["camera"]["pose_arithmetic"] == "reference" and rec["warp"]["arithmetic"] == "float32"
    assert depth_depends(reference, video)["depth"]["arithmetic"] == "float32"
    cuda = config_without_model(tmp_path, "slm.generator=reference")
    assert infer_depends(cuda, point, "a dog", 30.0, False)["slm"]["generator"] == "reference"
