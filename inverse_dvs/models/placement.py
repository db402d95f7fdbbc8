"""Where CogVideoX's parts live and compute: device placement and memory options (offload, VAE slicing and tiling),
the execution device under offload hooks, and the helpers that wait for or free device memory."""

from __future__ import annotations

import contextlib

import torch

# `vae_tiling: auto` tiles on GPUs with less memory than this in total. The untiled decode of 49×480×720 peaks near
# 26 GB on top of the ~11 GB transformer, so 40 GB cards tile and 48 GB and larger ones do not. Decided from the
# card's total memory, never from what happens to be free, so one config gives the same latents on the same GPU model.
UNTILED_VAE_MIN_TOTAL_BYTES = 44 * 2**30

# ... for videos of 49×480×720; the untiled VAE's activations grow with the video's volume (CogVideoX1.5's 81×768×1360
# is 5.0 times as large: about 130 GB untiled, so `auto` tiles it on every card)
UNTILED_VAE_BYTES_PER_VOXEL = 26 * 2**30 / (49 * 480 * 720)

def resolve_vae_tiling(mode: str, offload: str, device: torch.device, voxels: int = 49 * 480 * 720) -> bool:
    """`model.vae_tiling` as it applies on `device` for videos of up to `voxels` = frames × height × width per call:
    `on`/`off` as written; `auto`: on under `offload: sequential` (least memory) and for GPUs with less memory in
    total than the untiled VAE needs beside the transformer (44 GiB at 49×480×720, scaled by the volume), off on the
    CPU. Tiled and untiled encodes give different latents, so the resolved value is what the records store."""
    if mode in ("on", "off"):
        return mode == "on"
    if device.type != "cuda":
        return False
    total = torch.cuda.get_device_properties(device).total_memory
    extra = max(0.0, (voxels - 49 * 480 * 720) * UNTILED_VAE_BYTES_PER_VOXEL)
    return offload == "sequential" or total < UNTILED_VAE_MIN_TOTAL_BYTES + extra

def largest_call(cfg) -> tuple[int, int, int]:
    """(frames, height, width) of the largest model call the config makes: its size, or with `auto` sizes the
    backbone's largest, landscape (its shorter side by its longest). VAE tiling is decided for it, and the compile
    warm-up runs at it (a video of another aspect compiles its own shapes on its first call)."""
    c = cfg.camera
    if c.height != "auto":
        return cfg.model_frames, c.height, c.width
    return cfg.model_frames, *cfg.require_backbone("camera.height").side_range

def place_pipeline(pipe, model_cfg, device: torch.device, vae_tiling: bool) -> None:
    """Memory options and device placement, as every stage applies them: VAE slicing, offload (`model`/`sequential`
    through accelerate hooks on a GPU), VAE tiling as resolved (`resolve_vae_tiling`). With `offload: none` on a GPU
    the T5 text encoder (4.7B parameters, used once per prompt) never moves there: it stays on the CPU and only
    visits the GPU to encode new prompts (`encode_texts`)."""
    if model_cfg.vae_slicing:
        pipe.vae.enable_slicing()
    if model_cfg.offload == "model" and device.type == "cuda":
        pipe.enable_model_cpu_offload(device=device)
    elif model_cfg.offload == "sequential" and device.type == "cuda":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        for name, module in pipe.components.items():
            if isinstance(module, torch.nn.Module) and not (name == "text_encoder" and device.type == "cuda"):
                module.to(device)
    if vae_tiling:
        pipe.vae.enable_tiling()
    else:
        pipe.vae.disable_tiling()
    pipe.set_progress_bar_config(disable=True)

def execution_device(pipe) -> torch.device:
    """Where the transformer computes: its own device, or the offload hooks' target device. (The pipeline's own
    `_execution_device` follows its first component, the text encoder, which may be parked on the CPU.)"""
    dev = pipe.transformer.device
    if dev.type in ("cpu", "meta") and hasattr(pipe.transformer, "_hf_hook"):
        return pipe._execution_device
    return dev

@contextlib.contextmanager
def visiting(module: torch.nn.Module, device: torch.device):
    """Move a parked module to `device` for the duration, then back (no-op when it already lives there or is managed
    by offload hooks)."""
    home = next(module.parameters()).device
    if home == device or hasattr(module, "_hf_hook") or device.type != "cuda":
        yield
        return
    module.to(device)
    try:
        yield
    finally:
        module.to(home)
        torch.cuda.empty_cache()

def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (for timings); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)

def release_memory() -> None:
    """Free what dropped objects held: collect reference cycles (a compiled block refers to itself through its
    wrapper, so a dropped pipeline is only freed by the cycle collector) and return cached GPU blocks."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
