"""Pipeline benchmark: transformer passes (NFE), model loads, seconds and peak memory of the invert and infer stages.

Default: runs `invert` and `infer` (forced) for the given config in this process and reads their meta.json records,
e.g. `python scripts/bench_pipeline.py --config configs/tiny.yml` (CPU, tiny random checkpoints).
`--real-arch` (CUDA only): builds CogVideoX-5B-I2V's real architecture with random weights (no download) and times one
inversion (inversion.steps) and one output (inference steps × strength, CFG) at 49×480×720 in bf16, without offload
and with model CPU offload, printing peak GPU memory for each.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch


def stage_run(cfg_path: str) -> None:
    from inverse_dvs import infer, invert
    from inverse_dvs.artifacts import read_meta
    from inverse_dvs.config import load_config

    cfg = load_config(cfg_path)
    for name, stage in (("invert", invert), ("infer", infer)):
        t0 = time.perf_counter()
        rc = stage.main(["--config", cfg_path, "--force", "--quiet"])
        secs = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        metas = [m for m in (read_meta(p.parent) for p in Path(cfg.run.work_dir).rglob("meta.json")) if m
                 and m.get("stage") == name]
        loads = {m.get("process_model_loads") for m in metas}
        nfe = sum(m.get("nfe", m.get("sampling_nfe", 0)) or 0 for m in metas)
        print(f"{name}: rc={rc}, {secs:.1f} s wall, {len(metas)} item(s), NFE {nfe}, model loads in process "
              f"{sorted(loads)}, peak RSS so far {rss:.0f} MB")
        if name == "infer":
            for m in metas[:4]:
                print(f"  {m['run_tag']}: NFE per output = inversion {m['inversion_nfe']} + sampling "
                      f"{m['sampling_nfe']} = {(m['inversion_nfe'] or 0) + m['sampling_nfe']}")


def real_arch(steps: int, strength: float, inversion_steps: int, offloads: list[str]) -> None:
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    from inverse_dvs.cogvideo import (
        ModelStats,
        alphas_cumprod,
        decode,
        encode_image_latents,
        encode_prompt,
        encode_video,
        make_v_fn,
    )
    from inverse_dvs.ddim import ddim_invert, ddim_sample, inversion_plan, sampling_schedule
    from inverse_dvs.tiny import SCHEDULER_5B_I2V, _tiny_tokenizer

    dev, dtype = torch.device("cuda"), torch.bfloat16
    with torch.device("cuda"):
        transformer = CogVideoXTransformer3DModel(
            num_attention_heads=48, attention_head_dim=64, in_channels=32, out_channels=16, time_embed_dim=512,
            text_embed_dim=4096, num_layers=42, sample_width=90, sample_height=60, sample_frames=49, patch_size=2,
            temporal_compression_ratio=4, max_text_seq_length=226, use_rotary_positional_embeddings=True,
            use_learned_positional_embeddings=True).to(dtype)
        vae = AutoencoderKLCogVideoX(scaling_factor=0.7, latent_channels=16).to(dtype)
        text_encoder = T5EncoderModel(T5Config(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24,
                                               num_heads=64, feed_forward_proj="gated-gelu")).to(dtype)
    pipe = CogVideoXImageToVideoPipeline(tokenizer=_tiny_tokenizer(), text_encoder=text_encoder, vae=vae,
                                         transformer=transformer, scheduler=CogVideoXDDIMScheduler(**SCHEDULER_5B_I2V))
    pipe.tokenizer.model_max_length = 226
    pipe.vae.enable_slicing()
    pipe.vae.enable_tiling()
    frames = np.random.default_rng(0).integers(0, 255, (49, 480, 720, 3), dtype=np.uint8)
    for offload in offloads:
        if offload == "model":
            pipe.to("cpu")
            pipe.enable_model_cpu_offload(device=dev)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        stats = ModelStats()
        sched = sampling_schedule(steps, strength)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        x0 = encode_video(pipe, frames)
        img = encode_image_latents(pipe, frames[0], x0.shape[1])
        cond, uncond = encode_prompt(pipe, "a video", "", True)
        alphas = alphas_cumprod(pipe)
        inv = ddim_invert(make_v_fn(pipe, img, cond, None, 1.0, stats), x0.to(dev),
                          inversion_plan("t_start", sched.t_start, inversion_steps), alphas)
        torch.cuda.synchronize()
        t_inv = time.perf_counter() - t0
        nfe_inv = stats.nfe
        t1 = time.perf_counter()
        out = ddim_sample(make_v_fn(pipe, img, cond, uncond, 6.0, stats), inv.latent, sched.timesteps,
                          sched.prev_timesteps, alphas)
        decode(pipe, out)
        torch.cuda.synchronize()
        t_out = time.perf_counter() - t1
        print(json.dumps({"offload": offload, "inversion_s": round(t_inv, 1), "inversion_nfe": nfe_inv,
                          "output_s": round(t_out, 1), "sampling_nfe": stats.nfe - nfe_inv,
                          "peak_gpu_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)}))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/tiny.yml")
    p.add_argument("--real-arch", action="store_true")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--strength", type=float, default=0.95)
    p.add_argument("--inversion-steps", type=int, default=30)
    p.add_argument("--offload", nargs="+", default=["none", "model"])
    a = p.parse_args()
    if a.real_arch:
        if not torch.cuda.is_available():
            print("--real-arch needs a CUDA GPU; none is available here")
            return 1
        real_arch(a.steps, a.strength, a.inversion_steps, a.offload)
    else:
        stage_run(a.config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
