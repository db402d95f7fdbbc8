"""CogVideoX-I2V model access shared by the inversion and inference stages (loading, encoding, the v-model).

Only diffusers' own classes are used, by import. Latents follow diffusers' transformer layout [B, t, C, h, w],
scaled by the VAE scaling factor.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..infra.errors import UserError
from .lazy import Lazy


@dataclass
class ModelStats:
    """Counters a stage reports in its meta.json (model loads per process, transformer passes)."""

    loads: int = 0
    nfe: int = 0
    extra: dict = field(default_factory=dict)


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


def load_pipeline(model: str, model_cfg, device: torch.device, dtype: torch.dtype, stats: ModelStats,
                  vae_tiling: bool = False):
    """`CogVideoXImageToVideoPipeline.from_pretrained` from a local folder or cached hub id; LoRA and memory options
    (`place_pipeline`). Raises WeightsMissingError (never downloads) when the weights are not on disk."""
    from diffusers import CogVideoXImageToVideoPipeline

    from ..weights import resolve_model

    path = resolve_model(model)
    pipe = CogVideoXImageToVideoPipeline.from_pretrained(path, dtype=dtype)
    stats.loads += 1
    if model_cfg.lora:
        # Off by default: the paper's method is training-free; a LoRA changes the model being inverted.
        lora_path = resolve_model(model_cfg.lora, model_cfg.lora_weight_name)
        kw = {"weight_name": model_cfg.lora_weight_name} if model_cfg.lora_weight_name else {}
        pipe.load_lora_weights(lora_path, adapter_name="user", **kw)
        pipe.set_adapters(["user"], [model_cfg.lora_scale])
    place_pipeline(pipe, model_cfg, device, vae_tiling)
    return pipe


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


def compile_choice(mode: str, offload: str, device: torch.device, backend: str) -> tuple[bool, str]:
    """Whether `run.compile` compiles the transformer blocks here, and why `auto` does not (empty when it does, or
    when nothing needs saying: `off`, or `auto` on a CPU). `on` + `offload: sequential` is refused by the config."""
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return False, ""
    if mode == "on":
        return True, ""
    if offload == "sequential":
        return False, ("model.offload: sequential puts accelerate hooks on every layer inside the blocks, which a "
                       "block compiled as one graph cannot trace")
    if backend == "inductor":
        from torch.utils._triton import has_triton

        if not has_triton():
            return False, "the inductor backend needs Triton on CUDA, and it is not installed"
    return True, ""


def compile_blocks(pipe, backend: str = "inductor") -> int:
    """Regional compilation: each CogVideoX transformer block compiled once (fullgraph, static shapes). The blocks
    share one compiled graph per input layout (the first block's input is a strided view, the others' contiguous)
    and batch size, instead of one graph of the whole model. Returns the number of blocks."""
    blocks = pipe.transformer.transformer_blocks
    for block in blocks:
        block.compile(fullgraph=True, dynamic=False, backend=backend)
    return len(blocks)


def uncompile_blocks(pipe) -> None:
    """Undo `compile_blocks`: the blocks run eagerly again (`nn.Module.compile` keeps its wrapper in this field)."""
    for block in pipe.transformer.transformer_blocks:
        block._compiled_call_impl = None


def rotary_embeddings(pipe, latent_frames: int, height: int, width: int, device: torch.device):
    """The transformer's rotary position embeddings for latents of t × h × w, as the pipeline prepares them; None for
    a transformer with learned positional embeddings (CogVideoX-5B-I2V)."""
    if not pipe.transformer.config.use_rotary_positional_embeddings:
        return None
    s = pipe.vae_scale_factor_spatial
    return pipe._prepare_rotary_positional_embeddings(height * s, width * s, latent_frames, device)


def latent_padding(pipe, latent_frames: int) -> int:
    """Latent frames put in front of `latent_frames` so the transformer's temporal patch (`patch_size_t`,
    CogVideoX1.5: 2) divides them, as diffusers' pipeline pads: 21 → 22; 0 without a temporal patch."""
    from ..core.backbone import of_pipeline

    return of_pipeline(pipe).padding(latent_frames)


def ofs_embedding(pipe, batch: int, device: torch.device) -> torch.Tensor | None:
    """The `ofs` input of a transformer with an ofs embedding (CogVideoX1.5-I2V: 2.0, the value diffusers' pipeline
    passes), one per batch element; None for one without (CogVideoX-5B-I2V)."""
    if not pipe.transformer.config.ofs_embed_dim:
        return None
    from ..core.backbone import of_pipeline

    return torch.full((batch,), of_pipeline(pipe).family.ofs, device=device, dtype=torch.float32)


def warm_up(pipe, frames: int, height: int, width: int, batch_sizes: tuple[int, ...] = (1, 2)) -> None:
    """One transformer pass per batch size (1: inversion or sampling without CFG, 2: CFG sampling) on zeros of the
    run's shapes (frames × height × width, the latent frames padded as the sampler pads them), so compilation happens
    here and not inside the first item."""
    cfg = pipe.transformer.config
    dev, dtype = execution_device(pipe), pipe.transformer.dtype
    t = (frames - 1) // pipe.vae_scale_factor_temporal + 1
    t += latent_padding(pipe, t)
    h, w = height // pipe.vae_scale_factor_spatial, width // pipe.vae_scale_factor_spatial
    rotary = rotary_embeddings(pipe, t, h, w, dev)
    for b in batch_sizes:
        hidden = torch.zeros(b, t, cfg.in_channels, h, w, device=dev, dtype=dtype)
        text = torch.zeros(b, cfg.max_text_seq_length, cfg.text_embed_dim, device=dev, dtype=dtype)
        with torch.inference_mode():
            pipe.transformer(hidden_states=hidden, encoder_hidden_states=text,
                             timestep=torch.full((b,), 999, device=dev, dtype=torch.long), image_rotary_emb=rotary,
                             ofs=ofs_embedding(pipe, b, dev), return_dict=False)
    synchronize(dev)


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


class LazyPipeline:
    """Loads the pipeline on first use (a fully up-to-date run never loads it), once per process; shared by the
    stages a process runs (`python -m inverse_dvs.chain invert infer`), with one prompt-embedding cache.

    Compiles the blocks when `run.compile` asks (`compile_choice`), warming up only the batch sizes the stages
    will run compiled (`get(batch_sizes)`). A failed load is not retried for later items; a failed compile or
    warm-up falls back to eager once, with a warning, and the process goes on with the same loaded model."""

    def __init__(self, cfg, device: torch.device, dtype: torch.dtype, stats: ModelStats, log, stage: str = "model",
                 build: Callable[[], object] | None = None):
        """`build`: makes the placed pipeline instead of `load_pipeline` (the benchmarks' random-weight models)."""
        self.cfg, self.device, self.dtype, self.stats, self.log, self.stage = cfg, device, dtype, stats, log, stage
        self._build = build
        self.vae_tiling = resolve_vae_tiling(cfg.model.vae_tiling, cfg.model.offload, device,
                                             math.prod(largest_call(cfg)))
        self.compile, self._no_compile_reason = compile_choice(cfg.run.compile, cfg.model.offload, device,
                                                               cfg.run.compile_backend)
        self.embeddings: dict[str, torch.Tensor] = {}  # text → T5 embedding [1, L, D], for every stage
        self._pipe = Lazy(self._load, f"the video model {cfg.inversion.model}", _oom_advice)
        self._warm: set[int] = set()
        self.backbone = None  # core.backbone.Backbone of the loaded model

    @property
    def compiled(self) -> bool:
        """Whether the blocks run compiled now (compiled and warmed up for at least one batch size)."""
        return bool(self._warm)

    def get(self, batch_sizes: tuple[int, ...] = ()):
        """The loaded pipeline; with compile on, its blocks compiled and warmed up for `batch_sizes` (the batch sizes
        the caller runs compiled: none when a step cache runs them uncompiled)."""
        pipe = self._pipe.get()
        todo = sorted(set(batch_sizes) - self._warm)
        if self.compile and todo:
            self._compile(pipe, todo)
        return pipe

    def _load(self):
        import time

        if self.log.getEffectiveLevel() > logging.INFO:  # --quiet: no loading bars either
            from diffusers.utils import logging as diffusers_logging

            diffusers_logging.disable_progress_bar()
        t0 = time.perf_counter()
        if self._build is not None:
            pipe = self._build()
            self.stats.loads += 1
        else:
            pipe = load_pipeline(self.cfg.inversion.model, self.cfg.model, self.device, self.dtype, self.stats,
                                 self.vae_tiling)
        self.backbone = check_backbone(pipe, self.cfg)
        self.stats.extra["load_seconds"] = round(time.perf_counter() - t0, 2)
        self.log.info("%s: model %s (%s) loaded in %.1f s (%d load(s) in this process; VAE tiling %s)", self.stage,
                      self.cfg.inversion.model, self.backbone.name, self.stats.extra["load_seconds"], self.stats.loads,
                      "on" if self.vae_tiling else "off")
        if self._no_compile_reason:
            self.log.warning("%s: run.compile is auto, but the transformer blocks run eager here: %s.", self.stage,
                             self._no_compile_reason)
        return pipe

    def _compile(self, pipe, batch_sizes: list[int]) -> None:
        import time

        t0 = time.perf_counter()
        backend = self.cfg.run.compile_backend
        try:
            n = len(pipe.transformer.transformer_blocks)
            if not self._warm:
                compile_blocks(pipe, backend)
            warm_up(pipe, *largest_call(self.cfg), tuple(batch_sizes))
        except Exception as exc:  # any compiler failure (or OOM while compiling): same model, eager
            import torch._dynamo as dynamo

            uncompile_blocks(pipe)
            self.compile = False
            self._warm.clear()
            dynamo.reset()
            release_memory()
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            self.stats.extra["compile_failed"] = reason
            self.log.warning("%s: compiling the transformer blocks (run.compile %s, run.compile_backend %s) failed, "
                             "so they run eager (same results, slower): %s. Set run.compile: off to skip the attempt.",
                             self.stage, self.cfg.run.compile, backend, reason)
            return
        self._warm.update(batch_sizes)
        seconds = time.perf_counter() - t0
        self.stats.extra["compile_warmup_seconds"] = round(self.stats.extra.get("compile_warmup_seconds", 0.0)
                                                           + seconds, 2)
        self.log.info("%s: %d transformer blocks compiled (%s) and warmed up for batch size(s) %s in %.1f s",
                      self.stage, n, backend, ", ".join(map(str, batch_sizes)), seconds)

    def unload(self) -> None:
        """Drop the pipeline and give its memory back (a later `get` loads it again)."""
        self._pipe.drop()
        self._warm.clear()
        self.embeddings.clear()
        release_memory()

    def embed(self, texts: list[str]) -> list[torch.Tensor]:
        """T5 embeddings [1, L, D] of each text, each encoded once per process (the texts not seen before in one
        visit of the text encoder to the GPU)."""
        new = [t for t in dict.fromkeys(texts) if t not in self.embeddings]
        if new:
            self.embeddings.update(zip(new, encode_texts(self.get(), new, self.log), strict=True))
        return [self.embeddings[t] for t in texts]


def _oom_advice(exc: Exception) -> Exception | None:
    """An out-of-memory load becomes the offload advice (`oom_hint`), and what it held is given back."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        release_memory()
        return oom_hint(exc)
    return None


def lazy_pipeline(cfg, state, log) -> LazyPipeline:
    """The LazyPipeline of this process for the config: its device (accelerate's per-process GPU under
    `accelerate launch`) and dtype."""
    from ..infra.device import resolve_device, torch_dtype

    device = resolve_device(cfg.run.device, state)
    return LazyPipeline(cfg, device, torch_dtype(cfg.run.dtype, device), ModelStats(), log)


def check_backbone(pipe, cfg):
    """The loaded model's core.backbone.Backbone; UserError when it is no known family, or the config's frame
    count or explicit size is not one it runs at (the config loader checks the same from the files on disk; this
    covers a model built in the process, e.g. the benchmarks' random weights)."""
    from ..core.backbone import UnknownBackbone, of_pipeline

    try:
        bb = of_pipeline(pipe)
    except UnknownBackbone as exc:
        raise UserError(f"the video model '{cfg.inversion.model}': {exc}") from None
    c = cfg.camera
    key = "camera.window" if cfg.may_window else "camera.num_frames"
    problem = bb.frames_problem(cfg.model_frames, key) or (c.height != "auto" and bb.size_problem(c.height, c.width))
    if problem:
        raise UserError(problem)
    return bb



def execution_device(pipe) -> torch.device:
    """Where the transformer computes: its own device, or the offload hooks' target device. (The pipeline's own
    `_execution_device` follows its first component, the text encoder, which may be parked on the CPU.)"""
    dev = pipe.transformer.device
    if dev.type in ("cpu", "meta") and hasattr(pipe.transformer, "_hf_hook"):
        return pipe._execution_device
    return dev


@contextlib.contextmanager
def _visiting(module: torch.nn.Module, device: torch.device):
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


def _to_pixels(frames: np.ndarray, device, dtype) -> torch.Tensor:
    """frames [T, H, W, 3] uint8 → [1, 3, T, H, W] in [-1, 1]."""
    x = torch.as_tensor(frames, device=device).permute(3, 0, 1, 2).unsqueeze(0)
    return (x.to(torch.float32) / 127.5 - 1.0).to(dtype)


def _encode(pipe, pixels: torch.Tensor, posterior: str, generator: torch.Generator | None) -> torch.Tensor:
    dist = pipe.vae.encode(pixels).latent_dist
    # `mode` (default) is deterministic; `sample` draws from the posterior with the run's generator.
    z = dist.mode() if posterior == "mode" else dist.sample(generator=generator)
    return z.permute(0, 2, 1, 3, 4)  # [B, t, C, h, w]


def encode_video(pipe, frames: np.ndarray, posterior: str = "mode",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """frames [T, H, W, 3] uint8 → scaled latents x0 [1, p + t, C, h, w] float32 in the transformer's layout:
    t = (T − 1)/4 + 1 latent frames, after p = `latent_padding` copies of the first one (CogVideoX1.5: 21 → 22; the
    padding frame sits where diffusers' pipeline puts it, under the image condition, and `decode` drops it)."""
    dev, dtype = execution_device(pipe), pipe.vae.dtype
    with torch.inference_mode():
        z = _encode(pipe, _to_pixels(frames, dev, dtype), posterior, generator)
    s = pipe.vae_scale_factor_spatial
    if z.shape[-2:] != (frames.shape[1] // s, frames.shape[2] // s):
        raise UserError(f"the VAE encoded {frames.shape[1]}×{frames.shape[2]} frames to {z.shape[-2]}×{z.shape[-1]} "
                        f"latent cells instead of {frames.shape[1] // s}×{frames.shape[2] // s}: its tiles (VAE tiling "
                        "on) do not divide this size evenly. Set model.vae_tiling: off, or another size.")
    z = z.float() * pipe.vae_scaling_factor_image
    pad = latent_padding(pipe, z.shape[1])
    return (torch.cat([z[:, :1]] * pad + [z], dim=1) if pad else z).clone()


def encode_image_latents(pipe, first_frame: np.ndarray, latent_frames: int, posterior: str = "mode",
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """The I2V condition, as the pipeline builds it: the first frame encoded on its own, then zero latent frames.

    first_frame [H, W, 3] uint8 → [1, t, C, h, w] float32; t: the latent frames with their padding (`encode_video`),
    so the image is over the padding frame where there is one, as in diffusers' pipeline.
    """
    dev, dtype = execution_device(pipe), pipe.vae.dtype
    with torch.inference_mode():
        z = _encode(pipe, _to_pixels(first_frame[None], dev, dtype), posterior, generator).float()
    scale = pipe.vae_scaling_factor_image
    z = z * (1 / scale) if pipe.vae.config.invert_scale_latents else z * scale  # (1 / scale: as diffusers rounds)
    pad = torch.zeros((1, latent_frames - 1, *z.shape[2:]), device=z.device, dtype=z.dtype)
    return torch.cat([z, pad], dim=1).clone()


def sampling_latents(pipe, mode: str, inversion: dict[str, torch.Tensor], render: np.ndarray,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x0 and the image condition the sampler starts from, both float [1, t, C, h, w] on the model's device.

    `inversion`: the ones stored with the inversion (`x0`, `image_latents`). `resample` (official code): the render
    [T, H, W, 3] uint8 and its first frame re-encoded as VAE posterior samples drawn with `generator` (the run seed).
    """
    dev = execution_device(pipe)
    if mode == "inversion":
        return inversion["x0"].to(dev), inversion["image_latents"].to(dev)
    if mode == "resample":
        img = encode_image_latents(pipe, render[0], inversion["x0"].shape[1], "sample", generator)
        return encode_video(pipe, render, "sample", generator).to(dev), img.to(dev)
    raise ValueError(f"unknown vae_latents mode {mode!r}; one of ('inversion', 'resample')")


@contextlib.contextmanager
def _library_warnings_off():
    """transformers and diffusers warn per call about truncated prompts; we say it once per prompt instead."""
    loggers = [logging.getLogger(n) for n in ("transformers", "diffusers")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def encode_texts(pipe, texts: list[str], log: logging.Logger | None = None) -> list[torch.Tensor]:
    """T5 embeddings [1, L, D] of each text, in one visit of a parked text encoder to the GPU. Each text is encoded
    on its own, as the pipeline encodes a prompt or a negative prompt. A text longer than the model's text length
    is truncated by the pipeline; `log` gets one warning saying what is dropped."""
    max_len = pipe.transformer.config.max_text_seq_length
    dev = execution_device(pipe)
    with _library_warnings_off():
        for text in texts:
            ids = pipe.tokenizer(text, add_special_tokens=True).input_ids
            if log is not None and len(ids) > max_len:
                dropped = pipe.tokenizer.decode(ids[max_len - 1:-1], skip_special_tokens=True)
                log.warning("the prompt %r is %d tokens long; the text encoder reads %d, so this end is ignored: %r",
                            text[:40] + ("…" if len(text) > 40 else ""), len(ids), max_len, dropped[:200])
        with torch.inference_mode(), _visiting(pipe.text_encoder, dev):
            return [pipe.encode_prompt(text, do_classifier_free_guidance=False, max_sequence_length=max_len,
                                       device=dev)[0].clone() for text in texts]


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


def decode(pipe, latents: torch.Tensor, padding: int = 0) -> np.ndarray:
    """Scaled latents [1, padding + t, C, h, w] → frames [T, H, W, 3] uint8 of the t real latent frames (the
    `padding` frames in front, `encode_video`'s, are dropped as diffusers' pipeline drops them)."""
    with torch.inference_mode():
        z = latents[:, padding:].to(execution_device(pipe), pipe.vae.dtype).permute(0, 2, 1, 3, 4) \
            / pipe.vae_scaling_factor_image
        video = pipe.vae.decode(z).sample  # [1, 3, T, H, W] in [-1, 1]
    frames = ((video[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return frames.permute(1, 2, 3, 0).cpu().numpy()


def alphas_cumprod(pipe) -> torch.Tensor:
    """The scheduler's ᾱ table [num_train_timesteps] in float64 (ᾱ[999] = 0 for zero-terminal-SNR models)."""
    return pipe.scheduler.alphas_cumprod.to(torch.float64).cpu()


def oom_hint(exc: BaseException) -> UserError:
    return UserError(f"out of GPU memory ({str(exc).splitlines()[0][:160]}). Set model.offload: model (about 16 GB "
                     "for 5B) or model.offload: sequential (slowest, least memory, never compiled), and keep "
                     "model.vae_slicing: true / model.vae_tiling: on.")
