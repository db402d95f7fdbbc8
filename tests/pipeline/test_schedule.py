"""pipeline.schedule: each sweep point planned once."""

from inverse_dvs.config import load_config
from inverse_dvs.core.ddim import sampling_schedule
from inverse_dvs.pipeline import plan_sweep


def test_each_point_is_planned_once_with_everything_it_needs(tmp_path):
    p = tmp_path / "c.yml"
    p.write_text("videos: [{path: v.mp4}]\ntrajectories: {a: {preset: orbit_left}}\n"
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
