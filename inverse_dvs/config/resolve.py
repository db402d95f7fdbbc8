"""The one explicit step after loading a config that reads anything besides the config file: the video model's
family from its config files (`infra.hub.read_backbone`, no weights loaded), which resolves the camera's `auto`
keys, and each video's model size (its file is probed). Every entry point calls `resolve_config` once; loading a
config (`load_config`, `config_from_dict`) stays pure data and checks."""

from __future__ import annotations

import dataclasses
import logging

from ..core.backbone import UnknownBackbone
from ..infra.errors import ConfigError
from ..infra.hub import read_backbone
from ..infra.video_io import video_size
from .loader import check_config
from .schema import Config, VideoSpec


def resolve_config(cfg: Config) -> Config:
    """The config with its video model's family (`cfg.backbone`) read from the model's config files when they are on
    this machine: the camera's `auto` keys that do not depend on the video resolved, explicit sizes and frame counts
    checked against the family (ConfigError naming the key), and the official LoRA turned off for a family it was
    not trained for. Without the files, `auto` keys stay `auto` (what needs them says so; `weights download` still
    works). Resolving a resolved config changes nothing."""
    if cfg.resolved:
        return cfg
    cfg = dataclasses.replace(cfg, resolved=True)
    c = cfg.camera
    try:
        bb = read_backbone(cfg.inversion.model)
    except UnknownBackbone as exc:
        raise ConfigError(f"config key 'inversion.model' is '{cfg.inversion.model}', but {exc} Point it at a "
                          "CogVideoX-5B-I2V or CogVideoX1.5-5B-I2V checkpoint (README → Backbones).") from None
    if bb is None:
        return cfg
    auto = {k: bb.default_frames for k in ("num_frames", "window") if getattr(c, k) == "auto"}
    if c.height == "auto" and bb.fixed:
        auto["height"], auto["width"] = bb.table_hw
    cfg = dataclasses.replace(cfg, camera=dataclasses.replace(c, **auto), backbone=bb)
    c = cfg.camera
    if c.height != "auto" and (problem := bb.size_problem(c.height, c.width)):
        raise ConfigError(problem)
    key = "camera.window" if cfg.may_window else "camera.num_frames"  # (both resolved above)
    if problem := bb.frames_problem(cfg.model_frames, key):
        raise ConfigError(problem)
    log = logging.getLogger("inverse_dvs")
    if c.warp_size and c.height == "auto":
        if "camera.warp_size" in dict(cfg.custom):
            raise ConfigError(f"config key 'camera.warp_size' {c.warp_size} needs explicit camera.height and "
                              "camera.width: with `auto` each video gets the model size of its own aspect. Set both, "
                              "or warp_size: null.")
        log.info("method: reference warps at camera.warp_size %s, the official code's decode size for "
                 "CogVideoX-5B-I2V's 480×720; with %s and `auto` sizes each video is warped at its own model size "
                 "instead.", c.warp_size, bb.name)
        cfg = dataclasses.replace(cfg, camera=dataclasses.replace(c, warp_size=None))
    if cfg.model.lora and cfg.method == "reference" and not bb.family.reference_lora \
            and "model.lora" not in dict(cfg.custom):
        log.warning("method: reference loads the official code's LoRA (%s), which was trained for CogVideoX-5B-I2V "
                    "only; inversion.model is %s, so the LoRA is off. Set model.lora to a LoRA made for it to use one.",
                    cfg.model.lora, bb.name)
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, lora=None, lora_weight_name=None))
    check_config(cfg)  # again, with `auto` resolved (e.g. an overlap against the model's window)
    return cfg


def model_hw(cfg: Config, video: VideoSpec) -> tuple[int, int]:
    """(height, width) the model runs `video` at (`Config.model_hw` of its file's size, probed once per file
    version; UserError naming the file when it is no readable video)."""
    c = cfg.camera
    return (c.height, c.width) if c.height != "auto" else cfg.model_hw(video_size(video.path))


def warp_hw(cfg: Config, video: VideoSpec) -> tuple[int, int]:
    """(height, width) `video` is decoded, given depth and warped at (`camera.warp_size`, else `model_hw`)."""
    return tuple(cfg.camera.warp_size) if cfg.camera.warp_size else model_hw(cfg, video)
