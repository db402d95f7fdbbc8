"""The one-call GPU check (run by `scripts/gpu_check.sh`, which prepares the environment): one table of what a GPU
session must measure, printed and written to `$OUT/gpu_check.md` (+ `gpu_check.json`, `tiny_e2e.log`).

On CUDA, with CogVideoX-5B-I2V's real architecture and random weights built on the GPU (bench_pipeline's model):
eager and compiled transformer passes at batch 1 and 2; the compile warm-up; one output at paper settings through
the pipeline object the stages run (compiled, exact), then the same with a step cache; peak memory with
`offload: none` and `offload: model`; the README's Python API on the device with the tiny model (two calls); and a
pass of the tiny end-to-end run (`run_all.sh configs/tiny.yml` with `run.device: cuda`, compile on), which must
finish without error. Steps that would overrun `--budget` are skipped and say so, so the whole call fits one device
lease; the table is rewritten after every step; `--only` picks steps.

`--model 1.5`: CogVideoX1.5-5B-I2V's real architecture at 81×768×1360 (44,880 tokens per pass, 2.6 times the 5B
model's 17,550): eager passes at batch 1 and 2, one output with few steps (a breakdown, its peak memory with
`offload: none`, and the paper-settings time extrapolated from the passes), the peak with `offload: model` and VAE
tiling on (what a 24 GB card runs; target: under 22 GiB), and the tiny end-to-end run of configs/tiny15.yml. No
compile step: its warm-up at this size does not fit the budget beside the rest.

Both: the attention backends (`run.attention_backend`) side by side, one transformer pass at batch 2 on each backbone
(`--only backends` runs just that: about 3 minutes on an H200, an estimate).

`--cpu`: the same steps with the tiny checkpoint on the CPU (compile with aot_eager; the end-to-end run on one
trajectory and one sweep point; no timing targets): a test of this script, not a measurement.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.bench_pipeline import (  # noqa: E402 - after the path fix, so `python scripts/gpu_check.py` works
    ARCHS,
    bench_config,
    forward_seconds,
    make_model,
    one_output,
    synthetic_item,
    tiny_arch,
)

ROOT = Path(__file__).resolve().parents[1]
# the issues' targets on one H200 at paper settings (seconds per output, GiB of peak reserved memory); 1.5: it must
# fit a 24 GB card with `offload: model`
TARGETS = {"5b": {"exact_s": 90.0, "cached_s": 60.0, "peak_none_gb": 30.0, "peak_model_gb": 16.0},
           "1.5": {"peak_model_gb": 22.0}}
# rough seconds each step needs on an H200, to skip what would overrun the budget
ESTIMATES = {"api": 40.0, "e2e": 150.0, "build": 20.0, "eager": 10.0, "compile": 150.0, "exact": 120.0,
             "cached": 70.0, "offload_model": 40.0, "backends": 200.0}
ESTIMATES_15 = {"api": 40.0, "e2e": 120.0, "build": 25.0, "eager": 40.0, "exact": 120.0, "offload_model": 150.0,
                "backends": 200.0}
# CogVideoX1.5: the few steps of its timed output (the paper's 30 + 47 CFG steps are extrapolated from the passes)
FEW_STEPS_15 = ("inversion.steps=3", "inference.steps=[4]", "inference.strength=[0.75]")


class Check:
    """Runs steps within a time budget; a failing step is recorded and the next one runs."""

    def __init__(self, budget: float | None, on_result=None, only: set[str] | None = None):
        """`on_result()` runs after every step (the table is rewritten then, so a call stopped at its time limit still
        leaves the figures of the steps that finished); `only`: the steps to run (None: all)."""
        self.budget, self.t0 = budget, time.perf_counter()
        self.results: dict[str, dict] = {}
        self.on_result = on_result or (lambda: None)
        self.only = only

    def left(self) -> float:
        return float("inf") if self.budget is None else self.budget - (time.perf_counter() - self.t0)

    estimates = ESTIMATES

    def step(self, name: str, fn, *args) -> dict | None:
        need = self.estimates.get(name, 0.0)
        if self.only is not None and name not in self.only:
            self.results[name] = {"skipped": "not asked for (--only)"}
            self.on_result()
            return None
        if need > self.left():
            self.results[name] = {"skipped": f"budget ({self.left():.0f} s left, about {need:.0f} s needed)"}
            self.on_result()
            return None
        t0 = time.perf_counter()
        self.results[name] = {"running": "stopped before it finished (the call's time limit?)"}
        self.on_result()
        try:
            out = fn(*args)
        except Exception as exc:
            traceback.print_exc()
            self.results[name] = {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
                                  if str(exc).strip() else type(exc).__name__}
            self.on_result()
            return None
        self.results[name] = {**out, "step_s": round(time.perf_counter() - t0, 1)}
        self.on_result()
        return self.results[name]


def tiny_e2e(device: str, backend: str, work: Path, log_path: Path, timeout: float, small: bool = False,
             config: str = "configs/tiny.yml") -> dict:
    """`bash run_all.sh CONFIG` on `device` with compile on, in a fresh work folder (`small`, for configs/tiny.yml: one
    trajectory and one sweep point)."""
    # The demo scene's exact depth (`ground_truth`): the tiny depth model's random weights give a near-constant
    # disparity, which the percentile mapping stretches into a different random scene on every device (on CUDA a
    # latent frame of the demo came out fully occluded), so its output would test the depth model's noise rather
    # than the run.
    cmd = ["bash", str(ROOT / "run_all.sh"), config, "--quiet", "--set", "depth.backend=ground_truth",
           "--set", f"run.device={device}",
           "--set", "run.compile=on", "--set", f"run.compile_backend={backend}", "--set", f"run.work_dir={work}"]
    if small and config == "configs/tiny.yml":
        cmd += ["--only-trajectory", "loop1", "--set", "inference.guidance_scale=[4.0]", "--set", "inference.seeds=[1]"]
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            rc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    outputs = sorted(work.glob("results/*/*/*/output.mp4"))
    metas = [json.loads((p.parent / "meta.json").read_text()) for p in outputs if (p.parent / "meta.json").is_file()]
    return {"rc": rc, "seconds": round(time.perf_counter() - t0, 1), "outputs": len(outputs),
            "compiled": sorted({m.get("compiled") for m in metas}, key=str),
            "compile_failed": sorted({m["compile_failed"] for m in metas if "compile_failed" in m})}


def api_run(device: str, model: str) -> dict:
    """The README's Python API on `device` with the tiny checkpoints (in this process): one call along a preset, then
    the same call again (equal frames, one model load). The depth is the demo's exact one (`ground_truth`, read
    beside the video), as in the end-to-end run: the tiny depth model's random weights give a near-constant
    disparity, whose stretched noise on CUDA made a scene with a fully occluded latent frame (first H200 run)."""
    from inverse_dvs import InverseDVSPipeline

    tiny = {"5b": "checkpoints/tiny-cogvideox-i2v", "1.5": "checkpoints/tiny-cogvideox15-i2v"}[model]
    # the default method (`reference`), whose LoRA is Go-with-the-Flow's for the 5B: the tiny 5B has a tiny LoRA,
    # the tiny 1.5 runs without one
    lora = {"5b": {"lora": str(ROOT / "checkpoints/tiny-lora"), "lora_weight_name": "tiny_lora.safetensors"},
            "1.5": {"lora": None, "lora_weight_name": None}}[model]
    pipe = InverseDVSPipeline.from_pretrained(str(ROOT / tiny), device=device, depth={"backend": "ground_truth"},
                                              model=lora)
    pipe.set_progress_bar_config(disable=True)
    t0 = time.perf_counter()
    out = pipe(str(ROOT / "data/demo.mp4"), "orbit_left", prompt="a red ball rolls past a blue box")
    seconds = time.perf_counter() - t0
    again = pipe(str(ROOT / "data/demo.mp4"), "orbit_left", prompt="a red ball rolls past a blue box")
    same = bool((again.frames == out.frames).all())
    pipe.release()
    if not same or pipe.stats.loads != 1:
        raise RuntimeError(f"two calls: equal frames {same}, model loads {pipe.stats.loads}")
    return {"seconds": round(seconds, 1), "frames": list(out.frames.shape), "nfe": out.info["nfe_per_output"],
            "device": str(pipe.device)}


def measure_model(check: Check, a, arch, device: torch.device, backend: str, log: logging.Logger) -> None:
    """Forward passes, compile warm-up, the exact and the cached output on one model (offload: none)."""
    cfg = bench_config(arch, "paper", "on", backend, "none")
    item = synthetic_item(cfg, arch)
    model = make_model(cfg, arch, device, log)
    model.compile = False  # eager passes first
    if check.step("build", lambda: {"loaded": model.get() is not None}) is None:
        return
    check.step("eager", lambda: {"batch1_s": forward_seconds(model, 1), "batch2_s": forward_seconds(model, 2)})

    def compile_and_time():
        model.compile = True
        model.get((1, 2))
        if not model.compiled:
            raise RuntimeError(f"compile failed, the blocks run eager: {model.stats.extra.get('compile_failed')}")
        return {"warmup_s": model.stats.extra.get("compile_warmup_seconds"), "batch1_s": forward_seconds(model, 1),
                "batch2_s": forward_seconds(model, 2)}

    check.step("compile", compile_and_time)
    check.step("exact", one_output, model, cfg, item)
    cached = dataclasses.replace(cfg, inference=dataclasses.replace(cfg.inference, cache=a.cache))
    check.step("cached", one_output, model, cached, item)
    model.unload()


def measure_model_15(check: Check, arch, device: torch.device, log: logging.Logger) -> None:
    """CogVideoX1.5 (offload: none, eager): passes at batch 1 and 2, then one output with few steps, its breakdown and
    peak memory, and the paper-settings time extrapolated (encode + decode + 30 passes at batch 1 + 47 at batch 2)."""
    cfg = bench_config(arch, "paper", "off", "inductor", "none", overrides=FEW_STEPS_15)
    item = synthetic_item(cfg, arch)
    model = make_model(cfg, arch, device, log)
    if check.step("build", lambda: {"loaded": model.get() is not None}) is None:
        return
    passes = check.step("eager", lambda: {"batch1_s": forward_seconds(model, 1), "batch2_s": forward_seconds(model, 2)})
    out = check.step("exact", one_output, model, cfg, item)
    if passes and out:
        out["paper_estimate_s"] = round(out["encode_s"] + out["decode_s"] + 30 * passes["batch1_s"]
                                        + 47 * passes["batch2_s"], 1)
    model.unload()


def measure_backends(cpu: bool, device: torch.device, log: logging.Logger, repeats: int = 3) -> dict:
    """One transformer pass at batch 2 per attention backend (`run.attention_backend`) that runs here, on both
    backbones at their sizes, one after the other in this process: the median seconds of `repeats` passes after one
    warm-up, and the largest difference from `auto`'s output (relative to its largest value). Not `_native_math`
    on a GPU (its score matrix at 45k tokens needs hundreds of GiB) nor `flex` (it compiles first)."""
    from inverse_dvs.models.attention import available_backends, use_attention_backend
    from inverse_dvs.models.compile import transformer_call
    from inverse_dvs.models.placement import largest_call, synchronize

    skip = {"flex"} | (set() if cpu else {"_native_math"})
    backends = ["auto", *[b for b in available_backends(device.type == "cuda") if b not in skip]]
    out: dict[str, dict] = {}
    for name in ("5b", "1.5"):
        arch = tiny_arch(name) if cpu else ARCHS[name]
        cfg = bench_config(arch, "paper", "off", "inductor", "none")
        model = make_model(cfg, arch, device, log)
        pipe = model.get()
        call = transformer_call(pipe, *largest_call(cfg), 2, torch.Generator().manual_seed(0))
        reference, rows = None, {}
        for backend in backends:  # `auto` first: the stock processor, before any other replaces it
            try:
                use_attention_backend(pipe.transformer, backend)
                times = []
                for _ in range(repeats + 1):
                    t0 = time.perf_counter()
                    with torch.inference_mode():
                        result = pipe.transformer(**call)[0].float()
                    synchronize(device)
                    times.append(time.perf_counter() - t0)
                reference = result if reference is None else reference
                diff = ((result - reference).abs().max() / reference.abs().max().clamp_min(1e-12)).item()
                rows[backend] = {"batch2_s": round(sorted(times[1:])[len(times[1:]) // 2], 4),
                                 "max_rel_diff": float(f"{diff:.2g}")}
            except Exception as exc:  # one backend failing does not hide the others
                rows[backend] = {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"}
        out[name] = rows
        del pipe, call, reference
        model.unload()
    return out


def measure_offload_model(a, arch, device: torch.device, log: logging.Logger) -> dict:
    """Peak memory of one output with `offload: model` (eager; few steps: the peak does not depend on their
    number). CogVideoX1.5: VAE tiling on, as `auto` resolves it on a 24 GB card."""
    few = FEW_STEPS_15 if a.model == "1.5" else ("inference.steps=[5]", "inference.strength=[0.8]", "inversion.steps=2")
    # (not with --cpu: diffusers' tiles, sized for the real VAE, do not tile the tiny model's 128×224 frames exactly)
    tiling = ("model.vae_tiling=on",) if a.model == "1.5" and not a.cpu else ()
    cfg = bench_config(arch, "paper", "off", "inductor", "model", overrides=few + tiling)
    item = synthetic_item(cfg, arch)
    model = make_model(cfg, arch, device, log)
    try:
        return one_output(model, cfg, item)
    finally:
        model.unload()


def check_slm_draws(device: torch.device) -> dict:
    """`slm.generator: reference`: our SLM, three rounds (ε, then x0, each), with a fresh generator on the device
    seeded 42 must draw the very indices that `torch.randint` on the device's default generator draws after
    `torch.manual_seed(42)`, as the official code's SLM does. Latents whose values are their own flat positions
    make the drawn indices readable from the filled values."""
    from inverse_dvs.core.slm import stochastic_latent_modulation

    shape = (1, 13, 16, 60, 90)  # the 5B model's latents
    g = torch.Generator(device).manual_seed(0)
    occ = torch.rand((1, 13, 1, 60, 90), generator=g, device=device) < 0.3
    occ_eps = occ & (torch.rand(occ.shape, generator=g, device=device) < 0.5)
    occ, occ_eps = occ.expand(shape), occ_eps.expand(shape)
    positions = torch.arange(occ.numel(), device=device, dtype=torch.float64).view(shape)
    ours, gen = [], torch.Generator(device).manual_seed(42)
    for _ in range(3):
        out = stochastic_latent_modulation(positions, positions, occ, gen, "reference", occluded_eps=occ_eps)
        ours += [torch.searchsorted(positions[~m], filled[m]) for filled, m in ((out.eps, occ_eps), (out.x0, occ))]
    torch.manual_seed(42)
    theirs = [torch.randint(0, int((~m).sum()), (int(m.sum()),), device=device)
              for _ in range(3) for m in (occ_eps, occ)]
    return {"equal": all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True)),
            "draws": sum(int(i.numel()) for i in ours)}


def _status(value: float | None, target: float | None) -> str:
    if value is None or target is None:
        return ""
    return "ok" if value <= target else "**over target**"


def table(results: dict, a, device_name: str) -> str:
    """The check's one table (markdown)."""
    cpu = a.cpu
    target = (lambda key: None) if cpu else TARGETS[a.model].get

    def get(step: str) -> dict:
        return results.get(step) or {}

    def why(step: str) -> str:
        """Why a step has no figures ('' when it has them)."""
        r = get(step)
        if "error" in r:
            return f"error: {r['error']}"
        if "skipped" in r:
            return f"skipped: {r['skipped']}"
        if "running" in r:
            return r["running"]
        return "" if r else "not run"

    rows = []
    e, c = get("eager"), get("compile")
    rows.append(("transformer pass, eager, batch 1 / 2",
                 why("eager") or f"{e['batch1_s']:.3f} s / {e['batch2_s']:.3f} s", "", ""))
    rows.append(("transformer pass, compiled, batch 1 / 2",
                 why("compile") or f"{c['batch1_s']:.3f} s / {c['batch2_s']:.3f} s", "", ""))
    rows.append(("compile warm-up (batch 1 and 2)", why("compile") or f"{c['warmup_s']:.1f} s", "", ""))

    def output_row(step: str, label: str, key: str, eager_by_design: bool = False):
        r = get(step)
        if why(step):
            rows.append((label, why(step), "", ""))
            return
        t = target(key)
        not_compiled = "skipped" in get("compile") and " (ran eager: compile not run)" or " (ran eager: compile failed)"
        eager = "" if r["compiled"] or r["cache"] != "none" or eager_by_design else not_compiled
        measured = (f"{r['output_s']:.1f} s = encode {r['encode_s']:.1f} + inversion {r['inversion_s']:.1f} + "
                    f"sampling {r['sampling_s']:.1f} + decode {r['decode_s']:.1f}; NFE {r['inversion_nfe']} + "
                    f"{r['sampling_nfe']} = {r['nfe']}")
        rows.append((label + eager, measured, f"≤ {t:g} s" if t else "", _status(r["output_s"], t)))

    def memory_row(step: str, label: str, key: str):
        r = get(step)
        if why(step) or r.get("peak_reserved_gb") is None:
            rows.append((label, why(step) or "n/a on the CPU", "", ""))
            return
        t = target(key)
        rows.append((label, f"{r['peak_allocated_gb']:.1f} GiB allocated / {r['peak_reserved_gb']:.1f} GiB reserved "
                            f"(inversion {r['peak_invert_allocated_gb']:.1f}, sampling + decode "
                            f"{r['peak_sample_allocated_gb']:.1f} allocated; VAE tiling "
                            f"{'on' if r['vae_tiling'] else 'off'})", f"≤ {t:g} GiB reserved" if t else "",
                     _status(r["peak_reserved_gb"], t)))

    if a.model == "1.5":
        del rows[1:]  # no compile step at this size
        output_row("exact", "one output, 3 inversion + 3 CFG sampling steps, eager", "", eager_by_design=True)
        r = get("exact")
        if r.get("paper_estimate_s") is not None:
            rows.append(("one output at paper settings (30 + 47 CFG steps), extrapolated from the passes",
                         f"≈ {r['paper_estimate_s']:.0f} s", "", ""))
        memory_row("exact", "peak memory, `offload: none`", "peak_none_gb")
        memory_row("offload_model", "peak memory, `offload: model`, VAE tiling on (a 24 GB card)", "peak_model_gb")
    else:
        output_row("exact", "one output, paper settings, compiled, exact", "exact_s")
        memory_row("exact", "peak memory, `offload: none`", "peak_none_gb")
        output_row("cached", f"one output, compiled + `inference.cache: {a.cache}`", "cached_s")
        memory_row("offload_model", "peak memory, `offload: model` (eager, 2 + 4 steps)", "peak_model_gb")
    r = get("backends")
    if why("backends"):
        rows.append(("attention backends, one pass at batch 2, both backbones", why("backends"), "", ""))
        r = {}
    for model, by_backend in ((k, v) for k, v in r.items() if isinstance(v, dict)):
        cells = [f"`{b}` " + (v["error"] if "error" in v else f"{v['batch2_s']:.3f} s (Δ {v['max_rel_diff']:.1g})")
                 for b, v in by_backend.items()]
        rows.append((f"attention backends, one pass at batch 2, {model} (Δ: largest difference from `auto`)",
                     "; ".join(cells), "", ""))
    r = get("api")
    rows.append(("Python API (`InverseDVSPipeline`, README), tiny model, two calls",
                 why("api") or f"{r['frames']} frames in {r['seconds']:.1f} s on {r['device']}, NFE {r['nfe']}; the "
                                "second call equal, one model load", "no error",
                 "ok" if r and "frames" in r else ("" if "skipped" in r else "**failed**")))
    r = get("slm")
    rows.append(("SLM draws, `slm.generator: reference`: the official default-generator indices (3 rounds)",
                 why("slm") or f"{'equal' if r['equal'] else 'DIFFERENT'} ({r['draws']} draws)", "equal",
                 "ok" if r.get("equal") else ("" if "skipped" in r else "**failed**")))
    r = get("e2e")
    ok = r.get("rc") == 0 and r.get("outputs", 0) > 0 and not r.get("compile_failed")
    rows.append((f"tiny end-to-end: `run_all.sh {e2e_config(a)}`, `run.device: {'cpu' if cpu else 'cuda'}`, "
                 "compile on",
                 why("e2e") or f"exit code {r['rc']} in {r['seconds']:.0f} s, {r['outputs']} outputs, compiled "
                                f"{r['compiled']}" + (f", compile failed: {r['compile_failed']}"
                                                      if r.get("compile_failed") else ""),
                 "no error", "ok" if ok else ("" if "skipped" in r else "**failed** (tiny_e2e.log)")))
    versions = f"torch {torch.__version__}"
    try:
        import diffusers

        versions += f", diffusers {diffusers.__version__}"
    except ImportError:
        pass
    arch = {"5b": "CogVideoX-5B-I2V architecture, random weights, bf16, 49×480×720",
            "1.5": "CogVideoX1.5-5B-I2V architecture, random weights, bf16, 81×768×1360"}[a.model]
    head = (f"gpu_check {datetime.date.today().isoformat()} on {device_name} ({versions}); "
            f"{f'tiny {a.model} model, no targets' if cpu else arch}")
    lines = [head, "", "| check | measured | target | |", "|---|---|---|---|"]
    lines += [f"| {a_} | {b} | {c_} | {d} |" for a_, b, c_, d in rows]
    return "\n".join(lines) + "\n"


def e2e_config(a) -> str:
    return "configs/tiny15.yml" if a.model == "1.5" else "configs/tiny.yml"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu", action="store_true", help="tiny model on the CPU, no targets (tests this script)")
    p.add_argument("--model", default="5b", choices=["5b", "1.5"],
                   help="the architecture: CogVideoX-5B-I2V (default) or CogVideoX1.5-5B-I2V")
    p.add_argument("--cache", default="faster", help="the step cache of the cached output (README: fastest measured)")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds for all steps (default: 480 on CUDA, none with --cpu); steps that would overrun it "
                        "are skipped")
    p.add_argument("--out", default=os.environ.get("OUT") or "outputs/gpu_check", help="folder for the table")
    p.add_argument("--only", default=None, metavar="STEP[,STEP]",
                   help="run only these steps (api, slm, e2e, build, eager, compile, exact, cached, offload_model, "
                        "backends); the others are listed as not asked for")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    log = logging.getLogger("inverse_dvs")
    torch.set_grad_enabled(False)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if not a.cpu and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; `--cpu` runs the same steps on the tiny model.", file=sys.stderr)
        return 2
    device = torch.device("cpu" if a.cpu else "cuda")
    arch = tiny_arch(a.model) if a.cpu else ARCHS[a.model]
    backend = "aot_eager" if a.cpu else "inductor"
    name = "CPU" if a.cpu else torch.cuda.get_device_name(device)

    def save() -> None:
        (out / "gpu_check.json").write_text(json.dumps({"device": name, **check.results}, indent=1), encoding="utf-8")
        (out / "gpu_check.md").write_text(table(check.results, a, name), encoding="utf-8")

    check = Check(None if a.cpu else (a.budget or 480.0), save, set(a.only.split(",")) if a.only else None)
    if a.model == "1.5":
        check.estimates = ESTIMATES_15
    check.step("api", api_run, "cpu" if a.cpu else "cuda", a.model)
    check.step("slm", check_slm_draws, device)
    with tempfile.TemporaryDirectory() as tmp:
        check.step("e2e", tiny_e2e, "cpu" if a.cpu else "cuda", backend, Path(tmp) / "work", out / "tiny_e2e.log",
                   600.0 if a.cpu else check.estimates["e2e"] + 90.0, a.cpu, e2e_config(a))
    if a.model == "1.5":
        measure_model_15(check, arch, device, log)
    else:
        measure_model(check, a, arch, device, backend, log)
    check.step("offload_model", measure_offload_model, a, arch, device, log)
    check.step("backends", measure_backends, a.cpu, device, log)
    save()
    print(table(check.results, a, name))
    e2e = check.results.get("e2e", {})
    failed = [k for k, r in check.results.items() if "error" in r or r.get("equal") is False] + (
        [] if e2e.get("rc") == 0 or "skipped" in e2e else ["e2e"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
