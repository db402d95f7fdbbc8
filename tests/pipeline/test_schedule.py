"""pipeline.schedule: the sweep and its run tags, each sweep point planned once."""

from inverse_dvs.config import load_config
from inverse_dvs.core.ddim import sampling_schedule
from inverse_dvs.pipeline import inversion_ends, plan_sweep, run_prefix, sweep, t_starts
from tests.conftest import config_without_model


def test_sweep_points_t_starts_and_inversion_ends(tmp_path):
    cfg = config_without_model(tmp_path, "inference.steps=[50, 25]", "inference.strength=[0.95, 0.5]",
                               "inference.seeds=[1, 2]")
    assert len(sweep(cfg)) == 8 and t_starts(cfg) == sorted(t_starts(cfg)) and len(t_starts(cfg)) == 4
    assert inversion_ends(cfg) == t_starts(cfg)  # paper: one inversion per t_start
    ref = config_without_model(tmp_path, "method=reference", "inference.steps=[30, 20]")
    assert inversion_ends(ref) == [999]  # reference: one terminal inversion serves them all
    # repeated combinations (a null preservation equal to a listed one) run once
    dup = config_without_model(tmp_path, "inference.guidance_scale=[6.0]", "inference.preservation_scale=[null, 6.0]")
    assert len(sweep(dup)) == 1


def test_run_prefix_names_departures_from_the_preset_but_not_sweeps(tmp_path):
    assert run_prefix(config_without_model(tmp_path)) == "paper"
    assert run_prefix(config_without_model(tmp_path, "inference.steps=[25]", "inference.cache=pab")) == "paper"
    custom = run_prefix(config_without_model(tmp_path, "slm.mode=frame"))
    assert custom.startswith("paper+") and custom != run_prefix(config_without_model(tmp_path, "slm.mode=reference"))



def test_each_point_is_planned_once_with_everything_it_needs(tmp_path):
    p = tmp_path / "c.yml"
    p.write_text("method: paper\nvideos: [{path: v.mp4}]\ntrajectories: {a: {preset: orbit_left}}\n"
                 "inference: {steps: [50, 20], strength: [0.95], guidance_scale: [1.0, 6.0], preservation_scale: "
                 "[1.0]}\n")
    plans = plan_sweep(load_config(p))
    assert len(plans) == 4 and len({p.run_tag for p in plans}) == 4
    for plan in plans:
        sched = sampling_schedule(plan.point.steps, plan.point.strength)
        assert plan.schedule == sched and plan.inversion_end == plan.t_start == sched.t_start  # paper: t_start
        assert plan.uses_cfg == (plan.point.guidance_scale != 1.0) and plan.batch == (2 if plan.uses_cfg else 1)
    terminal = plan_sweep(load_config(p, ["method=reference", "model.lora=null"]))
    assert {p.inversion_end for p in terminal} == {999}  # one terminal inversion for every t_start
