"""The method as one object (`InverseDVS`: encode → invert → noise initialisation → guided DDIM → decode) over the
video model, with each sweep point's schedule computed once (`plan_sweep`). The stages, the benchmarks, the checks
and the tests all run the method through here."""

from .method import Encoded, InverseDVS, Output, StageModel, inversion_tensors, item_inputs
from .schedule import PointPlan, plan_point, plan_sweep

__all__ = ["Encoded", "InverseDVS", "Output", "PointPlan", "StageModel", "inversion_tensors", "item_inputs",
           "plan_point", "plan_sweep"]
