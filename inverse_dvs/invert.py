"""Stage 3 — DDIM-invert each render with CogVideoX-I2V → `{work_dir}/inversions/{trajectory}/{video}/`.

One file per distinct end of the inversion (`inversion_t{end:04d}.safetensors`, keys `x0`, `eps_inv`,
`image_latents`, `timesteps`): with `inversion.end: t_start` one per t_start of the inference sweep (steps ×
strength); with `terminal` a single `inversion_t0999` serves every t_start. Sweeps over guidance, k or seeds reuse
it. The model is loaded once per process.
"""

from __future__ import annotations

import hashlib
import json
from functools import partial
from pathlib import Path

from .config import Config, Selection, TrajectorySpec, VideoSpec, needed_models, select
from .infra.artifacts import save_safetensors, sha256
from .infra.device import resolve_device
from .infra.errors import UserError
from .infra.hub import require
from .infra.layout import inversion_dir, inversion_file, render_file
from .infra.video_io import read_frames, write_video
from .pipeline import InverseDVSPipeline, inversion_ends
from .runner.cli import get_logger, run_stage
from .runner.records import inversion_prompt, invert_depends, output_fps, render_chain
from .runner.workqueue import Item, StageRunner, process_state, run_grouped

STAGE = "invert"


def _reusable(path: Path, key: str) -> dict | None:
    """The metadata of an inversion file made from the same render and settings (its header `key`) whose tensors are
    intact, else None: a missing, foreign, stale or damaged file is computed again, never reused."""
    from .infra.artifacts import load_safetensors

    try:
        _, meta = load_safetensors(path)
    except UserError:
        return None
    return meta if meta.get("key") == key else None


def _inputs(cfg: Config, video: VideoSpec, traj: TrajectorySpec) -> dict[str, str]:
    return {"render": render_chain(cfg, video, traj)["render"]}


def _invert_item(cfg: Config, pipe: InverseDVSPipeline, force: bool, folder: Path, *, render: Path, prompt: str,
                 trajectory: str, video: str, fps: float) -> tuple[list[str], dict]:
    """Invert one render to every needed end; files made from the same render and settings are reused."""
    from .models.vae import decode
    from .models.video_model import alphas_cumprod

    log = get_logger()
    vm = pipe.video_model
    # A file made from the same render and settings is kept when only the set of ends changed (e.g. a strength was
    # added to the sweep): its header records this key.
    deps = {k: val for k, val in invert_depends(cfg, prompt, vm.vae_tiling).items() if k != "ends"}
    key = hashlib.sha256((json.dumps(deps, sort_keys=True) + sha256(render)).encode()).hexdigest()
    files = {t: inversion_file(cfg.work_dir, trajectory, video, t) for t in inversion_ends(cfg)}
    # --force recomputes every file; otherwise a file made from the same render and settings is reused when intact
    headers = {} if force else {t: m for t, f in files.items() if (m := _reusable(f, key)) is not None}
    todo = [t for t in files if t not in headers]
    for t in sorted(headers):
        log.info("invert trajectory=%s video=%s: t_end=%d reused (same render and settings, intact)", trajectory,
                 video, t)
    nfe0 = pipe.stats.nfe
    if todo:  # the model is loaded and the render encoded only when something is left to invert
        # a clip longer than one window: window 0 (README → Long videos); later windows are inverted by infer
        enc = pipe.encode(read_frames(render)[:cfg.model_frames])
        alphas = alphas_cumprod(vm.get())
        for t_end in todo:
            inv = pipe.invert(enc, prompt, t_end, where=f"{trajectory}/{video}")
            headers[t_end] = {"t_end": t_end, "end": cfg.inversion.end, "prompt": prompt, "key": key,
                              "alpha_bar_end": float(alphas[t_end])}
            save_safetensors(files[t_end], inv.tensors(), headers[t_end])
            if cfg.inversion.preview:
                write_video(folder / f"eps_inv_t{t_end:04d}.mp4", decode(vm.get(), inv.eps_inv, enc.padding), fps)
    alpha_bar = {str(t): headers[t]["alpha_bar_end"] for t in files}
    return [f.name for f in files.values()], {"ends": list(files), "nfe": pipe.stats.nfe - nfe0,
                                              "process_model_loads": pipe.stats.loads, "alpha_bar": alpha_bar,
                                              "prompt": prompt,
                                              "attention_backend": cfg.run.attention_backend,
                                              **{k: v for k, v in pipe.stats.extra.items()
                                                 if k in ("attention_backend", "context_parallel")}}


def run(cfg: Config, selection: Selection | None = None, *, force: bool = False, quiet: bool = False,
        model: InverseDVSPipeline | None = None) -> int:
    """Invert every selected render (cfg: a resolved config; `model`: the pipeline whose video model to use, shared
    with the inference stage when both run in one process — `python -m inverse_dvs.chain invert infer` —, else one
    is made here). Returns the exit code (0, 1 or 2)."""
    log = get_logger()
    videos, trajectories = select(cfg, selection)
    state = process_state()
    require(needed_models(cfg, (STAGE,)))  # before any item: a missing model fails fast
    pipe = model or InverseDVSPipeline(cfg, device=resolve_device(cfg.run.device, state), log=log)
    pipe.set_progress_bar_config(disable=quiet)
    return run_grouped(cfg.run.context_parallel, state, lambda: pipe.video_model.get().transformer, log,
                       partial(_run_items, cfg, pipe, videos, trajectories, force))


def _run_items(cfg: Config, pipe: InverseDVSPipeline, videos, trajectories, force: bool, state) -> int:
    log = get_logger()
    runner = StageRunner(STAGE, cfg.work_dir, force, log, state, total=len(trajectories) * len(videos))
    for traj in trajectories:
        for v in videos:
            item = Item(video=v.name, trajectory=traj.name)
            render = render_file(cfg.work_dir, traj.name, v.name)
            try:
                prompt = inversion_prompt(cfg, v, traj)
            except UserError as exc:  # no usable caption yet: this item fails, the others go on
                runner.fail(item, exc)
                continue
            runner.run(item, inversion_dir(cfg.work_dir, traj.name, v.name),
                       invert_depends(cfg, prompt, pipe.video_model.vae_tiling), partial(_inputs, cfg, v, traj),
                       partial(_invert_item, cfg, pipe, force, render=render, prompt=prompt, trajectory=traj.name,
                               video=v.name, fps=output_fps(cfg, v, traj)))
    log.info("invert: %s", json.dumps({"model_loads": pipe.stats.loads, "nfe": pipe.stats.nfe}))
    return runner.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
