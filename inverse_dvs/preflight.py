"""Preflight — check everything that can be checked before any model loads; run_all.sh runs it first.

Every video must exist, decode and have enough frames; every trajectory must parse, be finite and within sane
bounds (|θ|, |φ| ≤ 360°, |r| ≤ 10); prompt files must be UTF-8; imported depth files must exist; and the weights of
every model the run needs (depth, CogVideoX, LoRA) must be on disk. Each problem is reported in one paragraph.
A problem of one video or trajectory fails only its items (the stages report them again; the healthy items go on);
missing weights, or nothing left to run, stop the run here with exit code 2 before any stage writes anything.
"""

from __future__ import annotations

from .config import Config, Selection, depth_source, needed_models, read_prompt, select
from .infra.errors import EXIT_USER_ERROR, UserError
from .infra.hub import missing_models
from .infra.trajectories import read_pose_json, trajectory_keyframes
from .infra.video_io import FrameSelection, frame_indices, probe_video, upscaled
from .runner.cli import get_logger, run_stage
from .runner.records import fps_change
from .runner.workqueue import Item, ItemResult, record_section, run_id

STAGE = "preflight"


def check_video(cfg: Config, video, log=None) -> str:
    """UserError when the video cannot feed the depth stage (or its prompt file / depth file is unusable); returns
    the user's prompt ("" when none is given). With a logger, warns of what the run silently changes: a source
    scaled up to the model's size, outputs written at another frame rate than the source's."""
    info = probe_video(video.path)
    frame_indices(info.frames, FrameSelection.of(cfg), video.path)
    if log is not None:
        if note := upscaled(info.size, cfg.model_hw(info.size), cfg.camera.resize):
            log.warning("%s", note.replace("the video", f"video '{video.name}'", 1))
        if note := fps_change(cfg, info.fps, info.frames, video.name):
            log.warning("%s", note)
    cp = cfg.run.context_parallel
    if cp.degree > 1 and cfg.backbone is not None:  # each call must split into equal parts (no padding)
        from .models.context_parallel import token_problem

        h, w = cfg.model_hw(info.size)
        bb = cfg.backbone
        if problem := token_problem(cp.ulysses, cp.ring, bb.tokens(cfg.model_frames, h, w), bb.heads,
                                    f"video '{video.name}' at {cfg.model_frames}×{h}×{w}"):
            raise UserError(problem)
    prompt = read_prompt(video)
    aux = depth_source(cfg, video.path)
    if aux is not None and not aux.is_file():
        raise UserError(f"video '{video.name}': depth file '{aux}' does not exist (depth.backend: "
                        f"{cfg.depth.backend}); set depth.npz_path or use depth.backend: depth_anything.")
    return prompt


def check_trajectory(cfg: Config, traj) -> None:
    if traj.kind == "poses":
        n = cfg.camera.num_frames
        read_pose_json(traj.poses, None if n in ("all", "auto") else n)  # else each video's count is checked at warp
    else:
        trajectory_keyframes(traj)


def run(cfg: Config, selection: Selection | None = None, *, force: bool = False, quiet: bool = False,
        model=None) -> int:
    """Check the selected videos and trajectories and the weights the run needs (cfg: a resolved config; `force` and
    `model` are not used: nothing is computed). Returns 0, or 2 when nothing can run."""
    log = get_logger()
    videos, trajectories = select(cfg, selection)
    if not videos and selection is not None and selection.shard is not None:
        index, count = selection.shard
        log.info("preflight: shard %d/%d has no video (the selection has fewer than %d); nothing to do.", index, count,
                 index + 1)
        record_section(cfg.work_dir, STAGE, {"run_id": run_id(), "failed": 0, "items": []}, new_run=True)
        return 0
    problems: dict[Item, str] = {}
    for v in videos:
        try:
            if check_video(cfg, v, log):
                continue
            if v.prompt_file:
                log.warning("prompt file '%s' of video '%s' is empty, so it gives no prompt.", v.prompt_file, v.name)
            if cfg.caption.source == "off":
                log.warning("video '%s' has no prompt and caption.source is off: the model then runs unconditioned. "
                            "Write prompts/%s.txt (in the config's folder), set its 'prompt' in the config, or let the "
                            "caption stage write one (caption.source: source).", v.name, v.name)
            else:
                log.info("video '%s' has no prompt: the caption stage writes one from its %s (%s).", v.name,
                         "source frames" if cfg.caption.source == "source" else "renders", cfg.caption.model)
        except UserError as exc:
            problems[Item(video=v.name)] = str(exc)
    for t in trajectories:
        try:
            check_trajectory(cfg, t)
        except UserError as exc:
            problems[Item(trajectory=t.name)] = str(exc)
    for item, reason in problems.items():
        log.error("preflight %s: %s", item, reason)
    items = [Item(video=v.name, trajectory=t.name) for t in trajectories for v in videos]
    healthy = [it for it in items if not any(p.covers(it) for p in problems)]
    missing = missing_models(needed_models(cfg))
    if missing:
        log.error("preflight: the weights of %s are not on this machine, and stages never download on their own. Fetch "
                  "them with `python -m inverse_dvs.weights download --config %s` (or `bash setup_env.sh --weights "
                  "--config=%s`), or point the config at local folders; for an offline demo with tiny random weights "
                  "run `bash run_all.sh configs/tiny.yml`. Nothing was run.", "; ".join(missing), cfg.source,
                  cfg.source)
        return EXIT_USER_ERROR
    if not healthy:
        log.error("preflight: no (trajectory, video) item can run (see above); nothing was run.")
        return EXIT_USER_ERROR
    if cfg.slm.generator == "reference":
        from .infra.device import resolve_device
        from .pipeline import slm_generator_problem

        if problem := slm_generator_problem(cfg, resolve_device(cfg.run.device)):
            log.error("preflight: %s Nothing was run.", problem)
            return EXIT_USER_ERROR
    backend, cp = cfg.run.attention_backend, cfg.run.context_parallel
    if backend != "auto" or cp.degree > 1:
        import torch

        from .models.attention import backend_problem
        from .models.context_parallel import attention_backend, ring_problem

        backend = attention_backend(cp.ring, backend) if cp.degree > 1 else backend
        problem = (ring_problem(cp.ring, backend)
                   or backend_problem(backend, cfg.run.device != "cpu" and torch.cuda.is_available()))
        if problem and cfg.run.attention_backend != backend:
            problem = (f"run.context_parallel {cp} runs attention on {backend!r} (run.attention_backend: auto): "
                       f"{problem}")
        if problem:
            log.error("preflight: %s Nothing was run.", problem)
            return EXIT_USER_ERROR
    record_section(cfg.work_dir, STAGE, {"run_id": run_id(), "failed": len(problems),
                                         "items": [ItemResult(item, "failed", 0.0, reason, user_error=True).to_json()
                                                   for item, reason in problems.items()]},
                   new_run=True)  # a new run: the stages add their sections
    log.info("preflight: %d of %d item(s) ready%s.", len(healthy), len(items),
             f"; {len(items) - len(healthy)} will fail (above)" if problems else "")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
