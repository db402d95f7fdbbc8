"""Stage 4 — SLM + adaptive K-RNR noise initialisation and region-aware DDIM sampling → output.mp4 per sweep point.

Every combination of the list-valued `inference` keys (steps, strength, guidance_scale, preservation_scale, k_order,
adaptive_order, seeds) becomes `{work_dir}/results/{trajectory}/{video}/{run_tag}/` with output.mp4,
comparison.mp4 (input | render | output) and meta.json. The model is loaded once per process, each prompt encoded
once, and each render's inversion reused across combinations.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .artifacts import input_hashes, read_meta
from .cli import get_logger, run_stage
from .config import Config, read_prompt, section_dict, select
from .ddim import ddim_sample, sampling_schedule
from .errors import UserError
from .krnr import adaptive_krnr, krnr
from .layout import depth_dir, inversion_file, result_dir, run_dir
from .masks import background_mask, occlusion_mask
from .slm import stochastic_latent_modulation
from .video_io import FrameSelection, read_clip, titled_side_by_side, write_video
from .workqueue import StageRunner, process_state

STAGE = "infer"


@dataclass(frozen=True)
class SweepPoint:
    steps: int
    strength: float
    guidance_scale: float
    preservation_scale: float
    k_order: float
    adaptive_order: float | None
    seed: int

    @property
    def run_tag(self) -> str:
        def n(x) -> str:
            return "none" if x is None else f"{x:g}"

        return (f"steps{self.steps}_str{n(self.strength)}_cfg{n(self.guidance_scale)}_pres{n(self.preservation_scale)}"
                f"_k{n(self.k_order)}_d{n(self.adaptive_order)}_seed{self.seed}")


def sweep(cfg: Config) -> list[SweepPoint]:
    inf = cfg.inference
    seeds = inf.seeds or [cfg.run.seed]
    points = []
    for steps, strength, g, p, k, d, seed in itertools.product(inf.steps, inf.strength, inf.guidance_scale,
                                                               inf.preservation_scale, inf.k_order,
                                                               inf.adaptive_order, seeds):
        points.append(SweepPoint(steps, strength, g, g if p is None else p, k, d, seed))
    return list(dict.fromkeys(points))  # a preservation_scale of null equal to a listed value is one point


def load_inversion(path: Path, t_start: int) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise UserError(f"inversion '{path}' for t_start={t_start} is missing; rerun `python -m inverse_dvs.invert` "
                        "with the same inference.steps/strength (one inversion per t_start).")
    tensors = load_file(str(path))
    if int(tensors["timesteps"][-1]) != t_start:
        raise UserError(f"inversion '{path}' ends at t={int(tensors['timesteps'][-1])}, but sampling starts at "
                        f"t_start={t_start}; rerun `python -m inverse_dvs.invert --force`.")
    return tensors


def _body(cfg: Config, args) -> int:
    from tqdm import tqdm

    from .cogvideo import (
        LazyPipeline,
        ModelStats,
        alphas_cumprod,
        decode,
        encode_prompt,
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
    stats = ModelStats()
    prompt_cache: dict[tuple[str, str], tuple] = {}
    points = sweep(cfg)

    model = LazyPipeline(cfg, device, torch_dtype(cfg.run.dtype, device), stats, log, STAGE)

    for traj in trajectories:
        for v in videos:
            rdir = result_dir(cfg.work_dir, traj.name, v.name)
            masks_path, ddir = rdir / "masks.npz", depth_dir(cfg.work_dir, v.name)
            warp_meta = read_meta(rdir) or {}
            fps = cfg.inference.fps or warp_meta.get("fps", 8.0)
            prompt = read_prompt(v)
            cache: dict[str, object] = {}

            def item_data(rdir=rdir, masks_path=masks_path, ddir=ddir, cache=cache):
                # Loaded on first use only, so a fully up-to-date item costs no decoding.
                if not cache:
                    with np.load(masks_path) as z:
                        visible = z["visible"]
                    with np.load(ddir / "depth.npz") as z:
                        depth = z["depth"]
                    sel = FrameSelection(c.num_frames)
                    cache["occluded"] = occlusion_mask(visible, cfg.slm.occlusion_threshold)
                    cache["background"] = background_mask(depth, cfg.slm.background_threshold)
                    cache["input"] = read_clip(rdir / "input.mp4", sel, (c.height, c.width), c.resize).frames
                    cache["render"] = read_clip(rdir / "render.mp4", sel, (c.height, c.width), c.resize).frames
                return cache

            for pt in points:
                sched = sampling_schedule(pt.steps, pt.strength)
                inv_path = inversion_file(cfg.work_dir, traj.name, v.name, sched.t_start)
                depends = {"point": pt.__dict__, "adain": cfg.inference.adain,
                           "negative_prompt": cfg.inference.negative_prompt, "fps": fps, "prompt": prompt,
                           "slm": section_dict(cfg.slm), "model": section_dict(cfg.model),
                           "model_id": cfg.inversion.model, "dtype": cfg.run.dtype}

                def inputs(rdir=rdir, masks_path=masks_path, ddir=ddir, inv_path=inv_path, sched=sched,
                           pt=pt) -> dict[str, str]:
                    for needed, stage in ((masks_path, "warp"), (ddir / "depth.npz", "depth")):
                        if not needed.is_file():
                            raise UserError(f"'{needed}' is missing; run `python -m inverse_dvs.{stage}` first.")
                    if not inv_path.is_file():
                        raise UserError(f"inversion '{inv_path}' (t_start={sched.t_start} for steps={pt.steps}, "
                                        f"strength={pt.strength}) is missing; run `python -m inverse_dvs.invert` "
                                        "first.")
                    return input_hashes({"inversion": inv_path, "masks": masks_path, "depth": ddir / "depth.npz",
                                         "render": rdir / "render.mp4", "input": rdir / "input.mp4"})

                def compute(folder: Path, pt=pt, sched=sched, inv_path=inv_path, prompt=prompt, fps=fps, traj=traj,
                            item_data=item_data):
                    p = model.get()
                    data = item_data()
                    inv = load_inversion(inv_path, sched.t_start)
                    alphas = alphas_cumprod(p)
                    a_bar = float(alphas[sched.t_start])
                    dev = p._execution_device
                    x0, eps = inv["x0"].to(dev), inv["eps_inv"].to(dev)
                    occ = torch.from_numpy(data["occluded"]).to(dev)[None, :, None]  # [1, t, 1, h, w]
                    if occ.shape[1] != x0.shape[1] or occ.shape[-2:] != x0.shape[-2:]:
                        raise UserError(f"masks {tuple(occ.shape)} do not match the latents {tuple(x0.shape)}; rerun "
                                        "warp and invert with the same camera settings (--force).")
                    gen = torch.Generator("cpu").manual_seed(pt.seed)
                    if cfg.slm.enabled:
                        bg = torch.from_numpy(data["background"]).to(dev)[None, :, None]
                        x0, eps = stochastic_latent_modulation(x0, eps, occ, bg, gen, cfg.slm.mode)
                    if pt.adaptive_order is None:
                        x_init = krnr(x0, eps, a_bar, pt.k_order)
                    else:
                        x_init = adaptive_krnr(x0, eps, a_bar, pt.k_order, pt.adaptive_order, cfg.inference.adain)
                    key = (prompt, cfg.inference.negative_prompt)
                    if key not in prompt_cache:
                        prompt_cache[key] = encode_prompt(p, prompt, cfg.inference.negative_prompt, True)
                    cond, uncond = prompt_cache[key]
                    if pt.guidance_scale == pt.preservation_scale:
                        guidance: torch.Tensor | float = float(pt.guidance_scale)
                    else:
                        guidance = torch.where(occ, pt.guidance_scale, pt.preservation_scale).float()
                    v_fn = make_v_fn(p, inv["image_latents"].to(dev), cond, uncond, guidance, stats)
                    nfe0 = stats.nfe
                    bar = tqdm(total=len(sched.timesteps), desc=f"sample {pt.run_tag}", disable=args.quiet)
                    try:
                        latents = ddim_sample(v_fn, x_init, sched.timesteps, sched.prev_timesteps, alphas,
                                              progress=lambda _i, bar=bar: bar.update())
                        frames = decode(p, latents)
                    except torch.cuda.OutOfMemoryError as exc:
                        raise oom_hint(exc) from None
                    finally:
                        bar.close()
                    write_video(folder / "output.mp4", frames, fps)
                    write_video(folder / "comparison.mp4", titled_side_by_side(
                        [data["input"], data["render"], frames], ["input", f"render ({traj.name})", "output"]), fps)
                    # transformer passes that made this t_start's inversion: one per step, plus one per refinement
                    # iteration, doubled under inversion CFG
                    inv_nfe = len(inv["timesteps"]) * (1 + cfg.inversion.refine_iterations) * (
                        2 if cfg.inversion.guidance_scale != 1.0 else 1)
                    return ["output.mp4", "comparison.mp4"], {
                        "params": pt.__dict__, "run_tag": pt.run_tag, "t_start": sched.t_start,
                        "alpha_bar_t_start": a_bar, "sampling_nfe": stats.nfe - nfe0, "inversion_nfe": inv_nfe,
                        "process_model_loads": stats.loads, "prompt": prompt}

                runner.run(f"trajectory={traj.name} video={v.name} run={pt.run_tag}",
                           run_dir(cfg.work_dir, traj.name, v.name, pt.run_tag), depends, inputs, compute)
    log.info("infer: %s", json.dumps({"model_loads": stats.loads, "nfe": stats.nfe, "sweep_points": len(points)}))
    return runner.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
