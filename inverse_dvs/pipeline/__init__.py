"""The method: `InverseDVSPipeline` runs it whole or step by step (depth, warp, invert, generate), over the video
model and the maths in `core`, with each sweep point's schedule computed once (`plan_sweep`). The stages, the studio,
the benchmarks, the checks and the tests all run the method through here."""

from .geometry import Rendered, visibility_report, visible_fractions
from .latents import ClipMasks, Encoded, Inverted, clip_masks
from .outputs import Caption, Generated, InverseDVSOutput, WarpOutput, WindowResult
from .pipeline import (
    DEFAULT_MODEL,
    InverseDVSPipeline,
    SourceClip,
    WindowHook,
    as_trajectory,
    clip_windows,
    slm_generator_problem,
)
from .schedule import (
    SWEEP_KEYS,
    PointPlan,
    SweepPoint,
    inversion_ends,
    plan_point,
    plan_sweep,
    run_prefix,
    sweep,
    t_starts,
)

__all__ = ["DEFAULT_MODEL", "SWEEP_KEYS", "Caption", "ClipMasks", "Encoded", "Generated", "InverseDVSOutput",
           "InverseDVSPipeline", "Inverted", "PointPlan", "Rendered", "SourceClip", "SweepPoint", "WarpOutput",
           "WindowHook", "WindowResult", "as_trajectory", "clip_masks", "clip_windows", "inversion_ends", "plan_point",
           "plan_sweep", "run_prefix", "slm_generator_problem", "sweep", "t_starts", "visibility_report",
           "visible_fractions"]
