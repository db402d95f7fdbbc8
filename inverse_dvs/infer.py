"""Stage 4 — noise initialisation (SLM + K-RNR) and region-aware DDIM sampling → output.mp4 per sweep point.

Every combination of the list-valued `inference` keys (steps, strength, guidance_scale, preservation_scale, k_order,
adaptive_order, seeds) becomes `{work_dir}/results/{trajectory}/{video}/{run_tag}/` with output.mp4,
comparison.mp4 (input | render | output) and meta.json. The model is loaded once per process, each prompt encoded
once, and each render's inversion reused across combinations.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .config import Config, TrajectorySpec, VideoSpec, select
from .infra.artifacts import upstream
from .infra.cli import get_logger, run_stage
from .infra.errors import UserError
from .infra.layout import depth_dir, inversion_file, result_dir, run_dir
from .infra.records import (
    infer_depends,
    inversion_prompt,
    invert_depends,
    output_fps,
    render_chain,
    video_prompt,
)
from .infra.video_io import FrameSelection, read_clip, read_frames, titled_side_by_side, write_video
from .infra.workqueue import StageRunner, process_state
from .models.lazy import Lazy
from .pipeline import InverseDVS, PointPlan, StageModel, item_inputs, plan_sweep
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


def _inputs(cfg: Config, video: VideoSpec, traj: TrajectorySpec, inv_path: Path, vae_tiling: bool) -> dict[str, str]:
    """Hashes of everything this run reads, after checking each was made for the current config and files."""
    hashes = render_chain(cfg, video, traj)
    hashes |= upstream(inv_path.parent, "invert", invert_depends(cfg, inversion_prompt(cfg, video, traj), vae_tiling),
                       {"inversion": inv_path}, {"render": hashes["render"]},
                       what=f"inversion of video '{video.name}' along '{traj.name}'")
    return {k: hashes[k] for k in ("inversion", "masks", "depth", "render", "input")}


def _infer_point(ctx, data: Lazy, folder: Path, *, plan: PointPlan, inv_path: Path, prompt: str, fps: float,
                 trajectory: str) -> tuple[list[str], dict]:
    """One sweep point of one (trajectory, video) (ctx: pipeline.StageModel): the method's `generate`, then the
    videos and the record."""
    from tqdm import tqdm

    from .models.cogvideo import oom_hint

    cfg = ctx.cfg
    inv = load_inversion(inv_path, plan.inversion_end)
    bar = tqdm(total=len(plan.schedule.timesteps), desc=f"sample {plan.run_tag}", disable=ctx.quiet)
    try:
        out = ctx.method.generate(plan, prompt, inv, data.get(), progress=lambda _i: bar.update())
    except torch.cuda.OutOfMemoryError as exc:
        raise oom_hint(exc) from None
    finally:
        bar.close()
    item = data.get()
    write_video(folder / "output.mp4", out.frames, fps)
    write_video(folder / "comparison.mp4", titled_side_by_side(
        [item["input"], item["render"], out.frames], ["input", f"render ({trajectory})", "output"]), fps)
    inv_nfe = ctx.method.inversion_nfe(len(inv["timesteps"]))  # the passes that made the inversion
    return ["output.mp4", "comparison.mp4"], {
        "params": asdict(plan.point), "run_tag": plan.run_tag, "method": cfg.method, "cache": cfg.inference.cache,
        "sampling_seconds": out.sampling_seconds, "decode_seconds": out.decode_seconds,
        "compiled": ctx.model.compiled and cfg.inference.cache == "none", **ctx.stats.extra,
        "vae_tiling": ctx.model.vae_tiling, "custom": [list(kv) for kv in cfg.custom], "t_start": out.t_start,
        "alpha_bar_t_start": out.alpha_bar_t_start, "sampling_steps": out.sampling_steps,
        "sampling_nfe": out.sampling_nfe, "inversion_nfe": inv_nfe, "nfe_per_output": inv_nfe + out.sampling_nfe,
        "process_model_loads": ctx.stats.loads, "prompt": prompt}


def _body(cfg: Config, args, model=None) -> int:
    """The stage over this process's items; `model` is a cogvideo.LazyPipeline shared with the inversion stage when
    both run in one process (`python -m inverse_dvs.chain invert infer`), else one is made here."""
    from .models.cogvideo import lazy_pipeline

    log = get_logger()
    videos, trajectories = select(cfg, args.only_video, args.only_trajectory)
    state = process_state()
    require(needed_models(cfg, (STAGE,)))  # before any item: a missing model fails fast
    runner = StageRunner(STAGE, cfg.work_dir, args.force, log, state)
    plans = plan_sweep(cfg, log)
    model = model or lazy_pipeline(cfg, state, log)
    stats = model.stats
    ctx = StageModel(InverseDVS(model, cfg), args.quiet, args.force)
    for traj in trajectories:
        for v in videos:
            rdir, ddir = result_dir(cfg.work_dir, traj.name, v.name), depth_dir(cfg.work_dir, v.name)
            fps = output_fps(cfg, v, traj)
            try:
                prompt = video_prompt(cfg, v, traj)
            except UserError as exc:  # no usable caption yet: these items fail, the others go on
                for plan in plans:
                    runner.fail(f"trajectory={traj.name} video={v.name} run={plan.run_tag}", exc)
                continue
            # read on the first sweep point that runs: an up-to-date item costs no decoding
            data = Lazy(partial(read_item_inputs, cfg, rdir, ddir), f"the inputs of {traj.name}/{v.name}")
            for plan in plans:
                inv_path = inversion_file(cfg.work_dir, traj.name, v.name, plan.inversion_end)
                runner.run(f"trajectory={traj.name} video={v.name} run={plan.run_tag}",
                           run_dir(cfg.work_dir, traj.name, v.name, plan.run_tag),
                           infer_depends(cfg, plan.point, prompt, fps, model.vae_tiling),
                           partial(_inputs, cfg, v, traj, inv_path, model.vae_tiling),
                           partial(_infer_point, ctx, data, plan=plan, inv_path=inv_path, prompt=prompt, fps=fps,
                                   trajectory=traj.name))
    log.info("infer: %s", json.dumps({"model_loads": stats.loads, "nfe": stats.nfe, "sweep_points": len(plans)}))
    return runner.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
