"""Typed configuration: `config.yml` → frozen dataclasses, validated before any model loads.

Every error names the key (dotted path), the value and what is allowed; unknown keys get the nearest valid key
as a suggestion. Relative file paths (videos, trajectory and pose files, prompt files, depth files, local model
folders) are looked up in the config file's folder, then in the project root; `run.work_dir` is relative to the
current directory (`run_all.sh` runs from the project root).

`method: paper | reference` picks the defaults of every key where the paper text and the official code differ
(`METHOD_PRESETS`); a key written in the config (or given with --set) always wins over the preset.
"""

from ..infra.errors import UnresolvedAuto
from .loader import build_trajectory, config_from_dict, config_with, load_config, select
from .markdown import config_reference
from .needs import needed_models
from .paths import PROJECT_ROOT, depth_source, read_prompt, resolve_path
from .presets import METHOD_PRESETS, REFERENCE_NEGATIVE_PROMPT
from .resolve import model_hw, resolve_config, warp_hw
from .schema import (
    DEFAULT_METHOD,
    SECTIONS,
    CameraConfig,
    CaptionConfig,
    ClusterConfig,
    Config,
    DepthConfig,
    EvalConfig,
    InferenceConfig,
    InversionConfig,
    ModelConfig,
    RunConfig,
    Selection,
    SLMConfig,
    TrajectorySpec,
    VideoSpec,
    WarpConfig,
    json_ready,
    section_dict,
)

__all__ = ["DEFAULT_METHOD", "METHOD_PRESETS", "PROJECT_ROOT", "REFERENCE_NEGATIVE_PROMPT", "SECTIONS", "CameraConfig",
           "CaptionConfig", "ClusterConfig", "Config", "DepthConfig", "EvalConfig", "InferenceConfig",
           "InversionConfig", "ModelConfig", "RunConfig", "SLMConfig", "Selection", "TrajectorySpec", "UnresolvedAuto",
           "VideoSpec", "WarpConfig", "build_trajectory", "config_from_dict", "config_reference", "config_with",
           "depth_source", "json_ready", "load_config", "model_hw", "needed_models", "read_prompt", "resolve_config",
           "resolve_path", "section_dict", "select", "warp_hw"]
