"""Stage 4 — noise initialisation (SLM + K-RNR) and region-aware DDIM sampling → output.mp4 per sweep point.

Every combination of the list-valued `inference` keys (steps, strength, guidance_scale, preservation_scale, k_order,
adaptive_order, seeds) becomes `{work_dir}/results/{trajectory}/{video}/{run_tag}/` with output.mp4,
comparison.mp4 (input | render | output) and meta.json. The model is loaded once per process, each prompt encoded
once, and each render's inversion reused across combinations.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .config import Config, TrajectorySpec, VideoSpec, select
from .core.ddim import ddim_sample, inversion_end, sampling_schedule
from .core.guidance import RegionGuidance, uses_cfg
from .core.krnr import noise_init
from .core.masks import background_mask, latent_masks
from .core.slm import NothingVisible, stochastic_latent_modulation
from .infra.artifacts import upstream
from .infra.cli import get_logger, run_stage
from .infra.errors import UserError
from .infra.layout import depth_dir, inversion_file, result_dir, run_dir
from .infra.records import (
    SweepPoint,
    infer_depends,
    inversion_batch,
    inversion_prompt,
    invert_depends,
    output_fps,
    render_chain,
    run_prefix,
    sweep,
    video_prompt,
)
from .infra.video_io import FrameSelection, read_clip, read_frames, titled_side_by_side, write_video
from .infra.workqueue import StageRunner, process_state
from .models.lazy import Lazy
from .weights import needed_models, require

STAGE = "infer"


def load_inversion(path: Path, t_end: int) -> dict[str, torch.Tensor]:
    """The tensors of an inversion file, checked: intact (its content digest), finite, and ending at t_end."""
    from .infra.artifacts import load_safetensors

    if not path.is_file():
        raise UserError(f"inversion '{path}' (t={t_end}) is missing; rerun `python -m inverse_dvs.invert` with the "
                        "same inference.steps/strength and inversion settings.")
    try:
        tensors, _ = load_safetensors(path)
    except UserError as exc:
        raise UserError(f"{exc} Rerun `python -m inverse_dvs.invert --force` to make it again.") from None
    bad = [k for k in ("x0", "eps_inv", "image_latents") if not bool(torch.isfinite(tensors[k]).all())]
    if bad:
        raise UserError(f"inversion '{path}' holds NaN or inf in {', '.join(bad)}; rerun `python -m "
                        "inverse_dvs.invert --force` to make it again.")
    if int(tensors["timesteps"][-1]) != t_end:
        raise UserError(f"inversion '{path}' ends at t={int(tensors['timesteps'][-1])}, but t={t_end} is needed; "
                        "rerun `python -m inverse_dvs.invert --force`.")
    return tensors


def item_inputs(cfg: Config, visible: np.ndarray, depth: np.ndarray, input_frames: np.ndarray,
                render_frames: np.ndarray) -> dict[str, object]:
    """What every sweep point of one (trajectory, video) reads: latent masks (`masks.latent_masks` of the warp's
    visibility [T, H, W] float in [0, 1]), the background mask (of depth [T, H, W]) and the input and render frames
    [T, H, W, 3] uint8 at the model size."""
    s = cfg.slm
    return {"masks": latent_masks(visible, s.mask_pooling, s.occlusion_threshold, s.eps_rank),
            "background": background_mask(depth, s.background_threshold), "input": input_frames,
            "render": render_frames}


def read_item_inputs(cfg: Config, rdir: Path, ddir: Path) -> dict[str, object]:
    """`item_inputs` of one (trajectory, video), read from its warp and depth folders."""
    c = cfg.camera
    with np.load(rdir / "masks.npz") as z:
        visible = z["visibility"]  # float: fractional where the warp size differs from the model size
    with np.load(ddir / "depth.npz") as z:
        depth = z["depth"]
    source = read_clip(rdir / "input.mp4", FrameSelection(c.num_frames), (c.height, c.width),
                       c.resize).frames  # shown beside the output only
    return item_inputs(cfg, visible, depth, source, read_frames(rdir / "render.npz"))


def sampling_batches(cfg: Config, points: list[SweepPoint]) -> tuple[int, ...]:
    """Latents per transformer pass the sampler runs compiled: 2 for points with CFG, 1 without; none while a step
    cache is on (its hooks run the blocks uncompiled, `cogvideo.sampling_cache`)."""
    if cfg.inference.cache != "none":
        return ()
    return tuple(sorted({2 if uses_cfg(pt.guidance_scale, pt.preservation_scale, cfg.inference.dynamic_cfg) else 1
                         for pt in points}))


class Output(NamedTuple):
    frames: np.ndarray  # [T, H, W, 3] uint8
    t_start: int
    alpha_bar_t_start: float
    sampling_steps: int
    sampling_nfe: int
    sampling_seconds: float
    decode_seconds: float


def generate(model, cfg: Config, pt: SweepPoint, prompt: str, inv: dict[str, torch.Tensor], item: dict[str, object],
             progress=None) -> Output:
    """One output of one sweep point: SLM + K-RNR noise initialisation from the inversion (`inv`: the tensors of its
    file), region-aware guided DDIM from t_start (under `inference.cache`), decode. model: cogvideo.LazyPipeline;
    item: `item_inputs`. The inference stage and the benchmarks run exactly this."""
    from .models.cogvideo import (
        StepClock,
        alphas_cumprod,
        decode,
        make_v_fn,
        sampling_cache,
        sampling_latents,
        synchronize,
    )

    # 1. schedule and the latents the sampler starts from
    p = model.get(sampling_batches(cfg, [pt]))
    sched = sampling_schedule(pt.steps, pt.strength)
    alphas = alphas_cumprod(p)
    a_bar = float(alphas[sched.t_start])
    x0, img = sampling_latents(p, cfg.inference.vae_latents, inv, item["render"],
                               torch.Generator("cpu").manual_seed(pt.seed))
    dev = x0.device  # the transformer's (cogvideo.execution_device), where sampling runs
    eps = inv["eps_inv"].to(dev)
    masks = item["masks"]

    def latent(mask: np.ndarray) -> torch.Tensor:  # bool [t, h, w] → [1, t, 1, h, w] on the model's device
        return torch.from_numpy(mask).to(dev)[None, :, None]

    occ = latent(masks.occluded)
    if occ.shape[1] != x0.shape[1] or occ.shape[-2:] != x0.shape[-2:]:
        raise UserError(f"masks {tuple(occ.shape)} do not match the latents {tuple(x0.shape)}; rerun warp and invert "
                        "with the same camera settings (--force).")
    # 2. noise initialisation: SLM fills the occluded cells, then K-RNR (paper §4.3-4.4)
    fill = partial(stochastic_latent_modulation, occluded=occ, generator=torch.Generator("cpu").manual_seed(pt.seed),
                   mode=cfg.slm.mode, background=latent(item["background"]),
                   occluded_eps=latent(masks.occluded_eps)) if cfg.slm.enabled else None
    try:
        x_init = noise_init(cfg.inference.noise_init, x0, eps, a_bar, fill, k=pt.k_order,
                            delta=pt.adaptive_order, stats=cfg.inference.adain, rounds=cfg.inference.noise_rounds)
    except NothingVisible as exc:
        raise UserError(str(exc)) from None
    # 3. region-aware CFG: guidance on occluded cells, preservation on visible ones
    guidance = RegionGuidance(pt.guidance_scale, pt.preservation_scale, cfg.inference.dynamic_cfg,
                              len(sched.timesteps), occ)
    cond, uncond = model.embed([prompt, cfg.inference.negative_prompt])
    clock = StepClock()
    v_fn = make_v_fn(p, img, cond, uncond if guidance.uses_cfg else None, guidance, model.stats, clock)
    # 4. DDIM from t_start, then decode
    nfe0 = model.stats.nfe
    synchronize(dev)
    t0 = time.perf_counter()
    with sampling_cache(p, cfg.inference.cache, clock):  # sampling only: never during inversion
        latents = ddim_sample(v_fn, x_init, sched.timesteps, sched.prev_timesteps, alphas, progress=progress)
    synchronize(dev)
    t1 = time.perf_counter()
    if not bool(torch.isfinite(latents).all()):
        raise UserError(f"sampling produced NaN or inf latents (steps {pt.steps}, strength {pt.strength}, guidance "
                        f"{pt.guidance_scale}); nothing was written. With run.dtype: fp16 this is an overflow: use "
                        "bf16 or fp32.")
    frames = decode(p, latents)
    return Output(frames, sched.t_start, a_bar, len(sched.timesteps), model.stats.nfe - nfe0, round(t1 - t0, 2),
                  round(time.perf_counter() - t1, 2))


def _inputs(cfg: Config, video: VideoSpec, traj: TrajectorySpec, inv_path: Path, vae_tiling: bool) -> dict[str, str]:
    """Hashes of everything this run reads, after checking each was made for the current config and files."""
    hashes = render_chain(cfg, video, traj)
    hashes |= upstream(inv_path.parent, "invert", invert_depends(cfg, inversion_prompt(cfg, video, traj), vae_tiling),
                       {"inversion": inv_path}, {"render": hashes["render"]},
                       what=f"inversion of video '{video.name}' along '{traj.name}'")
    return {k: hashes[k] for k in ("inversion", "masks", "depth", "render", "input")}


def _infer_point(ctx, data: Lazy, folder: Path, *, pt: SweepPoint, prefix: str, inv_path: Path, prompt: str,
                 fps: float, trajectory: str) -> tuple[list[str], dict]:
    """One sweep point of one (trajectory, video) (ctx: cogvideo.StageModel): `generate`, then the videos and the
    record."""
    from tqdm import tqdm

    from .models.cogvideo import oom_hint

    cfg = ctx.cfg
    sched = sampling_schedule(pt.steps, pt.strength)
    inv = load_inversion(inv_path, inversion_end(cfg.inversion.end, sched.t_start))
    tag = pt.run_tag(prefix, cfg.inference.cache)
    bar = tqdm(total=len(sched.timesteps), desc=f"sample {tag}", disable=ctx.quiet)
    try:
        out = generate(ctx.model, cfg, pt, prompt, inv, data.get(), progress=lambda _i: bar.update())
    except torch.cuda.OutOfMemoryError as exc:
        raise oom_hint(exc) from None
    finally:
        bar.close()
    item = data.get()
    write_video(folder / "output.mp4", out.frames, fps)
    write_video(folder / "comparison.mp4", titled_side_by_side(
        [item["input"], item["render"], out.frames], ["input", f"render ({trajectory})", "output"]), fps)
    # transformer passes that made the inversion: one per step, plus one per refinement iteration, doubled under
    # inversion CFG
    inv_nfe = len(inv["timesteps"]) * (1 + cfg.inversion.refine_iterations) * inversion_batch(cfg)
    return ["output.mp4", "comparison.mp4"], {
        "params": asdict(pt), "run_tag": tag, "method": cfg.method, "cache": cfg.inference.cache,
        "sampling_seconds": out.sampling_seconds, "decode_seconds": out.decode_seconds,
        "compiled": ctx.model.compiled and cfg.inference.cache == "none", **ctx.stats.extra,
        "vae_tiling": ctx.model.vae_tiling, "custom": [list(kv) for kv in cfg.custom], "t_start": out.t_start,
        "alpha_bar_t_start": out.alpha_bar_t_start, "sampling_steps": out.sampling_steps,
        "sampling_nfe": out.sampling_nfe, "inversion_nfe": inv_nfe, "nfe_per_output": inv_nfe + out.sampling_nfe,
        "process_model_loads": ctx.stats.loads, "prompt": prompt}


def _body(cfg: Config, args, model=None) -> int:
    """The stage over this process's items; `model` is a cogvideo.LazyPipeline shared with the inversion stage when
    both run in one process (`python -m inverse_dvs.chain invert infer`), else one is made here."""
    from .models.cogvideo import StageModel, lazy_pipeline

    log = get_logger()
    videos, trajectories = select(cfg, args.only_video, args.only_trajectory)
    state = process_state()
    require(needed_models(cfg, (STAGE,)))  # before any item: a missing model fails fast
    runner = StageRunner(STAGE, cfg.work_dir, args.force, log, state)
    points = sweep(cfg, log)
    model = model or lazy_pipeline(cfg, state, log)
    stats = model.stats
    ctx = StageModel(cfg, model, stats, args.quiet, args.force)
    prefix = run_prefix(cfg)
    for traj in trajectories:
        for v in videos:
            rdir, ddir = result_dir(cfg.work_dir, traj.name, v.name), depth_dir(cfg.work_dir, v.name)
            fps = output_fps(cfg, v, traj)
            try:
                prompt = video_prompt(cfg, v, traj)
            except UserError as exc:  # no usable caption yet: these items fail, the others go on
                for pt in points:
                    runner.fail(f"trajectory={traj.name} video={v.name} run={pt.run_tag(prefix, cfg.inference.cache)}",
                                exc)
                continue
            # read on the first sweep point that runs: an up-to-date item costs no decoding
            data = Lazy(partial(read_item_inputs, cfg, rdir, ddir), f"the inputs of {traj.name}/{v.name}")
            for pt in points:
                t_start = sampling_schedule(pt.steps, pt.strength).t_start
                inv_path = inversion_file(cfg.work_dir, traj.name, v.name, inversion_end(cfg.inversion.end, t_start))
                tag = pt.run_tag(prefix, cfg.inference.cache)
                runner.run(f"trajectory={traj.name} video={v.name} run={tag}",
                           run_dir(cfg.work_dir, traj.name, v.name, tag),
                           infer_depends(cfg, pt, prompt, fps, model.vae_tiling),
                           partial(_inputs, cfg, v, traj, inv_path, model.vae_tiling),
                           partial(_infer_point, ctx, data, pt=pt, prefix=prefix, inv_path=inv_path, prompt=prompt,
                                   fps=fps, trajectory=traj.name))
    log.info("infer: %s", json.dumps({"model_loads": stats.loads, "nfe": stats.nfe, "sweep_points": len(points)}))
    return runner.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
