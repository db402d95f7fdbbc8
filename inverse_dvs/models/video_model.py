"""The CogVideoX-I2V pipeline as the method uses it: loaded through diffusers' own `from_pretrained` (with a LoRA),
checked against its family, placed, compiled when `run.compile` asks, loaded lazily once per process
(`LazyPipeline`), with its counters and one prompt-embedding cache. Latents follow diffusers' transformer layout
[B, t, C, h, w], scaled by the VAE scaling factor."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..infra.errors import UserError
from . import context_parallel
from .attention import use_attention_backend
from .compile import compile_blocks, compile_choice, uncompile_blocks, warm_up
from .lazy import Lazy
from .placement import largest_call, place_pipeline, release_memory, resolve_vae_tiling
from .text import encode_texts


@dataclass
class ModelStats:
    """Counters a stage reports in its meta.json (model loads per process, transformer passes)."""

    loads: int = 0
    nfe: int = 0
    extra: dict = field(default_factory=dict)

def load_pipeline(model: str, model_cfg, device: torch.device, dtype: torch.dtype, stats: ModelStats,
                  vae_tiling: bool = False):
    """`CogVideoXImageToVideoPipeline.from_pretrained` from a local folder or cached hub id; LoRA and memory options
    (`place_pipeline`). Raises WeightsMissingError (never downloads) when the weights are not on disk."""
    from diffusers import CogVideoXImageToVideoPipeline

    from ..infra.hub import resolve_model

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
        if self.compile and cfg.run.context_parallel.degree > 1:  # `on` is refused by the config
            self.compile, self._no_compile_reason = False, ("run.context_parallel splits each call over processes, "
                                                            "and its hooks are not compiled yet")
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
        backend, cp = self.cfg.run.attention_backend, self.cfg.run.context_parallel
        if cp.degree > 1:  # each call split over this process's group (the stages joined it: workqueue)
            group = context_parallel.join(cp.ulysses, cp.ring)
            backend = context_parallel.enable(pipe.transformer, group, backend)
            self.stats.extra["context_parallel"] = group.record()
        else:
            use_attention_backend(pipe.transformer, backend)
        self.stats.extra["attention_backend"] = backend
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

def lazy_pipeline(cfg, device: torch.device, log) -> LazyPipeline:
    """The LazyPipeline for the config on `device` (under `accelerate launch`, each process's own GPU), in the
    config's dtype there (`infra.device.torch_dtype`)."""
    from ..infra.device import torch_dtype

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

def alphas_cumprod(pipe) -> torch.Tensor:
    """The scheduler's ᾱ table [num_train_timesteps] in float64 (ᾱ[999] = 0 for zero-terminal-SNR models)."""
    return pipe.scheduler.alphas_cumprod.to(torch.float64).cpu()

def oom_hint(exc: BaseException) -> UserError:
    return UserError(f"out of GPU memory ({str(exc).splitlines()[0][:160]}). Set model.offload: model (about 16 GB "
                     "for 5B) or model.offload: sequential (slowest, least memory, never compiled), and keep "
                     "model.vae_slicing: true / model.vae_tiling: on.")
