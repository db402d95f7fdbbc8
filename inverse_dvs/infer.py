"""Stage 4 — noise initialisation (SLM + K-RNR) and region-aware DDIM sampling → output.mp4 per sweep point.

Every combination of the list-valued `inference` keys (steps, strength, guidance_scale, preservation_scale, k_order,
adaptive_order, seeds) becomes `{work_dir}/results/{trajectory}/{video}/{run_tag}/` with output.mp4,
comparison.mp4 (input | render | output) and meta.json. The model is loaded once per process, each prompt encoded
once, and each render's inversion reused across combinations.

A clip longer than `camera.window` runs in overlapping windows, in order, per sweep point (README → Long videos):
window 0 from the shared inversion, each later one inverted here from its render with window w−1's output taking
over its first `camera.overlap` frames. Each window has its folder `{run_tag}/windows/w{index:02d}/` (frames.npz, its
output frames, and meta.json, its record), so a run stopped in window w resumes there.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .config import Config, TrajectorySpec, VideoSpec, select
from .core.windows import Window, clip_length, hand_over, plan_windows, stitch
from .infra.artifacts import clean_partials, read_meta, run_item, save_npz, sha256, upstream
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


def read_clip_inputs(cfg: Config, rdir: Path, ddir: Path) -> dict[str, np.ndarray]:
    """The whole clip's arrays that `item_inputs` takes, read from its warp and depth folders: `visible` (the warp's
    visibility [T, H, W] float, fractional where the warp size differs from the model size), `depth`, and the
    `input_frames` (shown beside the output only) and `render_frames` [T, H, W, 3] uint8."""
    c = cfg.camera
    with np.load(rdir / "masks.npz") as z:
        visible = z["visibility"]
    with np.load(ddir / "depth.npz") as z:
        depth = z["depth"]
    render = read_frames(rdir / "render.npz")  # at the model size (the video's own with `camera.height: auto`)
    source = read_clip(rdir / "input.mp4", FrameSelection(None), render.shape[1:3], c.resize).frames
    return {"visible": visible, "depth": depth, "input_frames": source, "render_frames": render}


def clip_windows(cfg: Config, num_frames: int, where: str, log) -> list[Window]:
    """The windows of a clip of `num_frames` frames (`core.windows.plan_windows` with the camera settings); says where
    a last window that did not fit went."""
    c = cfg.camera
    windows = plan_windows(num_frames, c.window, c.overlap, c.last_window)
    if len(windows) > 1 and c.last_window == "end" and windows[-1].overlap != c.overlap:
        log.info("%s: %d frames in %d windows of %d; the last window is aligned to the clip's end (camera.last_window: "
                 "end), so it takes over %d frames instead of %d.", where, num_frames, len(windows), c.window,
                 windows[-1].overlap, c.overlap)
    elif clip_length(windows) < num_frames:
        log.warning("%s: frames %d–%d are left out: they would need a window of their own past the clip's end "
                    "(camera.last_window: drop; `end` keeps them).", where, clip_length(windows), num_frames - 1)
    return windows


def _inputs(cfg: Config, video: VideoSpec, traj: TrajectorySpec, inv_path: Path, vae_tiling: bool) -> dict[str, str]:
    """Hashes of everything this run reads, after checking each was made for the current config and files."""
    hashes = render_chain(cfg, video, traj)
    hashes |= upstream(inv_path.parent, "invert", invert_depends(cfg, inversion_prompt(cfg, video, traj), vae_tiling),
                       {"inversion": inv_path}, {"render": hashes["render"]},
                       what=f"inversion of video '{video.name}' along '{traj.name}'")
    return {k: hashes[k] for k in ("inversion", "masks", "depth", "render", "input")}


def _sample(ctx, plan: PointPlan, prompt: str, inversion: dict[str, torch.Tensor], item: dict[str, object],
            window: Window):
    """The method's `generate` under a progress bar, with the OOM advice."""
    from tqdm import tqdm

    from .models.cogvideo import oom_hint

    label = plan.run_tag if window.index == 0 and window.overlap == 0 else f"{plan.run_tag} window {window.index}"
    bar = tqdm(total=len(plan.schedule.timesteps), desc=f"sample {label}", disable=ctx.quiet)
    try:
        return ctx.method.generate(plan, prompt, inversion, item, progress=lambda _i: bar.update(),
                                   window=window.index)
    except torch.cuda.OutOfMemoryError as exc:
        raise oom_hint(exc) from None
    finally:
        bar.close()


def _digest(frames: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()


def _window_item(ctx, wdir: Path, *, plan: PointPlan, prompt: str, clip: dict[str, np.ndarray],
                 shared: dict[str, torch.Tensor], win: Window, prev: Window | None) -> tuple[list[str], dict]:
    """One window of a long clip: window 0 samples from the shared inversion (`shared`); window w > 0 takes its render
    over from window w−1's output (`core.windows.hand_over`), inverts it and samples. Writes frames.npz (uint8)."""
    from .pipeline import inversion_tensors

    cfg, s, e = ctx.cfg, win.start, win.end
    nfe0 = ctx.stats.nfe
    extra = {"window": win.index, "frames": [s, e], "overlap": win.overlap}
    if prev is None:
        inversion = shared
        item = item_inputs(cfg, clip["visible"][s:e], clip["depth"][s:e], clip["input_frames"][s:e],
                           clip["render_frames"][s:e])
    else:
        previous = read_frames(wdir.parent / f"w{prev.index:02d}" / "frames.npz")
        render, visible = hand_over(clip["render_frames"], clip["visible"], previous, win, prev)
        # what the test and the user can check: the condition and the overlap are window w−1's output frames
        extra |= {"condition_sha256": _digest(render[0]), "overlap_sha256": _digest(render[:win.overlap])}
        item = item_inputs(cfg, visible, clip["depth"][s:e], clip["input_frames"][s:e], render)
        enc = ctx.method.encode(render, cfg.run.seed)
        inversion = inversion_tensors(enc, ctx.method.invert(enc, prompt, plan.inversion_end))
    out = _sample(ctx, plan, prompt, inversion, item, win)
    save_npz(wdir / "frames.npz", frames=out.frames)
    nfe = ctx.stats.nfe - nfe0
    return ["frames.npz"], extra | {"nfe": nfe, "inversion_nfe": nfe - out.sampling_nfe,
                                    "sampling_nfe": out.sampling_nfe, "sampling_seconds": out.sampling_seconds,
                                    "decode_seconds": out.decode_seconds, "alpha_bar_t_start": out.alpha_bar_t_start}


def _run_windows(ctx, folder: Path, depends: dict, inputs: dict[str, str], windows: list[Window], **kw
                 ) -> tuple[np.ndarray, list[dict]]:
    """Every window of one sweep point, in order, each with its record (`artifacts.run_item`: an up-to-date window
    is kept, so a stopped run resumes at its first unfinished window); returns the stitched clip and the windows'
    records."""
    log, records, outputs = get_logger(), [], []
    window_depends = {k: v for k, v in depends.items() if k != "fps"}  # the frame rate only enters the mp4s
    prev = None
    for win in windows:
        wdir = folder / "windows" / f"w{win.index:02d}"
        clean_partials(wdir)  # half-written files of a window a killed run was computing
        win_inputs = dict(inputs) | ({} if prev is None else
                                     {"previous": sha256(folder / "windows" / f"w{prev.index:02d}" / "frames.npz")})
        run_item(wdir, "infer-window", window_depends | {"window": win._asdict()}, win_inputs, ctx.force,
                 f"{kw['plan'].run_tag} window {win.index} (frames {win.start}–{win.end - 1})",
                 partial(_window_item, ctx, win=win, prev=prev, **kw), log)
        meta = read_meta(wdir)
        records.append({k: meta[k] for k in ("window", "frames", "overlap", "nfe", "inversion_nfe", "sampling_nfe",
                                             "seconds", "sampling_seconds", "decode_seconds", "alpha_bar_t_start",
                                             "condition_sha256", "overlap_sha256") if k in meta})
        outputs.append(read_frames(wdir / "frames.npz"))
        prev = win
    return stitch(outputs, windows, ctx.cfg.camera.stitch), records


def _remember(into: dict, inputs) -> dict[str, str]:
    into.update(inputs())
    return into


def _infer_point(ctx, data: Lazy, folder: Path, *, plan: PointPlan, inv_path: Path, prompt: str, fps: float,
                 trajectory: str, depends: dict, inputs: dict[str, str]) -> tuple[list[str], dict]:
    """One sweep point of one (trajectory, video) (ctx: pipeline.StageModel): the method's `generate` (per window of a
    long clip), then the videos and the record."""
    cfg = ctx.cfg
    clip = data.get()
    num_frames = len(clip["render_frames"])
    windows = clip_windows(cfg, num_frames, f"{trajectory} {plan.run_tag}", get_logger())
    inv = load_inversion(inv_path, plan.inversion_end)
    inv_nfe = ctx.method.inversion_nfe(len(inv["timesteps"]))  # the passes that made the shared inversion
    if len(windows) == 1:
        out = _sample(ctx, plan, prompt, inv, item_inputs(cfg, **clip), windows[0])
        frames, extra = out.frames, {}
        totals = {"sampling_seconds": out.sampling_seconds, "decode_seconds": out.decode_seconds,
                  "alpha_bar_t_start": out.alpha_bar_t_start, "sampling_nfe": out.sampling_nfe,
                  "inversion_nfe": inv_nfe}
    else:
        frames, records = _run_windows(ctx, folder, depends, inputs, windows, plan=plan, prompt=prompt, clip=clip,
                                       shared=inv)
        totals = {k: round(sum(r[k] for r in records), 2) for k in ("sampling_seconds", "decode_seconds")}
        totals |= {k: sum(r[k] for r in records) for k in ("sampling_nfe", "inversion_nfe")}
        totals["inversion_nfe"] += inv_nfe  # window 0's inversion is the shared one
        totals["alpha_bar_t_start"] = records[0]["alpha_bar_t_start"]
        extra = {"windows": records, "stitch": cfg.camera.stitch}
    n = len(frames)
    write_video(folder / "output.mp4", frames, fps)
    write_video(folder / "comparison.mp4", titled_side_by_side(
        [clip["input_frames"][:n], clip["render_frames"][:n], frames], ["input", f"render ({trajectory})", "output"]),
        fps)
    return ["output.mp4", "comparison.mp4"], {
        "params": asdict(plan.point), "run_tag": plan.run_tag, "method": cfg.method, "cache": cfg.inference.cache,
        "compiled": ctx.model.compiled and cfg.inference.cache == "none", **ctx.stats.extra,
        "vae_tiling": ctx.model.vae_tiling, "custom": [list(kv) for kv in cfg.custom], "t_start": plan.t_start,
        "sampling_steps": len(plan.schedule.timesteps), **totals,
        "nfe_per_output": totals["inversion_nfe"] + totals["sampling_nfe"], "frames": n,
        "process_model_loads": ctx.stats.loads, "prompt": prompt, **extra}


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
            data = Lazy(partial(read_clip_inputs, cfg, rdir, ddir), f"the inputs of {traj.name}/{v.name}")
            for plan in plans:
                inv_path = inversion_file(cfg.work_dir, traj.name, v.name, plan.inversion_end)
                depends = infer_depends(cfg, plan.point, prompt, fps, model.vae_tiling)
                hashes: dict[str, str] = {}  # the point's input hashes, which the records of its windows repeat
                runner.run(f"trajectory={traj.name} video={v.name} run={plan.run_tag}",
                           run_dir(cfg.work_dir, traj.name, v.name, plan.run_tag), depends,
                           partial(_remember, hashes, partial(_inputs, cfg, v, traj, inv_path, model.vae_tiling)),
                           partial(_infer_point, ctx, data, plan=plan, inv_path=inv_path, prompt=prompt, fps=fps,
                                   trajectory=traj.name, depends=depends, inputs=hashes))
    log.info("infer: %s", json.dumps({"model_loads": stats.loads, "nfe": stats.nfe, "sweep_points": len(plans)}))
    return runner.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
