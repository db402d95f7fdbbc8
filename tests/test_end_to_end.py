"""One CPU end-to-end run of all four stages on the tiny checkpoints, in-process (no downloads)."""

import csv
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from inverse_dvs import depth, evaluate, infer, invert, warp


@pytest.fixture
def workdir(tmp_path, tiny_checkpoints, demo_video):
    cfg = tmp_path / "tiny.yml"
    traj = tmp_path / "loop.txt"
    traj.write_text("0 2 10 6 0\n0 -3 -10 -5 0\n0 0.02 0.09 0")
    cfg.write_text(f"""
method: paper
run: {{work_dir: {tmp_path / 'out'}, device: cpu, dtype: fp32, seed: 42}}
videos: [{{path: {demo_video}, name: demo, prompt: "a ball"}}]
trajectories:
  loop: {{file: {traj}}}
  orbit: {{preset: orbit_left, amount: 8}}
depth: {{backend: depth_anything, model: {tiny_checkpoints / 'tiny-depth-anything'}}}
camera: {{num_frames: 49, height: 96, width: 144}}
inversion: {{model: {tiny_checkpoints / 'tiny-cogvideox-i2v'}, steps: 3}}
inference: {{steps: [4], strength: [0.75], guidance_scale: [4.0, 6.0], seeds: [1, 2]}}
eval: {{clip_model: {tiny_checkpoints / 'tiny-clip'}}}
""")
    return tmp_path, str(cfg)


def run_all(cfg, *extra):
    for stage in (depth, warp, invert, infer):
        assert stage.main(["--config", cfg, "--quiet", *extra]) == 0


def mtimes(root):
    """Modification times of every artifact (the per-run logs and run_summary.json are rewritten by design)."""
    return {p: os.stat(p).st_mtime_ns for p in root.rglob("*")
            if p.is_file() and "logs" not in p.parts and "eval" not in p.parts and p.name != "run_summary.json"}


@pytest.mark.slow
def test_all_stages_contract_resume_and_determinism(workdir, monkeypatch):
    from diffusers import CogVideoXImageToVideoPipeline

    tmp, cfg = workdir
    loads = []
    original = CogVideoXImageToVideoPipeline.from_pretrained.__func__

    def counting(cls, *a, **kw):
        loads.append(a[0])
        return original(cls, *a, **kw)

    monkeypatch.setattr(CogVideoXImageToVideoPipeline, "from_pretrained", classmethod(counting))
    run_all(cfg)
    assert len(loads) == 2  # one load in invert, one in infer, for 2 trajectories

    out = tmp / "out"
    with np.load(out / "depths/demo/depth.npz") as z:
        d = z["depth"]
    assert d.dtype == np.float32 and d.shape == (49, 96, 144) and (d > 0).all()
    for traj in ("loop", "orbit"):
        r = out / "results" / traj / "demo"
        for f in ("input.mp4", "render.npz", "render.mp4", "mask.mp4", "masks.npz", "cameras.json", "trajectory.png",
                  "meta.json"):
            assert (r / f).is_file(), f
        with np.load(r / "masks.npz") as z:
            assert z["visible"].dtype == bool and z["visible"].shape == (49, 96, 144)
            assert z["visible_warp"].dtype == bool and z["visible_warp"].shape == (49, 96, 144)  # warp size here
        with np.load(r / "render.npz") as z:  # the render the later stages read, lossless
            assert z["frames"].dtype == np.uint8 and z["frames"].shape == (49, 96, 144, 3)
        cams = json.loads((r / "cameras.json").read_text())
        assert np.array(cams["K"]).shape == (3, 3) and np.array(cams["source_to_target"]).shape == (49, 4, 4)
        inv = out / "inversions" / traj / "demo"
        assert (inv / "inversion_t0749.safetensors").is_file() and (inv / "meta.json").is_file()
        runs = sorted(p for p in r.iterdir() if p.is_dir())
        assert len(runs) == 4 and all(p.name.endswith(("seed1", "seed2")) for p in runs)  # a 2×2 sweep
        for run in runs:
            meta = json.loads((run / "meta.json").read_text())
            assert meta["stage"] == "infer" and meta["process_model_loads"] == 1 and meta["sampling_nfe"] == 2 * 3
            assert meta["inversion_nfe"] == 3 and meta["nfe_per_output"] == 3 + 2 * 3 and meta["method"] == "paper"
            assert (run / "output.mp4").is_file() and (run / "comparison.mp4").is_file()
        seed1, seed2 = (next(p for p in runs if p.name.endswith(f"cfg6_pres6_k10_d3_seed{s}")) for s in (1, 2))
        assert (seed1 / "output.mp4").read_bytes() != (seed2 / "output.mp4").read_bytes()  # seeds differ

    before = mtimes(out)
    run_all(cfg)
    assert mtimes(out) == before  # everything up to date: nothing rewritten

    # same seed again from scratch → identical bytes
    run = next(p for p in (out / "results/loop/demo").iterdir() if p.name.endswith("seed1"))
    first = (run / "output.mp4").read_bytes()
    assert infer.main(["--config", cfg, "--quiet", "--force", "--only-trajectory", "loop"]) == 0
    assert (run / "output.mp4").read_bytes() == first

    # evaluation: one row per output, the report, the plots; a rerun computes nothing again
    assert evaluate.main(["--config", cfg, "--quiet"]) == 0
    rows = list(csv.DictReader((out / "eval/metrics.csv").open()))
    assert len(rows) == 8 and {r["trajectory"] for r in rows} == {"loop", "orbit"}
    assert all(float(r["psnr_input"]) > 0 and float(r["clip_f"]) > 0 and r["lpips_input"] == "" for r in rows)
    report = (out / "eval/report.md").read_text()
    assert "these numbers are noise, not results" in report  # the tiny random models say so
    # no camera here stands still: the paper's reconstruction figures stand beside nothing
    assert "| camera that does not move (Fig. 10) | psnr_input | 29.56 | — | 0 |" in report
    assert "| all outputs (Table 1) | clip_t | 35.37 |" in report
    for png in ("metrics_per_trajectory.png", "psnr_per_frame.png"):
        assert (out / "eval" / png).stat().st_size > 1000
    metrics = sorted((out / "eval/runs").rglob("metrics.json"))
    stamp = [m.stat().st_mtime_ns for m in metrics]
    assert evaluate.main(["--config", cfg, "--quiet"]) == 0
    assert [m.stat().st_mtime_ns for m in metrics] == stamp
    summary = json.loads((out / "run_summary.json").read_text())["evaluate"]
    assert {i["status"] for i in summary["items"]} == {"skipped"}

    # an inference-only change recomputes inference only
    before = mtimes(out)
    run_all(cfg, "--set", "inference.guidance_scale=[5.0]")
    after = mtimes(out)
    changed = {p for p in after if before.get(p) != after[p]}
    assert changed and all("cfg5" in str(p) for p in changed)


def test_infer_bad_input(workdir, capsys):
    tmp, cfg = workdir
    for stage in (depth, warp):
        assert stage.main(["--config", cfg, "--quiet"]) == 0
    assert infer.main(["--config", cfg, "--quiet"]) == 2  # no inversion yet
    err = capsys.readouterr().err
    assert "python -m inverse_dvs.invert" in err and "inversions/loop/demo" in err
    prompts = tmp / "prompts"
    prompts.mkdir()
    (prompts / "demo.txt").write_bytes("caf\xe9".encode("latin-1"))
    no_prompt = tmp / "no_prompt.yml"
    no_prompt.write_text(open(cfg).read().replace('prompt: "a ball"', 'prompt: ""'))
    cwd = os.getcwd()
    os.chdir(tmp)  # prompts/{video}.txt is looked up from the working directory
    try:
        assert infer.main(["--config", str(no_prompt), "--quiet"]) == 2
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    assert "prompts/demo.txt" in err and "not UTF-8" in err


def test_reference_method_end_to_end(tmp_path, tiny_checkpoints, demo_video, monkeypatch, capsys):
    """`method: reference` on the tiny models: terminal inversion with the empty prompt, the LoRA on for inversion and
    sampling, reference SLM/pooling/noise init, dynamic CFG; every artifact written; NFE per output recorded."""
    from diffusers import CogVideoXImageToVideoPipeline

    cfg = tmp_path / "ref.yml"
    cfg.write_text(f"""
method: reference
run: {{work_dir: {tmp_path / 'out'}, device: cpu, dtype: fp32, seed: 42}}
videos: [{{path: {demo_video}, name: demo, prompt: "a ball"}}]
trajectories: {{orbit: {{preset: orbit_left, amount: 8}}}}
depth: {{backend: ground_truth}}
camera: {{num_frames: 49, height: 96, width: 144, warp_size: [144, 256]}}
inversion: {{model: {tiny_checkpoints / 'tiny-cogvideox-i2v'}, steps: 3}}
model: {{lora: {tiny_checkpoints / 'tiny-lora'}, lora_weight_name: tiny_lora.safetensors}}
inference: {{steps: [4], strength: [0.75], guidance_scale: [10], k_order: [5, 10, 20]}}
""")
    lora_loads = []
    original = CogVideoXImageToVideoPipeline.load_lora_weights

    def counting(self, *a, **kw):
        lora_loads.append(a[0])
        return original(self, *a, **kw)

    monkeypatch.setattr(CogVideoXImageToVideoPipeline, "load_lora_weights", counting)
    run_all(str(cfg))
    assert len(lora_loads) == 2  # invert and infer both run the LoRA model
    inv_dir = tmp_path / "out/inversions/orbit/demo"
    assert [p.name for p in inv_dir.glob("*.safetensors")] == ["inversion_t0999.safetensors"]
    inv_meta = json.loads((inv_dir / "meta.json").read_text())
    assert inv_meta["prompt"] == "" and inv_meta["nfe"] == 3 and inv_meta["depends"]["inversion"]["end"] == "terminal"
    runs = [p for p in (tmp_path / "out/results/orbit/demo").iterdir() if p.is_dir()]
    # the k sweep collapses; the tiny LoRA departs from the preset's, which the tag's hash records
    assert len(runs) == 1 and re.fullmatch(r"reference\+[0-9a-f]{6}_steps4_str0\.75_cfg10_pres1_seed42", runs[0].name)
    meta = json.loads((runs[0] / "meta.json").read_text())
    assert meta["method"] == "reference" and meta["t_start"] == 749
    # inversion: 3 steps, no CFG; sampling: ⌊4·0.75⌋ = 3 steps × 2 (CFG)
    assert (meta["inversion_nfe"], meta["sampling_nfe"], meta["nfe_per_output"]) == (3, 6, 9)
    assert (runs[0] / "output.mp4").is_file() and (runs[0] / "comparison.mp4").is_file()
    assert meta["depends"]["inference"]["negative_prompt"].startswith("crowded scene")
    # the render side: decoded, given depth and warped at 144×256 (16:9, stretched), f = 500 at 576×1024 scaled
    rdir = tmp_path / "out/results/orbit/demo"
    cams = json.loads((rdir / "cameras.json").read_text())
    assert (cams["height"], cams["width"], cams["model_height"], cams["model_width"]) == (144, 256, 96, 144)
    assert np.allclose(np.array(cams["K"]), [[125, 0, 128.125], [0, 125, 72.125], [0, 0, 1]])  # (512.5, 288.5) / 4
    with np.load(tmp_path / "out/depths/demo/depth.npz") as z:
        assert z["depth"].shape == (49, 144, 256)
    with np.load(rdir / "masks.npz") as z:
        vis, visible, warp_mask = z["visibility"], z["visible"], z["visible_warp"]
    assert vis.shape == visible.shape == (49, 96, 144) and vis.dtype == np.float32
    assert warp_mask.shape == (49, 144, 256) and warp_mask.dtype == bool  # the splat's mask, before the resize
    assert ((vis > 0) & (vis < 1)).any()  # area-resized: fractional at hole borders
    assert np.array_equal(visible, vis >= 0.5)
    # what made a file, as `python -m inverse_dvs.inspect` says it: the video's frames, size, fps (the source's 8,
    # the method no longer sets one) and its record; then the same file damaged, an array file, a missing path
    from inverse_dvs import inspect as inspect_cli

    out_mp4 = runs[0] / "output.mp4"
    assert inspect_cli.main([str(out_mp4)]) == 0
    text = capsys.readouterr().out
    assert "video: 49 frames, 96×144 (height × width), 8 fps, 6.12 s" in text
    assert "matches its record" in text and "made by: the infer stage" in text
    assert "point.guidance_scale: 10" in text and 'slm.mode: "reference"' in text
    assert f"render: sha256 {meta['inputs']['render'][:16]}" in text
    assert inspect_cli.main(["--json", str(rdir / "masks.npz"), str(inv_dir)]) == 0
    masks, folder = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert masks["arrays"]["visible"] == "[49, 96, 144] bool" and masks["record"]["stage"] == "warp"
    assert folder["record"]["stage"] == "invert" and "digest" not in folder
    with open(out_mp4, "r+b") as fh:
        fh.seek(-64, 2)
        fh.write(bytes(64))
    assert inspect_cli.main([str(out_mp4)]) == 2  # its index is at the end: no longer a readable video
    text = capsys.readouterr().out
    assert "unreadable as a video" in text and "differs from its record: changed since it was made" in text
    assert inspect_cli.main([str(tmp_path / "nothing.mp4")]) == 2
    assert "nothing.mp4' does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_reconstruction_config_writes_one_output_per_order(tmp_path):
    """configs/tiny_reconstruction.yml (configs/reconstruction.yml on the tiny models): an identity camera, the
    empty-prompt terminal inversion, plain K-RNR of order 0, 1 and 2, no CFG: three outputs, one pass per step."""
    from inverse_dvs import caption

    cfg = str(Path(__file__).resolve().parents[1] / "configs" / "tiny_reconstruction.yml")
    args = ["--config", cfg, "--quiet", "--set", f"run.work_dir={tmp_path / 'out'}"]
    for stage in (depth, warp, caption, invert, infer):
        assert stage.main(args) == 0
    metas = [json.loads(p.read_text()) for p in (tmp_path / "out/results/identity/demo").glob("*/meta.json")]
    assert sorted(m["params"]["k_order"] for m in metas) == [0, 1, 2]
    for m in metas:
        assert m["params"]["adaptive_order"] is None and m["sampling_nfe"] == m["sampling_steps"] == 47  # no CFG
        assert m["t_start"] == 939 and m["depends"]["inference"]["noise_init"] == "adaptive"
    inv = json.loads((tmp_path / "out/inversions/identity/demo/meta.json").read_text())
    assert inv["prompt"] == "" and inv["depends"]["inversion"]["end"] == "terminal"
