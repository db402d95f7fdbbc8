"""Each sweep point's schedule, computed once: the sampling timesteps from t_start, where its inversion ends, its run
tag and whether it runs classifier-free guidance (diffusers' schedulers: `set_timesteps` computes, `step` is pure)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.ddim import Schedule, inversion_end, sampling_schedule
from ..core.guidance import uses_cfg
from ..infra.records import SweepPoint, run_prefix, sweep


@dataclass(frozen=True)
class PointPlan:
    point: SweepPoint
    schedule: Schedule  # sampling timesteps from t_start and where each step lands
    inversion_end: int  # the timestep the inversion it starts from ends at (t_start, or 999 for `terminal`)
    run_tag: str  # its output folder's name
    uses_cfg: bool  # False only when every guidance scale is 1 at every step: no unconditional pass

    @property
    def t_start(self) -> int:
        return self.schedule.t_start

    @property
    def batch(self) -> int:
        """Latents per transformer pass while sampling."""
        return 2 if self.uses_cfg else 1


def plan_point(cfg, point: SweepPoint, prefix: str) -> PointPlan:
    """The schedule of one sweep point under `cfg` (config.Config); prefix: `records.run_prefix(cfg)`."""
    sched = sampling_schedule(point.steps, point.strength)
    return PointPlan(point, sched, inversion_end(cfg.inversion.end, sched.t_start),
                     point.run_tag(prefix, cfg.inference.cache),
                     uses_cfg(point.guidance_scale, point.preservation_scale, cfg.inference.dynamic_cfg))


def plan_sweep(cfg, log=None) -> list[PointPlan]:
    """Every sweep point of the config (`records.sweep`), planned."""
    prefix = run_prefix(cfg)
    return [plan_point(cfg, pt, prefix) for pt in sweep(cfg, log)]
