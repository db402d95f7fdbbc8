"""Depth benchmark: frames/s and peak memory of the depth stage's Depth Anything path.

CPU: the tiny checkpoint (checkpoints/tiny-depth-anything, built by setup_env.sh). GPU (when CUDA is available): the
real Depth-Anything-V2 architecture (Small/Large configs, random weights, no download) at 518 px, fp16.
Usage: python scripts/bench_depth.py [--frames 49] [--height 480] [--width 720] [--batch 8]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _real_architecture(out: Path, size: str) -> Path:
    """Depth-Anything-V2 config (Small: ViT-S, Large: ViT-L) with random weights, saved in the HF layout."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, DPTImageProcessor
    from transformers.models.dinov2 import Dinov2Config

    vit = {"small": (384, 12, 6, [2, 5, 8, 11], [48, 96, 192, 384], 64),
           "large": (1024, 24, 16, [4, 11, 17, 23], [256, 512, 1024, 1024], 256)}[size]
    hidden, layers, heads, idx, neck, fusion = vit
    backbone = Dinov2Config(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=4 * hidden, patch_size=14, image_size=518,
                            out_indices=[i + 1 for i in idx], reshape_hidden_states=False)
    cfg = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=hidden, patch_size=14,
                              neck_hidden_sizes=neck, fusion_hidden_size=fusion, depth_estimation_type="relative")
    DepthAnythingForDepthEstimation(cfg).save_pretrained(out)
    DPTImageProcessor(do_resize=True, size={"height": 518, "width": 518}, keep_aspect_ratio=True,
                      ensure_multiple_of=14, resample=3, do_pad=False,
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(out)
    return out


def run(model_path: str, device: torch.device, dtype: torch.dtype, frames: np.ndarray, batch: int) -> str:
    from inverse_dvs.models.depth_anything import DepthAnything

    est = DepthAnything(model_path, device, dtype)
    est.disparity(frames[:batch], batch, progress=False)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    est.disparity(frames, batch, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    fps = len(frames) / (time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu = f", peak GPU {torch.cuda.max_memory_allocated() / 2**20:.0f} MB" if device.type == "cuda" else ""
    return f"{fps:.1f} frames/s, peak RSS {rss:.0f} MB{gpu}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=49)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=720)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    frames = np.random.default_rng(0).integers(0, 255, (a.frames, a.height, a.width, 3), dtype=np.uint8)
    tiny = Path("checkpoints/tiny-depth-anything")
    if tiny.is_dir():
        print(f"cpu tiny ({a.frames}x{a.height}x{a.width}, batch {a.batch}, {a.threads} threads): "
              + run(str(tiny), torch.device("cpu"), torch.float32, frames, a.batch))
    else:
        print("cpu tiny: skipped (run `python -m inverse_dvs.tiny` first)")
    if torch.cuda.is_available():
        for size in ("small", "large"):
            with tempfile.TemporaryDirectory() as tmp:
                path = _real_architecture(Path(tmp), size)
                print(f"cuda Depth-Anything-V2-{size} (random weights, 518 px, fp16, batch {a.batch}): "
                      + run(str(path), torch.device("cuda"), torch.float16, frames, a.batch))
    else:
        print("cuda: not available on this machine")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
