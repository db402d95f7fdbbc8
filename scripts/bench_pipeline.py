"""Pipeline benchmark: transformer passes (NFE), model loads, seconds and peak memory per output.

Default: runs the invert and infer stages (forced) in one process, as run_all.sh does, for the given config and
prints each output's record, e.g. `python scripts/bench_pipeline.py --config configs/tiny.yml` (CPU, tiny models).

`--real-arch`: CogVideoX-5B-I2V's real architecture with random weights built directly on the device (speed does not
depend on weight values; no download, no 20 GB file) in bf16 at 49×480×720 (`--arch 1.5`: CogVideoX1.5-5B-I2V's at
81×768×1360), placed as the stages place it (T5 parked
on the CPU, VAE tiling as `auto` resolves it). Each variant makes one output at the method's settings (paper: 30
inversion steps to t_start, 47 CFG sampling steps) through the pipeline object the stages run — `encode`,
`.invert`, `.generate` of `InverseDVSPipeline` (SLM, K-RNR, region CFG, the step cache, decode) — and prints one
JSON line:
encode, inversion, sampling and decode seconds, compile warm-up, peak GPU memory allocated and reserved, NFE.
Variants: `eager`, `compiled`, `compiled+CACHE` (default: eager compiled compiled+faster), each with `--offload`
(default: none). Models are rebuilt only when the offload setting changes, and freed (`gc` + `empty_cache`) before
the next, so one variant's memory never inflates the next one's peak. `--arch tiny --device cpu` (`tiny15`) runs the
same code on the tiny checkpoint (a smoke test, not a measurement). `scripts/gpu_check.sh` is the one-call GPU check
built on this.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

GB = 2**30


def stage_run(cfg_path: str) -> None:
    from inverse_dvs import chain
    from inverse_dvs.config import load_config
    from inverse_dvs.infra.artifacts import read_meta

    cfg = load_config(cfg_path)
    t0 = time.perf_counter()
    rc = chain.main(["invert", "infer", "--config", cfg_path, "--force", "--quiet"])
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    metas = [m for m in (read_meta(p.parent) for p in Path(cfg.run.work_dir).rglob("meta.json")) if m]
    inv = [m for m in metas if m.get("stage") == "invert"]
    out = [m for m in metas if m.get("stage") == "infer"]
    loads = {m.get("process_model_loads") for m in inv + out}
    print(f"invert + infer in one process: rc={rc}, {secs:.1f} s wall, {len(inv)} inversion item(s), {len(out)} "
          f"output(s), model loads in the process {sorted(loads)}, peak RSS {rss:.0f} MB")
    for m in out[:4]:
        print(f"  {m['run_tag']}: NFE per output = inversion {m['inversion_nfe']} + sampling {m['sampling_nfe']} = "
              f"{m['nfe_per_output']}; sampling {m['sampling_seconds']} s, decode {m['decode_seconds']} s")


@dataclasses.dataclass(frozen=True)
class Arch:
    """What a benchmark model is: how to build it placed on a device, and its video size."""

    name: str  # 5b | 1.5 (real architectures, random weights) | tiny | tiny15 (the tiny checkpoints)
    frames: int
    height: int
    width: int
    checkpoint: str  # inversion.model: the real hub id (its configs, when on disk, are checked) or a tiny folder

    @property
    def real(self) -> bool:
        return not self.name.startswith("tiny")


ARCHS = {"5b": Arch("5b", 49, 480, 720, "THUDM/CogVideoX-5b-I2V"),
         "1.5": Arch("1.5", 81, 768, 1360, "THUDM/CogVideoX1.5-5B-I2V")}  # 44,880 tokens per pass (5b: 17,550)


def tiny_arch(model: str = "5b") -> Arch:
    """The tiny checkpoint standing in for `model` (5b or 1.5)."""
    from inverse_dvs.testing.tiny import TINY15_FRAMES, TINY_FRAMES, TINY_HEIGHT, TINY_WIDTH

    if model == "1.5":
        return Arch("tiny15", TINY15_FRAMES, 128, 224, "checkpoints/tiny-cogvideox15-i2v")
    return Arch("tiny", TINY_FRAMES, TINY_HEIGHT, TINY_WIDTH, "checkpoints/tiny-cogvideox-i2v")


def bench_config(arch: Arch, method: str = "paper", compile_mode: str = "off", backend: str = "inductor",
                 offload: str = "none", cache: str = "none", overrides: tuple[str, ...] = (),
                 frames: int | None = None):
    """The project's own config for one benchmark variant: the method's settings at the architecture's size
    (`frames`: a clip of that many frames, in windows of the architecture's when longer; README → Long videos)."""
    from inverse_dvs.config import load_config, resolve_config

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yml"
        path.write_text(
            f"method: {method}\nvideos: [{{path: bench.mp4, name: bench, prompt: a video}}]\n"
            "trajectories: {left: {preset: orbit_left}}\n"
            f"camera: {{num_frames: {frames or arch.frames}, window: {arch.frames}, height: {arch.height}, "
            f"width: {arch.width}}}\n"
            f"inversion: {{model: {arch.checkpoint}}}\nmodel: {{offload: {offload}, lora: null}}\n"
            f"run: {{compile: '{compile_mode}', compile_backend: {backend}}}\ninference: {{cache: {cache}}}\n",
            encoding="utf-8")
        return resolve_config(load_config(path, list(overrides)))


def make_model(cfg, arch: Arch, device: torch.device, log: logging.Logger):
    """A `models.video_model.LazyPipeline` for `cfg`: a real architecture with random weights built on `device` (5b,
    1.5), or the tiny checkpoint loaded as the stages load it (tiny, tiny15)."""
    from inverse_dvs.infra.device import torch_dtype
    from inverse_dvs.models.placement import largest_call, place_pipeline, resolve_vae_tiling
    from inverse_dvs.models.video_model import LazyPipeline, ModelStats
    from inverse_dvs.testing.tiny import cogvideox_5b_i2v_pipeline

    dtype = torch_dtype(cfg.run.dtype, device)
    tiling = resolve_vae_tiling(cfg.model.vae_tiling, cfg.model.offload, device, math.prod(largest_call(cfg)))

    def build():
        # Built where it will run (no 20 GB copy), with a 1-layer T5 of the real width: the text encoder runs once
        # per prompt. It starts on the CPU, as `from_pretrained` leaves it, and is placed as the stages place it.
        pipe = cogvideox_5b_i2v_pipeline(dtype, device=device if cfg.model.offload == "none" else "cpu",
                                         text_encoder=False, family=arch.name)
        pipe.text_encoder.to("cpu")
        place_pipeline(pipe, cfg.model, device, tiling)
        return pipe

    return LazyPipeline(cfg, device, dtype, ModelStats(), log, stage="bench",
                        build=build if arch.real else None)


class Synthetic(NamedTuple):
    frames: np.ndarray  # [T, H, W, 3] uint8: the render (random)
    visibility: np.ndarray  # [T, H, W] float32
    depth: np.ndarray  # [T, H, W] float32


def synthetic_item(cfg, arch: Arch, seed: int = 0, frames: int | None = None) -> Synthetic:
    """Random frames as the render, a visibility with a hole band that grows across the clip (about 20 % occluded at
    the end, like an orbit) and a depth ramp; `frames` long (default the architecture's)."""
    n = frames or arch.frames
    rng = np.random.default_rng(seed)
    video = rng.integers(0, 255, (n, arch.height, arch.width, 3), dtype=np.uint8)
    visible = np.ones((n, arch.height, arch.width), np.float32)
    for t in range(n):
        visible[t, :, : int(0.2 * arch.width * t / max(n - 1, 1))] = 0.0
    depth = np.broadcast_to(np.linspace(1.0, 10.0, arch.width, dtype=np.float32), (n, arch.height, arch.width)).copy()
    return Synthetic(video, visible, depth)


def _peaks(device: torch.device) -> dict:
    if device.type != "cuda":
        return {"peak_allocated_gb": None, "peak_reserved_gb": None}
    return {"peak_allocated_gb": round(torch.cuda.max_memory_allocated(device) / GB, 2),
            "peak_reserved_gb": round(torch.cuda.max_memory_reserved(device) / GB, 2)}


def _reset_peaks(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def one_output(model, cfg, item: Synthetic) -> dict:
    """Everything one output costs, through the pipeline users run (`InverseDVSPipeline` on this model): encode (with
    the prompt embeddings) and the inversion of window 0 to the point's end, then `generate` (noise initialisation,
    guided sampling under the config's cache, decode; a clip longer than one window in windows, each later one
    inverted and sampled there). Peak memory is per phase: encode + inversion, then the rest."""
    from inverse_dvs import InverseDVSPipeline
    from inverse_dvs.models.placement import synchronize

    pipe = InverseDVSPipeline(cfg, device=model.device, video_model=model)
    pipe.set_progress_bar_config(disable=True)
    plan = pipe.plan()
    prompt = cfg.videos[0].prompt
    model.get((pipe.inversion_batch, *pipe.sampling_batches([plan])))  # any compiling happens before the clock
    dev = model.device
    _reset_peaks(dev)
    synchronize(dev)
    t0 = time.perf_counter()
    enc = pipe.encode(item.frames[:cfg.model_frames])
    pipe.embeddings(prompt, "" if pipe.inversion_uses_cfg else None)
    synchronize(dev)
    t1 = time.perf_counter()
    inv = pipe.invert(enc, prompt, plan.inversion_end)
    synchronize(dev)
    t2 = time.perf_counter()
    invert_peaks = _peaks(dev)
    _reset_peaks(dev)
    out = pipe.generate(item.frames, item.visibility, item.depth, prompt, plan=plan, inversion=inv)
    synchronize(dev)
    t3 = time.perf_counter()
    sample_peaks = _peaks(dev)
    peak = {k: None if invert_peaks[k] is None else max(invert_peaks[k], sample_peaks[k]) for k in invert_peaks}
    info = out.info
    return {"encode_s": round(t1 - t0, 2), "inversion_s": round(t2 - t1, 2), "sampling_s": info["sampling_seconds"],
            "decode_s": info["decode_seconds"], "output_s": round(t3 - t0, 2),
            "windows": len(info.get("windows", [])) or 1,
            "inversion_nfe": info["inversion_nfe"], "sampling_nfe": info["sampling_nfe"], "nfe": info["nfe_per_output"],
            "compiled": model.compiled and cfg.inference.cache == "none", "cache": cfg.inference.cache,
            "vae_tiling": model.vae_tiling, **peak,
            "peak_invert_allocated_gb": invert_peaks["peak_allocated_gb"],
            "peak_sample_allocated_gb": sample_peaks["peak_allocated_gb"]}


def forward_seconds(model, batch: int, repeats: int = 3) -> float:
    """Median seconds of one transformer pass at `batch` latents on zeros of the model's shapes (after one pass)."""
    from inverse_dvs.models.compile import warm_up
    from inverse_dvs.models.placement import largest_call, synchronize

    p = model.get()
    shape = largest_call(model.cfg)
    warm_up(p, *shape, (batch,))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        warm_up(p, *shape, (batch,))  # synchronises at its end
        times.append(time.perf_counter() - t0)
    synchronize(model.device)
    return round(statistics.median(times), 4)


def real_arch(a) -> None:
    dev = torch.device(a.device)
    arch = ARCHS[a.arch] if a.arch in ARCHS else tiny_arch("1.5" if a.arch == "tiny15" else "5b")
    log = logging.getLogger("inverse_dvs")
    by_offload: dict[str, list[str]] = {}
    for v in a.variants:
        for off in a.offload:
            by_offload.setdefault(off, []).append(v)
    for offload, variants in by_offload.items():
        compiled = any(v.startswith("compiled") for v in variants)
        cfg = bench_config(arch, a.method, "on" if compiled else "off", a.backend, offload,
                           overrides=tuple(a.set), frames=a.frames)
        item = synthetic_item(cfg, arch, frames=a.frames)
        model = make_model(cfg, arch, dev, log)
        # eager first: the blocks are compiled on the first compiled variant and stay compiled
        for v in sorted(variants, key=lambda name: name.startswith("compiled")):
            cache = v.split("+", 1)[1] if "+" in v else "none"
            model.compile = v.startswith("compiled")  # eager variants come first, before anything is compiled
            vcfg = dataclasses.replace(cfg, inference=dataclasses.replace(cfg.inference, cache=cache))
            row = {"variant": v, "offload": offload, **one_output(model, vcfg, item),
                   "compile_warmup_s": model.stats.extra.get("compile_warmup_seconds")}
            print(json.dumps(row), flush=True)
        model.unload()  # gone before the next model is built


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/tiny.yml")
    p.add_argument("--real-arch", action="store_true")
    p.add_argument("--arch", default="5b", choices=["5b", "1.5", "tiny", "tiny15"])
    p.add_argument("--device", default="cuda")
    p.add_argument("--method", default="paper", choices=["paper", "reference"])
    p.add_argument("--offload", nargs="*", default=["none"], choices=["none", "model", "sequential"])
    p.add_argument("--variants", nargs="*", default=["eager", "compiled", "compiled+faster"])
    p.add_argument("--backend", default="inductor", help="torch.compile backend for the compiled variants")
    p.add_argument("--frames", type=int, default=None,
                   help="clip length (default: the architecture's); longer clips run in windows as users run them")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="config override for every variant, e.g. --set inference.steps=[25]")
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_grad_enabled(False)
    if a.real_arch:
        if a.device.startswith("cuda") and not torch.cuda.is_available():
            print("--real-arch on CUDA needs a GPU; none is available here (try --arch tiny --device cpu)")
            return 1
        real_arch(a)
    else:
        stage_run(a.config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
