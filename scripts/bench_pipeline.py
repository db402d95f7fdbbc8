"""Pipeline benchmark: transformer passes (NFE), model loads, seconds and peak memory per output.

Default: runs the invert and infer stages (forced) in one process, as run_all.sh does, for the given config and
prints each output's record, e.g. `python scripts/bench_pipeline.py --config configs/tiny.yml` (CPU, tiny models).

`--real-arch`: CogVideoX-5B-I2V's real architecture with random weights (speed does not depend on weight values; no
download) on CUDA in bf16 at 49×480×720, placed as the stages place it (T5 parked on the CPU, VAE tiling auto).
Per variant — eager, compiled (each transformer block, inductor), compiled + each step cache — it prints one JSON
line per output: inversion s (inversion.steps, no CFG), sampling s (steps × strength, CFG), VAE encode and decode s,
compile warm-up s, peak GPU memory allocated and reserved, NFE. `--offload none model sequential` adds one eager
output per offload setting for its memory. `--arch tiny --device cpu` runs the same code on the tiny checkpoint (a
smoke test of the script, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import time
from pathlib import Path

import numpy as np
import torch


def stage_run(cfg_path: str) -> None:
    from inverse_dvs import chain
    from inverse_dvs.artifacts import read_meta
    from inverse_dvs.config import load_config

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


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def one_output(pipe, frames: np.ndarray, steps: int, strength: float, inversion_steps: int, cache: str,
               dev: torch.device) -> dict:
    """Everything one output costs: encode, invert (no CFG), sample (CFG 6, the given cache), decode."""
    from inverse_dvs.cogvideo import (
        ModelStats,
        StepClock,
        alphas_cumprod,
        decode,
        encode_image_latents,
        encode_prompt,
        encode_video,
        make_v_fn,
        sampling_cache,
    )
    from inverse_dvs.ddim import ddim_invert, ddim_sample, inversion_plan, sampling_schedule

    stats = ModelStats()
    sched = sampling_schedule(steps, strength)
    alphas = alphas_cumprod(pipe)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    _sync(dev)
    t0 = time.perf_counter()
    x0 = encode_video(pipe, frames)
    img = encode_image_latents(pipe, frames[0], x0.shape[1])
    cond, uncond = encode_prompt(pipe, "a video", "", True)
    _sync(dev)
    t1 = time.perf_counter()
    inv = ddim_invert(make_v_fn(pipe, img, cond, None, 1.0, stats), x0,
                      inversion_plan("t_start", sched.t_start, inversion_steps), alphas)
    _sync(dev)
    t2 = time.perf_counter()
    nfe_inv = stats.nfe
    clock = StepClock()
    with sampling_cache(pipe, cache, clock):
        latents = ddim_sample(make_v_fn(pipe, img, cond, uncond, 6.0, stats, clock), inv.latent, sched.timesteps,
                              sched.prev_timesteps, alphas)
    _sync(dev)
    t3 = time.perf_counter()
    decode(pipe, latents)
    _sync(dev)
    t4 = time.perf_counter()
    gb = 2**30
    return {"encode_s": round(t1 - t0, 2), "inversion_s": round(t2 - t1, 2), "sampling_s": round(t3 - t2, 2),
            "decode_s": round(t4 - t3, 2), "output_s": round(t4 - t0, 2), "inversion_nfe": nfe_inv,
            "sampling_nfe": stats.nfe - nfe_inv,
            "peak_allocated_gb": round(torch.cuda.max_memory_allocated(dev) / gb, 2) if dev.type == "cuda" else None,
            "peak_reserved_gb": round(torch.cuda.max_memory_reserved(dev) / gb, 2) if dev.type == "cuda" else None}


def real_arch(a) -> None:
    from inverse_dvs.cogvideo import ModelStats, compile_blocks, load_pipeline, place_pipeline, warm_up
    from inverse_dvs.config import ModelConfig
    from inverse_dvs.tiny import TINY_FRAMES, TINY_HEIGHT, TINY_WIDTH, cogvideox_5b_i2v_pipeline

    dev = torch.device(a.device)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    if a.arch == "5b":
        h, w, t = 480, 720, 49
        build = lambda: cogvideox_5b_i2v_pipeline(dtype, device="cpu")  # noqa: E731 - placed below
    else:
        h, w, t = TINY_HEIGHT, TINY_WIDTH, TINY_FRAMES
        build = lambda: load_pipeline("checkpoints/tiny-cogvideox-i2v", ModelConfig(offload="none"),  # noqa: E731
                                      torch.device("cpu"), dtype, ModelStats())
    frames = np.random.default_rng(0).integers(0, 255, (t, h, w, 3), dtype=np.uint8)
    runs = []
    for offload in a.offload:  # memory per offload setting (eager, no cache)
        pipe = build()
        place_pipeline(pipe, ModelConfig(offload=offload), dev, ModelStats())
        runs.append({"variant": f"eager offload={offload}",
                     **one_output(pipe, frames, a.steps, a.strength, a.inversion_steps, "none", dev)})
        print(json.dumps(runs[-1]), flush=True)
        del pipe
    pipe = build()
    place_pipeline(pipe, ModelConfig(offload="none"), dev, ModelStats())
    if "eager" in a.variants:
        runs.append({"variant": "eager", **one_output(pipe, frames, a.steps, a.strength, a.inversion_steps, "none",
                                                      dev)})
        print(json.dumps(runs[-1]), flush=True)
    compiled = [v for v in a.variants if v.startswith("compiled")]
    if compiled:
        t0 = time.perf_counter()
        compile_blocks(pipe, a.backend)
        warm_up(pipe)
        warmup = round(time.perf_counter() - t0, 1)
        for v in compiled:
            cache = v.split("+", 1)[1] if "+" in v else "none"
            runs.append({"variant": v, "compile_warmup_s": warmup,
                         **one_output(pipe, frames, a.steps, a.strength, a.inversion_steps, cache, dev)})
            print(json.dumps(runs[-1]), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/tiny.yml")
    p.add_argument("--real-arch", action="store_true")
    p.add_argument("--arch", default="5b", choices=["5b", "tiny"])
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--strength", type=float, default=0.95)
    p.add_argument("--inversion-steps", type=int, default=30)
    p.add_argument("--offload", nargs="*", default=["none", "model", "sequential"])
    p.add_argument("--variants", nargs="*", default=["eager", "compiled", "compiled+first_block", "compiled+faster",
                                                     "compiled+pab", "compiled+taylorseer"])
    p.add_argument("--backend", default="inductor", help="torch.compile backend for the compiled variants")
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
