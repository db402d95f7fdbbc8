"""One orbit of a clip: re-render a video along a camera that circles the scene, and save it.

    python examples/orbit.py clip.mp4 --prompt "a dog runs on the beach" --out orbit.mp4

The weights come from `python -m inverse_dvs.weights download` (or the Hugging Face cache); a prompt left out is
written by the captioner (`caption.model`). The offline demo on the tiny random checkpoints (its output is noise):

    python examples/orbit.py data/demo.mp4 --model checkpoints/tiny-cogvideox-i2v \
        --depth-model checkpoints/tiny-depth-anything --prompt "a red ball" --out orbit.mp4
"""

from __future__ import annotations

import argparse
import sys

from inverse_dvs import InverseDVSPipeline, UserError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", help="the clip to re-render (any aspect; the model's frames are taken from its start)")
    p.add_argument("--prompt", default=None, help="what the video shows (default: a caption)")
    p.add_argument("--degrees", type=float, default=20.0, help="how far the camera circles to the left")
    p.add_argument("--model", default="THUDM/CogVideoX-5b-I2V", help="the video model: a Hugging Face id or folder")
    p.add_argument("--method", default="reference", choices=["paper", "reference"],
                   help="reference (the default: the official code's settings, with its LoRA) or paper")
    p.add_argument("--depth-model", default=None, help="Depth Anything V2 checkpoint (default: the config's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="orbit.mp4")
    a = p.parse_args(argv)
    try:
        pipe = InverseDVSPipeline.from_pretrained(a.model, a.method, device=a.device,
                                                  **({"depth": {"model": a.depth_model}} if a.depth_model else {}))
        out = pipe(a.video, {"preset": "orbit_left", "amount": a.degrees}, prompt=a.prompt)
    except UserError as exc:
        print(f"orbit: {exc}", file=sys.stderr)
        return 2
    path = out.save(a.out)
    print(f"{path}: {len(out.frames)} frames at {out.frames.shape[2]}×{out.frames.shape[1]}, {out.info['run_tag']}, "
          f"{out.info['nfe_per_output']} transformer passes, prompt {out.info['prompt']!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
