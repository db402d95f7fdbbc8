"""Device and dtype choice from config values (explicit arguments everywhere else; no global state)."""

from __future__ import annotations

import torch


def resolve_device(name: str, state=None) -> torch.device:
    """`auto` → this process's accelerator (its own GPU under `accelerate launch`), else CPU."""
    if name == "auto":
        if state is not None:
            return torch.device(state.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        from .errors import ConfigError

        raise ConfigError(f"config key 'run.device' is {name!r} but no CUDA device is available; use 'auto' or 'cpu'.")
    return dev


def torch_dtype(name: str, device: torch.device) -> torch.dtype:
    """bf16/fp16 on accelerators; CPU always computes in float32 (half precision there is slow and lossy)."""
    if device.type == "cpu":
        return torch.float32
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]
