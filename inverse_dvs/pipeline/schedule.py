"""The sweep and each sweep point's schedule, computed once: the list-valued `inference` keys as points
(`SweepPoint`, `sweep`), their run tags, and per point the sampling timesteps from t_start, where its inversion
ends and whether it runs classifier-free guidance (diffusers' schedulers: `set_timesteps` computes, `step` is pure).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from dataclasses import dataclass

from ..config import Config
from ..core.ddim import Schedule, inversion_end, sampling_schedule
from ..core.guidance import uses_cfg

# list-valued inference keys: each combination is one run, named in its run_tag
SWEEP_KEYS = ("steps", "strength", "guidance_scale", "preservation_scale", "k_order", "adaptive_order", "seeds")


@dataclass(frozen=True)
class SweepPoint:
    steps: int
    strength: float
    guidance_scale: float
    preservation_scale: float
    k_order: float | None  # None: not used (reference noise initialisation)
    adaptive_order: float | None
    seed: int

    def run_tag(self, prefix: str, cache: str = "none") -> str:
        """`{prefix}_steps…_str…_cfg…_pres…[_k…_d…]_seed…[_cache-…]` (the cache only when one is on)."""

        def n(x) -> str:
            return "none" if x is None else f"{x:g}"

        orders = "" if self.k_order is None else f"_k{n(self.k_order)}_d{n(self.adaptive_order)}"
        return (f"{prefix}_steps{self.steps}_str{n(self.strength)}_cfg{n(self.guidance_scale)}"
                f"_pres{n(self.preservation_scale)}{orders}_seed{self.seed}"
                + ("" if cache == "none" else f"_cache-{cache}"))


def run_prefix(cfg: Config) -> str:
    """The method, plus a short hash when a non-sweep key was set away from the method's preset, so outputs of
    different settings sit side by side instead of replacing each other."""
    custom = [(k, v) for k, v in cfg.custom if k.split(".", 1)[1] not in SWEEP_KEYS and k != "inference.cache"]
    if not custom:
        return cfg.method
    return f"{cfg.method}+{hashlib.sha256(json.dumps(custom, sort_keys=True).encode()).hexdigest()[:6]}"


def sweep(cfg: Config, log=None) -> list[SweepPoint]:
    """Every combination of the list-valued inference keys, once each (k and δ dropped where unused)."""
    inf = cfg.inference
    seeds = inf.seeds or [cfg.run.seed]
    uses_orders = inf.noise_init == "adaptive"
    if not uses_orders and (len(set(inf.k_order)) > 1 or len(set(inf.adaptive_order)) > 1):
        (log or logging.getLogger("inverse_dvs")).warning(
            "inference.k_order %s / adaptive_order %s have no effect with inference.noise_init: reference (its "
            "adaptive step reduces to order 2; README → Fidelity): each other combination runs once.", inf.k_order,
            inf.adaptive_order)
    points = []
    for steps, strength, g, p, k, d, seed in itertools.product(inf.steps, inf.strength, inf.guidance_scale,
                                                               inf.preservation_scale, inf.k_order,
                                                               inf.adaptive_order, seeds):
        points.append(SweepPoint(steps, strength, g, g if p is None else p, k if uses_orders else None,
                                 d if uses_orders else None, seed))
    return list(dict.fromkeys(points))  # repeated combinations (e.g. preservation null = a listed value) run once


def t_starts(cfg: Config) -> list[int]:
    """Distinct first sampling timesteps of the inference sweep (steps × strength)."""
    return sorted({sampling_schedule(n, s).t_start for n in cfg.inference.steps for s in cfg.inference.strength})


def inversion_ends(cfg: Config) -> list[int]:
    """Distinct timesteps the stored inversions end at (one file each)."""
    return sorted({inversion_end(cfg.inversion.end, t) for t in t_starts(cfg)})


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
    """Every sweep point of the config (`sweep`), planned."""
    prefix = run_prefix(cfg)
    return [plan_point(cfg, pt, prefix) for pt in sweep(cfg, log)]
