"""Stage 3 — DDIM-invert each render with CogVideoX-I2V up to t_start → `{work_dir}/inversions/{trajectory}/{video}/`.

One file per distinct t_start of the inference sweep (`inversion_t{t_start:04d}.safetensors`, keys `x0`, `eps_inv`,
`image_latents`, `timesteps`), so sweeps over guidance, k or seeds reuse it. The model is loaded once per process.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from .artifacts import input_hashes, save_safetensors, sha256
from .cli import get_logger, run_stage
from .config import Config, read_prompt, section_dict, select
from .ddim import ddim_invert, inversion_timesteps, sampling_schedule
from .errors import UserError
from .layout import inversion_dir, inversion_file, result_dir
from .video_io import FrameSelection, read_clip, write_video
from .workqueue import StageRunner, process_state

STAGE = "invert"


def t_starts(cfg: Config) -> list[int]:
    """Distinct first sampling timesteps of the inference sweep (steps × strength)."""
    return sorted({sampling_schedule(n, s).t_start for n in cfg.inference.steps for s in cfg.inference.strength})


def _depends(cfg: Config, prompt: str) -> dict:
    inv = section_dict(cfg.inversion)
    inv.pop("preview", None)
    return {"inversion": inv, "model": section_dict(cfg.model), "prompt": prompt, "t_starts": t_starts(cfg),
            "camera": {k: getattr(cfg.camera, k) for k in ("num_frames", "height", "width", "resize")},
            "dtype": cfg.run.dtype, "seed": cfg.run.seed}


def _header(path: Path) -> dict:
    """The inverse_dvs metadata of an inversion file, {} when absent or unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return json.loads((fh.metadata() or {}).get("inverse_dvs", "{}"))
    except Exception:  # missing, partial or foreign file: not reusable
        return {}


def _body(cfg: Config, args) -> int:
    from tqdm import tqdm

    from .cogvideo import (
        LazyPipeline,
        ModelStats,
        alphas_cumprod,
        decode,
        encode_image_latents,
        encode_prompt,
        encode_video,
        make_v_fn,
        oom_hint,
    )
    from .runtime import resolve_device, torch_dtype

    log = get_logger()
    videos, trajectories = select(cfg, args.only_video, args.only_trajectory)
    state = process_state()
    runner = StageRunner(STAGE, cfg.work_dir, args.force, log, state)
    device = resolve_device(cfg.run.device, state)
    c = cfg.camera
    sel = FrameSelection(c.num_frames, 0, 1, False)
    stats = ModelStats()
    prompt_cache: dict[str, tuple] = {}

    model = LazyPipeline(cfg, device, torch_dtype(cfg.run.dtype, device), stats, log, STAGE)

    for traj in trajectories:
        for v in videos:
            render = result_dir(cfg.work_dir, traj.name, v.name) / "render.mp4"
            prompt = read_prompt(v)

            def inputs(v=v, traj=traj, render=render) -> dict[str, str]:
                if not render.is_file():
                    raise UserError(f"render for trajectory '{traj.name}', video '{v.name}' is missing ({render}); "
                                    "run `python -m inverse_dvs.warp` first.")
                return input_hashes({"render": render})

            def compute(folder: Path, v=v, traj=traj, render=render, prompt=prompt) -> tuple[list[str], dict]:
                # A file made from the same render and settings is kept when only the set of t_starts changed
                # (e.g. a strength was added to the sweep): its header records this key.
                deps = {k: val for k, val in _depends(cfg, prompt).items() if k != "t_starts"}
                key = hashlib.sha256((json.dumps(deps, sort_keys=True) + sha256(render)).encode()).hexdigest()
                files = {t: inversion_file(cfg.work_dir, traj.name, v.name, t) for t in t_starts(cfg)}
                todo = [t for t, f in files.items() if _header(f).get("key") != key]
                for t in sorted(set(files) - set(todo)):
                    log.info("invert trajectory=%s video=%s: t_start=%d reused", traj.name, v.name, t)
                nfe0 = stats.nfe
                if todo:  # the model is loaded and the render encoded only when something is left to invert
                    p = model.get()
                    clip = read_clip(render, sel, (c.height, c.width), c.resize)
                    gen = torch.Generator("cpu").manual_seed(cfg.run.seed)
                    x0 = encode_video(p, clip.frames, cfg.inversion.posterior, gen)
                    img = encode_image_latents(p, clip.frames[0], x0.shape[1], cfg.inversion.posterior, gen)
                    if prompt not in prompt_cache:
                        prompt_cache[prompt] = encode_prompt(p, prompt, "", cfg.inversion.guidance_scale != 1.0)
                    cond, uncond = prompt_cache[prompt]
                    v_fn = make_v_fn(p, img, cond, uncond, cfg.inversion.guidance_scale, stats)
                    alphas = alphas_cumprod(p)
                for t_start in todo:
                    grid = inversion_timesteps(t_start, cfg.inversion.steps)
                    bar = tqdm(total=len(grid), desc=f"invert t≤{t_start}", disable=args.quiet)
                    try:
                        inv = ddim_invert(v_fn, x0.to(img.device), grid, alphas, cfg.inversion.refine_iterations,
                                          cfg.inversion.save_trajectory, progress=lambda _i, bar=bar: bar.update())
                    except torch.cuda.OutOfMemoryError as exc:
                        raise oom_hint(exc) from None
                    finally:
                        bar.close()
                    tensors = {"x0": x0, "eps_inv": inv.latent, "image_latents": img,
                               "timesteps": torch.tensor(grid, dtype=torch.int64)}
                    if inv.trajectory:
                        tensors["trajectory"] = torch.stack(inv.trajectory)
                    save_safetensors(files[t_start], tensors, {"t_start": t_start, "prompt": prompt, "key": key,
                                                               "alpha_bar_t_start": float(alphas[t_start])})
                    if cfg.inversion.preview:
                        write_video(folder / f"eps_inv_t{t_start:04d}.mp4", decode(p, inv.latent), clip.fps)
                alpha_bar = {str(t): _header(f)["alpha_bar_t_start"] for t, f in files.items()}
                return [f.name for f in files.values()], {"t_starts": list(files), "nfe": stats.nfe - nfe0,
                                                          "process_model_loads": stats.loads, "alpha_bar": alpha_bar}

            runner.run(f"trajectory={traj.name} video={v.name}", inversion_dir(cfg.work_dir, traj.name, v.name),
                       _depends(cfg, prompt), inputs, compute)
    log.info("invert: %s", json.dumps({"model_loads": stats.loads, "nfe": stats.nfe}))
    return runner.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())

