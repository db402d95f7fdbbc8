"""Save CogVideoX-5B-I2V's real architecture with random weights in the Hugging Face layout (about 20 GB in bf16), so
`run_all.sh` itself can be timed on a GPU without downloading anything. Speed and memory do not depend on weight
values; outputs are noise. Point a config at it: `inversion: {model: checkpoints/random-cogvideox-5b-i2v}`.

Usage: python scripts/make_random_checkpoint.py [--out checkpoints/random-cogvideox-5b-i2v] [--dtype bf16]
       [--light-text-encoder]   (a 1-layer T5 of the real width: 9 GB less to write, for runs that reuse prompts)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from inverse_dvs.testing.tiny import cogvideox_5b_i2v_pipeline


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="checkpoints/random-cogvideox-5b-i2v")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--light-text-encoder", action="store_true")
    a = p.parse_args(argv)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[a.dtype]
    t0 = time.perf_counter()
    pipe = cogvideox_5b_i2v_pipeline(dtype, text_encoder=not a.light_text_encoder)
    n = sum(p.numel() for m in (pipe.transformer, pipe.vae, pipe.text_encoder) for p in m.parameters())
    print(f"built {n / 1e9:.2f} B parameters in {time.perf_counter() - t0:.1f} s")
    out = Path(a.out)
    pipe.save_pretrained(out, safe_serialization=True, max_shard_size="5GB")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"saved {out} ({size / 2**30:.1f} GiB) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
