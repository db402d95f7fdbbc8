"""Stage 5 — evaluate the config's outputs → `{work_dir}/eval/`: metrics.csv, report.md and plots.

Per output (trajectory × video × run_tag of the current sweep, once its infer record matches the config): PSNR and
SSIM of output vs input (reconstruction: meaningful for a camera that does not move) and of output vs render on the
render's visible pixels (how well what was seen is kept); LPIPS (AlexNet) of output vs input where torchvision and
its weights are available; CLIP-T, CLIP-F and CLIP-V with a CLIP model through transformers. Definitions:
`inverse_dvs/metrics.py` and README → Evaluation. Each output's numbers are kept in
`eval/runs/{trajectory}/{video}/{run_tag}/metrics.json` (resumable like every stage); the tables and plots are
rebuilt from them on every run. Outputs of long clips, made in windows, also get the seam figure
(`core.windows.seam_figure`): the frame-to-frame change across each window boundary against the median inside.
"""

from __future__ import annotations

import csv
import json
import math
from functools import partial
from pathlib import Path

import numpy as np

from .config import Config, Selection, TrajectorySpec, VideoSpec, needed_models, section_dict, select
from .core.metrics import clip_frame, clip_text, clip_view, psnr_per_frame, ssim_per_frame
from .core.windows import Window, seam_figure
from .infra.artifacts import atomic_path, read_meta, upstream, write_json
from .infra.errors import UserError
from .infra.hub import require
from .infra.layout import eval_dir, render_file, result_dir, run_dir
from .infra.video_io import FrameSelection, read_clip, read_frames
from .models.clip_scorer import clip_scorer, lpips_available
from .pipeline import plan_sweep
from .runner.cli import get_logger, run_stage
from .runner.records import infer_depends, output_fps, render_chain, video_prompt
from .runner.workqueue import Item, StageRunner, process_state

STAGE = "evaluate"
COLUMNS = ("trajectory", "video", "run_tag", "method", "identity", "frames", "psnr_input", "ssim_input", "lpips_input",
           "psnr_visible", "ssim_visible", "clip_t", "clip_f", "clip_v", "seam_ratio")
# The paper's figures (arXiv 2506.08004): Fig. 10 reconstruction (a camera that does not move), Table 2 mean over 10
# canonical trajectories, Table 1 on 1000 OpenVid clips.
PAPER = {"reconstruction": {"psnr_input": 29.56, "ssim_input": 0.910, "lpips_input": 0.063},
         "benchmark": {"psnr_visible": 14.50, "ssim_visible": 0.531, "lpips_input": 0.487},
         "clip": {"clip_t": 35.37, "clip_f": 98.54, "clip_v": 92.04}}


def _mean(x: np.ndarray) -> float | None:
    v = float(np.nanmean(x)) if np.isfinite(x).any() else None
    return None if v is None or math.isnan(v) else round(v, 4)


def _is_identity(rdir: Path) -> bool:
    cams = json.loads((rdir / "cameras.json").read_text(encoding="utf-8"))
    return bool(np.allclose(np.asarray(cams["source_to_target"]), np.eye(4), atol=1e-9))


def _infer_record(cfg: Config, pt, prompt: str, fps: float, video: VideoSpec, traj: TrajectorySpec,
                  tag: str) -> dict:
    """What the infer record of an output made with the current config holds. Under `model.vae_tiling: auto` either
    resolution fits the config (it resolves per GPU, and the evaluation may run on another machine), so the one the
    output records is taken."""
    tiling = cfg.model.vae_tiling == "on"
    if cfg.model.vae_tiling == "auto":
        meta = read_meta(run_dir(cfg.work_dir, traj.name, video.name, tag)) or {}
        tiling = meta.get("depends", {}).get("model", {}).get("vae_tiling") == "on"
    return infer_depends(cfg, pt, prompt, fps, tiling)


def _inputs(cfg: Config, video: VideoSpec, traj: TrajectorySpec, tag: str, depends: dict) -> dict[str, str]:
    """Hashes of output, input, render and masks, after checking the output's infer record (`depends`, as
    records.infer_depends gives it for the current config) and the records before it."""
    hashes = render_chain(cfg, video, traj)
    folder = run_dir(cfg.work_dir, traj.name, video.name, tag)
    hashes |= upstream(folder, "infer", depends, {"output": folder / "output.mp4"},
                       what=f"output {tag} of video '{video.name}' along '{traj.name}'")
    return {k: hashes[k] for k in ("output", "input", "render", "masks")}


def _eval_item(cfg: Config, model, folder: Path, *, video: VideoSpec, traj: TrajectorySpec, tag: str,
               prompt: str) -> tuple[list[str], dict]:
    c = cfg.camera
    rdir = result_dir(cfg.work_dir, traj.name, video.name)
    out_dir = run_dir(cfg.work_dir, traj.name, video.name, tag)
    ren = read_frames(render_file(cfg.work_dir, traj.name, video.name))
    sel, hw = FrameSelection(None), ren.shape[1:3]  # the model size (the video's own with `camera.height: auto`)
    out = read_clip(out_dir / "output.mp4", sel, hw, c.resize).frames
    n = len(out)  # the whole clip, or the part the windows cover (camera.last_window: drop)
    inp = read_clip(rdir / "input.mp4", sel, hw, c.resize).frames[:n]
    ren = ren[:n]
    with np.load(rdir / "masks.npz") as z:
        visible = z["visible"][:n]
    windows = [Window(w["window"], w["frames"][0], w["frames"][1], w["overlap"])
               for w in (read_meta(out_dir) or {}).get("windows", [])]
    seams = seam_figure(out, windows) if len(windows) > 1 else None
    psnr_in, psnr_vis = psnr_per_frame(out, inp), psnr_per_frame(out, ren, visible)
    ssim_in, ssim_vis = ssim_per_frame(out, inp), ssim_per_frame(out, ren, visible)
    scorer = model.get()
    emb_out, emb_in = scorer.embed_frames(out), scorer.embed_frames(inp)
    row = {"trajectory": traj.name, "video": video.name, "run_tag": tag, "method": cfg.method,
           "identity": _is_identity(rdir), "frames": len(out),
           "psnr_input": _mean(psnr_in), "ssim_input": _mean(ssim_in), "lpips_input": scorer.lpips(out, inp),
           "psnr_visible": _mean(psnr_vis), "ssim_visible": _mean(ssim_vis),
           "clip_t": round(clip_text(emb_out, scorer.embed_text(prompt)), 3) if prompt else None,
           "clip_f": round(clip_frame(emb_out), 3), "clip_v": round(clip_view(emb_out, emb_in), 3),
           "seam_ratio": max((b["ratio"] for b in seams["boundaries"] if b["ratio"] is not None), default=None)
           if seams else None}
    write_json(folder / "metrics.json", {"summary": row, "prompt": prompt, "seams": seams,
                                         "per_frame": {"psnr_input": [round(float(x), 4) for x in psnr_in],
                                                       "psnr_visible": [None if math.isnan(x) else round(float(x), 4)
                                                                        for x in psnr_vis]}})
    return ["metrics.json"], {"summary": row, "process_model_loads": model.loads}


def _fmt(v) -> str:
    return "—" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def _means(rows: list[dict], key: str) -> dict[str, dict]:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r[key], []).append(r)
    out = {}
    for name, rs in groups.items():
        out[name] = {m: (round(float(np.mean([r[m] for r in rs if r[m] is not None])), 4)
                         if any(r[m] is not None for r in rs) else None) for m in COLUMNS[6:]}
        out[name]["n"] = len(rs)
    return out


def write_report(cfg: Config, rows: list[dict], per_frame: dict[str, dict], lpips_note: str | None,
                 seams: dict[str, dict] | None = None) -> list[Path]:
    """metrics.csv, report.md and two plots in {work_dir}/eval/ from the per-output metrics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edir = eval_dir(cfg.work_dir)
    edir.mkdir(parents=True, exist_ok=True)
    with atomic_path(edir / "metrics.csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    metrics = COLUMNS[6:]
    lines = [f"# Evaluation of `{cfg.source}`", "",
             f"{len(rows)} output(s). Definitions: README → Evaluation. "
             + ("The models are the tiny random test checkpoints: these numbers are noise, not results. "
                if "tiny" in cfg.inversion.model else "")
             + (f"LPIPS is empty: {lpips_note}." if lpips_note else ""), "",
             "## Per output", "", "| trajectory | video | run_tag | " + " | ".join(metrics) + " |",
             "|---|---|---|" + "---|" * len(metrics)]
    lines += [f"| {r['trajectory']} | {r['video']} | {r['run_tag']} | " + " | ".join(_fmt(r[m]) for m in metrics)
              + " |" for r in rows]
    for key, title in (("trajectory", "Mean per trajectory"), ("run_tag", "Mean per run_tag")):
        lines += ["", f"## {title}", "", f"| {key} | n | " + " | ".join(metrics) + " |",
                  "|---|---|" + "---|" * len(metrics)]
        lines += [f"| {name} | {m['n']} | " + " | ".join(_fmt(m[k]) for k in metrics) + " |"
                  for name, m in _means(rows, key).items()]
    recon = [r for r in rows if r["identity"]]
    moved = [r for r in rows if not r["identity"]]

    def mean(rs: list[dict], k: str):
        vals = [r[k] for r in rs if r[k] is not None]
        return round(float(np.mean(vals)), 4) if vals else None

    lines += ["", "## Beside the paper", "", "| what | metric | paper | ours | outputs |", "|---|---|---|---|---|"]
    for group, rs, label in (("reconstruction", recon, "camera that does not move (Fig. 10)"),
                             ("benchmark", moved, "moving cameras, mean (Table 2)"),
                             ("clip", rows, "all outputs (Table 1)")):
        for k, v in PAPER[group].items():
            lines.append(f"| {label} | {k} | {v} | {_fmt(mean(rs, k))} | {len(rs)} |")
    lines += ["", "The paper's Table 2 compares with held-out views the benchmark has and this protocol does not: "
              "ours is PSNR/SSIM against the render's visible pixels and LPIPS against the input. FID and FVD "
              "(torch-fidelity or the StyleGAN-V FVD code with I3D weights, against a reference set), RotErr/TransErr "
              "(camera poses of the outputs from GLOMAP), Mat. Pix. (matches between views from GIM) and FVD-V need "
              "networks or weights this project does not ship; they are left out, not estimated."]
    if seams:
        lines += ["", "## Seams of long clips", "",
                  "Per window boundary: the largest mean absolute frame-to-frame change (grey levels) over the "
                  "hand-over, and its ratio to the median change inside the windows (`seam_ratio` above: the largest "
                  "per output). Near 1: the hand-over changes the picture no more than the video does from frame to "
                  "frame; well above 1: a visible seam.", "",
                  "| output | window | frames | change | inside median | ratio |", "|---|---|---|---|---|---|"]
        for label, s in seams.items():
            lines += [f"| {label} | {b['window']} | {b['frames'][0]}–{b['frames'][1]} | {b['change']:.3f} | "
                      f"{s['inside_median_change']:.3f} | {_fmt(b['ratio'])} |" for b in s["boundaries"]]
    with atomic_path(edir / "report.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")

    by_traj = _means(rows, "trajectory")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, keys, title in zip(axes, (("psnr_input", "psnr_visible"), ("ssim_input", "ssim_visible"),
                                      ("clip_t", "clip_f", "clip_v")), ("PSNR (dB)", "SSIM", "CLIP (×100)"),
                               strict=True):
        names = list(by_traj)
        for i, k in enumerate(keys):
            vals = [by_traj[n][k] if by_traj[n][k] is not None else np.nan for n in names]
            ax.bar(np.arange(len(names)) + i * 0.8 / len(keys), vals, 0.8 / len(keys), label=k)
        ax.set_xticks(np.arange(len(names)) + 0.4 - 0.4 / len(keys))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(edir / "metrics_per_trajectory.png") as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), sharey=True)
    for label, pf in per_frame.items():
        for ax, k in zip(axes, ("psnr_input", "psnr_visible"), strict=True):
            ax.plot([np.nan if v is None else v for v in pf[k]], lw=1, label=label)
    for ax, k in zip(axes, ("output vs input", "output vs render (visible pixels)"), strict=True):
        ax.set_title(f"PSNR per frame: {k}")
        ax.set_xlabel("frame")
    axes[0].set_ylabel("dB")
    if len(per_frame) <= 12:
        axes[1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    with atomic_path(edir / "psnr_per_frame.png") as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return [edir / n for n in ("metrics.csv", "report.md", "metrics_per_trajectory.png", "psnr_per_frame.png")]


def run(cfg: Config, selection: Selection | None = None, *, force: bool = False, quiet: bool = False,
        model=None) -> int:
    """Evaluate every output of the config's sweep for the selected (trajectory, video) (cfg: a resolved config;
    `model`: a models.clip_scorer Lazy to share, else one is made here), then rebuild the report. Returns the exit
    code (0, 1 or 2)."""
    log = get_logger()
    videos, trajectories = select(cfg, selection)
    state = process_state()
    require(needed_models(cfg, (STAGE,)))
    note = lpips_available(cfg)
    if note:
        log.warning("evaluate: LPIPS is left empty: %s. Everything else is computed.", note)
    plans = plan_sweep(cfg, log)
    runner = StageRunner(STAGE, cfg.work_dir, force, log, state, total=len(trajectories) * len(videos) * len(plans))
    scorer = model or clip_scorer(cfg, state)
    depends = {"eval": section_dict(cfg.eval), "lpips": note is None, "camera": section_dict(cfg.camera)}
    items = []
    for traj in trajectories:
        for v in videos:
            fps = output_fps(cfg, v, traj)
            try:
                prompt = video_prompt(cfg, v, traj)
            except UserError as exc:  # no usable caption yet: these items fail, the others go on
                for plan in plans:
                    runner.fail(Item(video=v.name, trajectory=traj.name, run=plan.run_tag), exc)
                continue
            for plan in plans:
                tag = plan.run_tag
                folder = eval_dir(cfg.work_dir) / "runs" / traj.name / v.name / tag
                items.append(folder)
                runner.run(Item(video=v.name, trajectory=traj.name, run=tag), folder, depends,
                           partial(_inputs, cfg, v, traj, tag, _infer_record(cfg, plan.point, prompt, fps, v, traj,
                                                                            tag)),
                           partial(_eval_item, cfg, scorer, video=v, traj=traj, tag=tag, prompt=prompt))
    rc = runner.finish()
    if runner.index == 0:
        rows, per_frame, seams = [], {}, {}
        for folder in items:
            meta = read_meta(folder)
            if meta and meta.get("stage") == STAGE and (folder / "metrics.json").is_file():
                m = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
                rows.append(m["summary"])
                label = f"{m['summary']['trajectory']}/{m['summary']['video']}/{m['summary']['run_tag']}"
                per_frame[label] = m["per_frame"]
                if m.get("seams"):
                    seams[label] = m["seams"]
        if rows:
            paths = write_report(cfg, rows, per_frame, note, seams)
            log.info("evaluate: %d output(s) → %s", len(rows), ", ".join(str(p) for p in paths))
    return rc


def main(argv: list[str] | None = None) -> int:
    return run_stage(STAGE, __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
