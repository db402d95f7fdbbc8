"""inverse-dvs: training-free dynamic view synthesis as an inverse problem (arXiv 2506.08004).

    from inverse_dvs import InverseDVSPipeline

    pipe = InverseDVSPipeline.from_pretrained("THUDM/CogVideoX-5b-I2V")
    out = pipe(video="clip.mp4", trajectory="orbit_left", prompt="a dog runs on the beach")

The public names are imported on first use, so `import inverse_dvs` stays light (no torch, no diffusers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

_PUBLIC = {
    "InverseDVSPipeline": "inverse_dvs.pipeline",
    "InverseDVSOutput": "inverse_dvs.pipeline",
    "WarpOutput": "inverse_dvs.pipeline",
    "Generated": "inverse_dvs.pipeline",
    "Inverted": "inverse_dvs.pipeline",
    "WindowResult": "inverse_dvs.pipeline",
    "Keyframes": "inverse_dvs.core.camera",
    "UserError": "inverse_dvs.infra.errors",
    "ConfigError": "inverse_dvs.infra.errors",
}
__all__ = ["ConfigError", "Generated", "InverseDVSOutput", "InverseDVSPipeline", "Inverted", "Keyframes", "UserError",
           "WarpOutput", "WindowResult", "__version__"]

if TYPE_CHECKING:
    from .core.camera import Keyframes
    from .infra.errors import ConfigError, UserError
    from .pipeline import Generated, InverseDVSOutput, InverseDVSPipeline, Inverted, WarpOutput, WindowResult


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'inverse_dvs' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
