"""Which model weights a config's stages load (what preflight checks and `python -m inverse_dvs.weights` fetches)."""

from __future__ import annotations

from ..infra.hub import ModelNeed
from .paths import read_prompt
from .schema import Config


def needed_models(cfg: Config, stages: tuple[str, ...] = ("depth", "caption", "invert", "infer")) -> list[ModelNeed]:
    """Every model the given stages will load with this config."""
    needs = []
    if "depth" in stages and cfg.depth.backend == "depth_anything":
        needs.append(ModelNeed(cfg.depth.model, "depth.model"))
    if "caption" in stages and cfg.caption.source != "off" and any(not read_prompt(v) for v in cfg.videos):
        needs.append(ModelNeed(cfg.caption.model, "caption.model"))
        if not {"invert", "infer"} & set(stages):  # its tokenizer bounds the caption's length
            needs.append(ModelNeed(cfg.inversion.model, "inversion.model"))
    if "evaluate" in stages:
        needs.append(ModelNeed(cfg.eval.clip_model, "eval.clip_model"))
    if {"invert", "infer"} & set(stages):
        needs.append(ModelNeed(cfg.inversion.model, "inversion.model"))
        if cfg.model.lora:
            needs.append(ModelNeed(cfg.model.lora, "model.lora", cfg.model.lora_weight_name))
    return needs
