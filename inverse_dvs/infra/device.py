"""Device and dtype choice from config values (explicit arguments everywhere else; no global state)."""

from __future__ import annotations

import functools

import torch


def resolve_device(name: str, state=None) -> torch.device:
    """The device this process computes on. `auto`: this process's accelerator, else CPU. Under a launch of several
    processes (`state`: workqueue.Processes) `auto` and `cuda` mean this process's own GPU (accelerate's device for
    its local rank); an explicit `cuda:N` would put every process on GPU N, so it is refused there."""
    from .errors import ConfigError

    if state is not None and state.count > 1 and name.startswith("cuda"):
        if name == "cuda":
            return torch.device(state.device)
        raise ConfigError(f"config key 'run.device' is {name!r}, but this run has {state.count} processes "
                          "(run.gpus or `accelerate launch`), each on its own device; a fixed device would put them "
                          "all on one. Set run.device: auto (or cuda) and choose the GPUs with run.gpus.")
    if name == "auto":
        if state is not None:
            return torch.device(state.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"config key 'run.device' is {name!r} but no CUDA device is available; use 'auto' or 'cpu'.")
    return dev


def torch_dtype(name: str, device: torch.device) -> torch.dtype:
    """bf16/fp16 on accelerators; CPU always computes in float32 (half precision there is slow and lossy)."""
    if device.type == "cpu":
        return torch.float32
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse rather than hand it back to the OS after each large free.

    A CPU warp allocates and frees the same few-MB buffers for every frame; memory handed back returns as fresh pages
    that the kernel must fault in and zero. Measured on the first 49-frame pass at 576×1024 in a fresh process: about
    2,000 page faults and 10 ms of system time per frame without this, 1,100 and 5 ms with it, and none to 100 per
    frame in later passes. Process-wide; the warp stage calls it in its own process.
    Returns False (and changes nothing) where the C library is not glibc.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3  # glibc's malloc.h
    # buffers up to 32 MiB (glibc's maximum) come from the heap, and the heap keeps up to 1 GiB of free memory
    settings = ((m_mmap_threshold, 32 << 20), (m_trim_threshold, 1 << 30), (m_top_pad, 64 << 20))
    return all(mallopt(option, value) == 1 for option, value in settings)


@functools.cache
def end_process_group_at_exit() -> None:
    """Destroy torch.distributed's process groups when this process exits normally, while the interpreter is still
    whole. Without it, gloo's worker threads may outlive the interpreter and abort the process at exit (SIGABRT,
    "terminate called without an active exception") after its work is done, at random. Destroying is local (no
    collective), so processes may end hours apart. Call it once the default group exists; later calls add nothing."""
    import atexit

    import torch.distributed as dist

    def end() -> None:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()

    atexit.register(end)
