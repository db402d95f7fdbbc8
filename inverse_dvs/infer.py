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

import json
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .config import Config, Selection, TrajectorySpec, VideoSpec, needed_models, select
from .core.windows import Window
from .infra.artifacts import clean_partials, read_meta, run_item, save_npz, sha256, upstream
from .infra.device import resolve_device
from .infra.errors import UserError
from .infra.hub import require
from .infra.layout import depth_dir, inversion_file, result_dir, run_dir
from .infra.video_io import FrameSelection, read_clip, read_frames, titled_side_by_side, write_video
from .models.lazy import Lazy
from .pipeline import InverseDVSPipeline, Inverted, PointPlan, WindowHook, WindowResult, plan_sweep
from .runner.cli import get_logger, run_stage
from .runner.records import infer_depends, inversion_prompt, invert_depends, output_fps, render_chain, video_prompt
from .runner.workqueue import Item, StageRunner, process_state, run_grouped

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


class ClipInputs(NamedTuple):
    """What `generate` reads of one (trajectory, video), from its warp and depth folders."""

    visibility: np.ndarray  # [T, H, W] float32: the warp's visibility at the model size
    depth: np.ndarray  # [T, h, w] float32 at the warp size
    input_frames: np.ndarray  # [T, H, W, 3] uint8: the source at the model size (shown beside the output only)
    render: np.ndarray  # [T, H, W, 3] uint8 at the model size


def read_clip_inputs(cfg: Config, rdir: Path, ddir: Path) -> ClipInputs:
    """The whole clip's arrays, read from its warp and depth folders."""
    with np.load(rdir / "masks.npz") as z:
        visibility = z["visibility"]
    with np.load(ddir / "depth.npz") as z:
        depth = z["depth"]
    render = read_frames(rdir / "render.npz")  # at the model size (the video's own with `camera.height: auto`)
    source = read_clip(rdir / "input.mp4", FrameSelection(None), render.shape[1:3], cfg.camera.resize).frames
    return ClipInputs(visibility, depth, source, render)


def _inputs(cfg: Config, video: VideoSpec, traj: TrajectorySpec, inv_path: Path, vae_tiling: bool) -> dict[str, str]:
    """Hashes of everything this run reads, after checking each was made for the current config and files."""
    hashes = render_chain(cfg, video, traj)
    hashes |= upstream(inv_path.parent, "invert", invert_depends(cfg, inversion_prompt(cfg, video, traj), vae_tiling),
                       {"inversion": inv_path}, {"render": hashes["render"]},
                       what=f"inversion of video '{video.name}' along '{traj.name}'")
    return {k: hashes[k] for k in ("inversion", "masks", "depth", "render", "input")}


WINDOW_KEYS = ("window", "frames", "overlap", "nfe", "inversion_nfe", "sampling_nfe", "seconds", "sampling_seconds",
               "decode_seconds", "alpha_bar_t_start", "condition_sha256", "overlap_sha256")


def window_store(folder: Path, depends: dict, inputs: dict[str, str], force: bool, label: str) -> WindowHook:
    """The infer stage's window hook (`InverseDVSPipeline.generate`): each window of a long clip is an item of its
    own in `{run folder}/windows/w{index:02d}/` (frames.npz, its output, and meta.json, its record: `run_item`), so
    an up-to-date window is read back instead of computed, and a stopped run resumes at its first unfinished
    window. A window's inputs are the sweep point's plus the window before it's frames."""
    log = get_logger()
    window_depends = {k: v for k, v in depends.items() if k != "fps"}  # the frame rate only enters the mp4s

    def wdir_of(index: int) -> Path:
        return folder / "windows" / f"w{index:02d}"

    def hook(win: Window, compute) -> WindowResult:
        wdir = wdir_of(win.index)
        clean_partials(wdir)  # half-written files of a window a killed run was computing
        previous = {"previous": sha256(wdir_of(win.index - 1) / "frames.npz")} if win.index else {}

        def write(out: Path) -> tuple[list[str], dict]:
            result = compute()
            save_npz(out / "frames.npz", frames=result.frames)
            return ["frames.npz"], result.record

        run_item(wdir, "infer-window", window_depends | {"window": win._asdict()}, dict(inputs) | previous, force,
                 f"{label} window {win.index} (frames {win.start}–{win.end - 1})", write, log)
        meta = read_meta(wdir)
        return WindowResult(read_frames(wdir / "frames.npz"), {k: meta[k] for k in WINDOW_KEYS if k in meta})

    return hook


def _remember(into: dict, inputs) -> dict[str, str]:
    into.update(inputs())
    return into


def _infer_point(cfg: Config, pipe: InverseDVSPipeline, force: bool, data: Lazy[ClipInputs], folder: Path, *,
                 plan: PointPlan, inv_path: Path, prompt: str, fps: float, trajectory: str, depends: dict,
                 inputs: dict[str, str]) -> tuple[list[str], dict]:
    """One sweep point of one (trajectory, video): the pipeline's `generate` from the stored inversion (windows
    persisted by `window_store`), then the videos and the record."""
    clip = data.get()
    inversion = Inverted.from_tensors(load_inversion(inv_path, plan.inversion_end))
    out = pipe.generate(clip.render, clip.visibility, clip.depth, prompt, plan=plan, inversion=inversion,
                        on_window=window_store(folder, depends, inputs, force, plan.run_tag), where=trajectory)
    frames = out.frames
    n = len(frames)
    write_video(folder / "output.mp4", frames, fps)
    write_video(folder / "comparison.mp4", titled_side_by_side(
        [clip.input_frames[:n], clip.render[:n], frames], ["input", f"render ({trajectory})", "output"]), fps)
    vm = pipe.video_model
    return ["output.mp4", "comparison.mp4"], {
        "params": asdict(plan.point), "run_tag": plan.run_tag, "method": cfg.method, "cache": cfg.inference.cache,
        "compiled": vm.compiled and cfg.inference.cache == "none", **pipe.stats.extra, "vae_tiling": vm.vae_tiling,
        "custom": [list(kv) for kv in cfg.custom], **out.info, "frames": n, "process_model_loads": pipe.stats.loads,
        "prompt": prompt}


def run(cfg: Config, selection: Selection | None = None, *, force: bool = False, quiet: bool = False,
        model: InverseDVSPipeline | None = None) -> int:
    """Every sweep point of every selected (trajectory, video) (cfg: a resolved config; `model`: the pipeline whose
    video model to use, shared with the inversion stage when both run in one process — `python -m inverse_dvs.chain
    invert infer` —, else one is made here). Returns the exit code (0, 1 or 2)."""
    log = get_logger()
    videos, trajectories = select(cfg, selection)
    state = process_state()
    require(needed_models(cfg, (STAGE,)))  # before any item: a missing model fails fast
    plans = plan_sweep(cfg, log)
    pipe = model or InverseDVSPipeline(cfg, device=resolve_device(cfg.run.device, state), log=log)
    pipe.set_progress_bar_config(disable=quiet)
    return run_grouped(cfg.run.context_parallel, state, lambda: pipe.video_model.get().transformer, log,
                       partial(_run_items, cfg, pipe, videos, trajectories, plans, force))


def _run_items(cfg: Config, pipe: InverseDVSPipeline, videos, trajectories, plans, force: bool, state) -> int:
    log = get_logger()
    runner = StageRunner(STAGE, cfg.work_dir, force, log, state, total=len(trajectories) * len(videos) * len(plans))
    vae_tiling = pipe.video_model.vae_tiling
    for traj in trajectories:
        for v in videos:
            rdir, ddir = result_dir(cfg.work_dir, traj.name, v.name), depth_dir(cfg.work_dir, v.name)
            fps = output_fps(cfg, v, traj)
            try:
                prompt = video_prompt(cfg, v, traj)
            except UserError as exc:  # no usable caption yet: these items fail, the others go on
                for plan in plans:
                    runner.fail(Item(video=v.name, trajectory=traj.name, run=plan.run_tag), exc)
                continue
            # read on the first sweep point that runs: an up-to-date item costs no decoding
            data = Lazy(partial(read_clip_inputs, cfg, rdir, ddir), f"the inputs of {traj.name}/{v.name}")
            for plan in plans:
                inv_path = inversion_file(cfg.work_dir, traj.name, v.name, plan.inversion_end)
                depends = infer_depends(cfg, plan.point, prompt, fps, vae_tiling)
                hashes: dict[str, str] = {}  # the point's input hashes, which the records of its windows repeat
                runner.run(Item(video=v.name, trajectory=traj.name, run=plan.run_tag),
                           run_dir(cfg.work_dir, traj.name, v.name, plan.run_tag), depends,
                           partial(_remember, hashes, partial(_inputs, cfg, v, traj, inv_path, vae_tiling)),
                           partial(_infer_point, cfg, pipe, force, data, plan=plan, inv_path=inv_path, prompt=prompt,
                                   fps=fps, trajectory=traj.name, depends=depends, inputs=hashes))
    log.info("infer: %s", json.dumps({"model_loads": pipe.stats.loads, "nfe": pipe.stats.nfe,
                                      "sweep_points": len(plans)}))
    return runner.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
