"""diffusers' step caches on CogVideoX's transformer (`inference.cache`), installed for one sampling run at a time."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from .compile import uncompile_blocks

SAMPLING_CACHES = ("none", "first_block", "faster", "pab", "taylorseer")

@dataclass
class StepClock:
    """The timestep of the transformer call in progress, for cache hooks that schedule by timestep."""

    t: int = 999

    def __call__(self) -> int:
        return self.t

def sampling_cache_config(name: str, clock: StepClock):
    """diffusers' cache hook config for `inference.cache` (settings measured on CogVideoX-5B, see README), or None.

    `first_block`: skip the remaining blocks while the first block's residual changes by < 5 %; `faster`: FasterCache
    (spatial attention reused every 2nd block between t 681 and 0, unconditional branch every 5th step below t 781);
    `pab`: Pyramid Attention Broadcast (spatial attention every 2nd block for t in [100, 800]); `taylorseer`:
    TaylorSeer (features extrapolated for 4 of every 5 steps after the first 3).
    """
    import diffusers

    if name == "none":
        return None
    if name == "first_block":
        return diffusers.FirstBlockCacheConfig(threshold=0.05)
    if name == "faster":
        return diffusers.FasterCacheConfig(
            spatial_attention_block_skip_range=2, spatial_attention_timestep_skip_range=(-1, 681),
            current_timestep_callback=clock, attention_weight_callback=lambda _: 0.3,
            unconditional_batch_skip_range=5, unconditional_batch_timestep_skip_range=(-1, 781), tensor_format="BFCHW")
    if name == "pab":
        return diffusers.PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=2, spatial_attention_timestep_skip_range=(100, 800),
            current_timestep_callback=clock)
    if name == "taylorseer":
        # its default patterns end at "attn" (regex fullmatch), which misses CogVideoX's "attn1": name it
        return diffusers.TaylorSeerCacheConfig(cache_interval=5, disable_cache_before_step=3,
                                               cache_identifiers=[r"transformer_blocks\.\d+\.attn1"])
    raise ValueError(f"unknown sampling cache {name!r}; one of {SAMPLING_CACHES}")

@contextlib.contextmanager
def sampling_cache(pipe, name: str, clock: StepClock):
    """Cache hooks on the transformer for one sampling run only (installed fresh, so no state leaks between outputs,
    and removed after, so inversion never runs with them: K-RNR would amplify their error).

    Compiled blocks run uncompiled meanwhile: the hooks' state changes every step, so dynamo would recompile the
    blocks at each step (and fail with fullgraph) — the cache is the speed-up there. Afterwards every module is
    given back exactly its attributes from before: diffusers leaves an instance `forward` and `_diffusers_hook` on
    the hooked modules, which the compiled blocks' guards would see as a new module (a recompile per layout and
    batch size, and a hard error at dynamo's recompile limit under fullgraph)."""
    config = sampling_cache_config(name, clock)
    if config is None:
        yield
        return
    blocks = list(pipe.transformer.transformer_blocks)
    compiled = [b._compiled_call_impl for b in blocks]
    attributes = {m: set(vars(m)) for m in pipe.transformer.modules()}
    try:
        uncompile_blocks(pipe)
        pipe.transformer.enable_cache(config)
        yield
    finally:
        if pipe.transformer.is_cache_enabled:
            pipe.transformer.disable_cache()
        for m, before in attributes.items():
            for key in set(vars(m)) - before:
                delattr(m, key)
        for b, impl in zip(blocks, compiled, strict=True):
            b._compiled_call_impl = impl
