"""Tests of the video model's modules: models.video_model (loading, LazyPipeline), placement, compile, vae, text
and caches."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from inverse_dvs import chain, depth, warp
from inverse_dvs.config import ModelConfig
from inverse_dvs.core.ddim import ddim_sample, sampling_schedule
from inverse_dvs.models.caches import SAMPLING_CACHES, StepClock, sampling_cache
from inverse_dvs.models.placement import place_pipeline
from inverse_dvs.models.video_model import ModelStats, alphas_cumprod
from inverse_dvs.pipeline.denoise import guided_v
from tests.conftest import tiny_run_config, with_sections


def _config(tmp_path, ckpt, video, extra=""):
    own = "inference: {steps: [4], strength: [0.75], guidance_scale: [5.0]}"
    return tiny_run_config(tmp_path, ckpt, f"{{path: {video}, name: demo, prompt: a ball}}", with_sections(own, extra))


@pytest.mark.slow
def test_invert_and_infer_share_one_load_and_compile_changes_nothing(tmp_path, tiny_checkpoints, demo_video,
                                                                      monkeypatch):
    from diffusers import CogVideoXImageToVideoPipeline

    cfg = _config(tmp_path, tiny_checkpoints, demo_video)
    args = ["--config", cfg, "--quiet"]
    assert depth.main(args) == 0 and warp.main(args) == 0
    loads = []
    original = CogVideoXImageToVideoPipeline.from_pretrained.__func__
    monkeypatch.setattr(CogVideoXImageToVideoPipeline, "from_pretrained",
                        classmethod(lambda cls, *a, **k: loads.append(1) or original(cls, *a, **k)))
    assert chain.main(["invert", "infer", *args]) == 0
    assert len(loads) == 1  # one model for both stages
    out = tmp_path / "out/results/left/demo"
    run = next(p for p in out.iterdir() if (p / "output.mp4").is_file())
    eager = (run / "output.mp4").read_bytes()
    meta = json.loads((run / "meta.json").read_text())
    assert meta["process_model_loads"] == 1 and meta["compiled"] is False and meta["cache"] == "none"
    # `vae_tiling: auto` is recorded as it resolved (off on the CPU), in both stages' records
    inv_meta = json.loads((tmp_path / "out/inversions/left/demo/meta.json").read_text())
    assert meta["depends"]["model"]["vae_tiling"] == inv_meta["depends"]["model"]["vae_tiling"] == "off"
    inversion = (tmp_path / "out/inversions/left/demo/inversion_t0749.safetensors").read_bytes()
    # regional compile (aot_eager here: inductor takes ~50 s on this CPU; it matched eager to 6e-6 once by hand)
    assert chain.main(["invert", "infer", *args, "--force", "--set", "run.compile=on", "--set",
                       "run.compile_backend=aot_eager"]) == 0
    meta = json.loads((run / "meta.json").read_text())
    assert meta["compiled"] is True and meta["compile_warmup_seconds"] > 0
    assert (run / "output.mp4").read_bytes() == eager
    assert (tmp_path / "out/inversions/left/demo/inversion_t0749.safetensors").read_bytes() == inversion

    # a sampling cache: its own run tag and record; the inversion is untouched (caches never run there)
    assert chain.main(["invert", "infer", *args, "--set", "inference.cache=pab"]) == 0
    cached = [p for p in out.iterdir() if p.name.endswith("_cache-pab")]
    assert len(cached) == 1 and json.loads((cached[0] / "meta.json").read_text())["cache"] == "pab"
    assert (tmp_path / "out/inversions/left/demo/inversion_t0749.safetensors").read_bytes() == inversion


def test_sampling_caches_are_on_only_while_sampling(tiny_model):
    pipe, x0, _, stats, img, cond, uncond = tiny_model
    sched = sampling_schedule(20, 0.9)
    x = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    outs = {}
    for name in SAMPLING_CACHES:
        clock = StepClock()
        v_fn = guided_v(pipe, img, cond, uncond, 6.0, stats, clock)
        with sampling_cache(pipe, name, clock):
            assert pipe.transformer.is_cache_enabled == (name != "none")
            outs[name] = ddim_sample(v_fn, x, sched.timesteps, sched.prev_timesteps, alphas_cumprod(pipe))
        assert not pipe.transformer.is_cache_enabled
        assert clock.t == sched.timesteps[-1]  # the hooks saw every step's timestep
    for name in ("faster", "pab", "taylorseer"):  # these skip work on this schedule, so the result moves a little
        assert not torch.equal(outs[name], outs["none"]), name
        assert float((outs[name] - outs["none"]).abs().max()) < 0.1 * float(outs["none"].abs().max())


def _graphs() -> int:
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def _model(cfg_path, build=None, overrides=()):
    import logging

    from inverse_dvs.config import load_config, resolve_config
    from inverse_dvs.models.video_model import LazyPipeline

    return LazyPipeline(resolve_config(load_config(cfg_path, overrides)), torch.device("cpu"), torch.float32,
                        ModelStats(), logging.getLogger("inverse_dvs"), build=build)


def test_sequential_offload_cannot_be_compiled_so_auto_leaves_it_eager(tmp_path, tiny_checkpoints, demo_video):
    # the fact: sequential offload (`enable_sequential_cpu_offload` = accelerate's `cpu_offload` per component, here
    # with the CPU as the execution device) hooks every layer; the hooks run under torch.compiler.disable, which a
    # block compiled with fullgraph=True refuses to trace
    from accelerate import cpu_offload
    from diffusers import CogVideoXImageToVideoPipeline

    from inverse_dvs.config import load_config
    from inverse_dvs.infra.errors import ConfigError
    from inverse_dvs.models.compile import compile_blocks, compile_choice, warm_up

    pipe = CogVideoXImageToVideoPipeline.from_pretrained(str(tiny_checkpoints / "tiny-cogvideox-i2v"))
    cpu_offload(pipe.transformer, execution_device=torch.device("cpu"))
    assert sum(hasattr(m, "_hf_hook") for m in pipe.transformer.transformer_blocks[0].modules()) > 5  # per layer
    compile_blocks(pipe, "aot_eager")
    with pytest.raises(Exception, match="compiler.disable"):
        warm_up(pipe, 49, 96, 144, (1,))
    # so `auto` does not compile under sequential offload, and says why; `on` with it is a config error
    cuda = torch.device("cuda")
    on, why = compile_choice("auto", "sequential", cuda, "aot_eager")
    assert not on and "sequential" in why
    assert compile_choice("auto", "none", cuda, "aot_eager") == (True, "")
    assert compile_choice("auto", "model", cuda, "aot_eager") == (True, "")
    assert compile_choice("auto", "none", torch.device("cpu"), "inductor") == (False, "")
    assert compile_choice("on", "none", torch.device("cpu"), "inductor") == (True, "")
    cfg = _config(tmp_path, tiny_checkpoints, demo_video, "model: {offload: sequential}")
    assert load_config(cfg).run.compile == "auto"
    with pytest.raises(ConfigError, match="run.compile.*model.offload"):
        load_config(cfg, ["run.compile=on"])


@pytest.mark.slow
def test_a_failed_compile_warns_once_and_the_stage_runs_eager_on_one_load(tmp_path, tiny_checkpoints, demo_video,
                                                                         monkeypatch, capsys):
    from diffusers import CogVideoXImageToVideoPipeline

    cfg = _config(tmp_path, tiny_checkpoints, demo_video,
                  "trajectories: {left: {preset: orbit_left, amount: 5}, up: {preset: arc_up, amount: 5}}")
    args = ["--config", cfg, "--quiet"]
    assert depth.main(args) == 0 and warp.main(args) == 0
    assert chain.main(["invert", "infer", *args]) == 0
    out = tmp_path / "out"
    eager = {p: p.read_bytes() for p in out.glob("results/*/*/*/output.mp4")}
    assert len(eager) == 2
    loads = []
    original = CogVideoXImageToVideoPipeline.from_pretrained.__func__
    monkeypatch.setattr(CogVideoXImageToVideoPipeline, "from_pretrained",
                        classmethod(lambda cls, *a, **k: loads.append(1) or original(cls, *a, **k)))
    capsys.readouterr()
    assert chain.main(["invert", "infer", *args, "--force", "--set", "run.compile=on",
                       "--set", "run.compile_backend=no_such_backend"]) == 0
    err = capsys.readouterr().err
    assert err.count("compiling the transformer blocks") == 1 and "no_such_backend" in err
    assert len(loads) == 1  # one load for both stages and all four items
    assert {p: p.read_bytes() for p in out.glob("results/*/*/*/output.mp4")} == eager
    for p in eager:
        meta = json.loads((p.parent / "meta.json").read_text())
        assert meta["compiled"] is False and "no_such_backend" in meta["compile_failed"]


def test_a_compiler_error_during_warm_up_falls_back_to_eager(tmp_path, tiny_checkpoints, demo_video, caplog):
    import torch._dynamo

    @torch._dynamo.register_backend(name="failing_backend_for_tests")
    def failing(gm, example_inputs):
        raise RuntimeError("the compiler broke")

    model = _model(_config(tmp_path, tiny_checkpoints, demo_video),
                   overrides=["run.compile=on", "run.compile_backend=failing_backend_for_tests"])
    pipe = model.get((1,))
    assert not model.compiled and not model.compile and "the compiler broke" in model.stats.extra["compile_failed"]
    assert all(b._compiled_call_impl is None for b in pipe.transformer.transformer_blocks)
    assert "run eager" in caplog.text
    assert model.get((1, 2)) is pipe and model.stats.loads == 1  # no second attempt, no second load


def test_a_failed_load_is_not_retried_for_later_items(tmp_path, tiny_checkpoints, demo_video):
    from inverse_dvs.infra.errors import UserError

    calls = []

    def build():
        calls.append(1)
        raise RuntimeError("disk error while reading the weights")

    model = _model(_config(tmp_path, tiny_checkpoints, demo_video), build)
    with pytest.raises(RuntimeError, match="disk error"):
        model.get()
    with pytest.raises(RuntimeError, match="earlier item.*disk error"):
        model.get()
    assert len(calls) == 1

    def out_of_memory():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    model = _model(_config(tmp_path, tiny_checkpoints, demo_video), out_of_memory)
    for _ in range(2):  # the OOM advice each time, and never a second 20 GB load
        with pytest.raises(UserError, match="model.offload: model"):
            model.get()


def test_vae_tiling_resolves_from_total_memory_and_is_recorded_resolved(monkeypatch, tmp_path, tiny_checkpoints,
                                                                         demo_video):
    from types import SimpleNamespace

    from inverse_dvs.config import load_config, resolve_config
    from inverse_dvs.models.placement import resolve_vae_tiling
    from inverse_dvs.pipeline import sweep
    from inverse_dvs.runner.records import infer_depends, invert_depends

    total = {"bytes": 80 * 2**30}
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: SimpleNamespace(total_memory=total["bytes"]))

    def free_memory(device=None):
        raise AssertionError("what happens to be free must not decide the tiling")

    monkeypatch.setattr(torch.cuda, "mem_get_info", free_memory)
    cuda = torch.device("cuda")
    assert resolve_vae_tiling("auto", "none", cuda) is False
    assert resolve_vae_tiling("auto", "sequential", cuda) is True
    assert resolve_vae_tiling("off", "sequential", cuda) is False
    total["bytes"] = 24 * 2**30
    assert resolve_vae_tiling("auto", "none", cuda) is True and resolve_vae_tiling("auto", "model", cuda) is True
    assert resolve_vae_tiling("auto", "none", torch.device("cpu")) is False
    assert resolve_vae_tiling("on", "none", torch.device("cpu")) is True
    total["bytes"] = 139 * 2**30  # an H200: CogVideoX1.5's 81×768×1360 (about 130 GB untiled) still tiles
    assert resolve_vae_tiling("auto", "none", cuda) is False
    assert resolve_vae_tiling("auto", "none", cuda, 81 * 768 * 1360) is True
    # the records hold the resolution, not "auto": an inversion made tiled is never taken for an untiled one
    cfg = resolve_config(load_config(_config(tmp_path, tiny_checkpoints, demo_video)))
    assert cfg.model.vae_tiling == "auto"
    assert invert_depends(cfg, "a ball", True)["model"]["vae_tiling"] == "on"
    assert invert_depends(cfg, "a ball", False) != invert_depends(cfg, "a ball", True)
    pt = sweep(cfg)[0]
    assert infer_depends(cfg, pt, "a ball", 8.0, False)["model"]["vae_tiling"] == "off"


def test_cache_hooks_leave_no_trace_on_compiled_blocks(tiny_model, monkeypatch, request):
    from inverse_dvs.models.compile import compile_blocks, uncompile_blocks, warm_up

    pipe, x0, _, stats, img, cond, uncond = tiny_model
    compile_blocks(pipe, "aot_eager")
    request.addfinalizer(lambda: uncompile_blocks(pipe))  # the session's pipeline runs eager again afterwards
    warm_up(pipe, 49, 96, 144, (1, 2))
    graphs = _graphs()
    attributes = {name: dict(vars(m)) for name, m in pipe.transformer.named_modules()}
    sched = sampling_schedule(4, 0.75)
    for name in SAMPLING_CACHES[1:]:
        clock = StepClock()
        with sampling_cache(pipe, name, clock):
            ddim_sample(guided_v(pipe, img, cond, uncond, 6.0, stats, clock), x0, sched.timesteps,
                        sched.prev_timesteps, alphas_cumprod(pipe))
        warm_up(pipe, 49, 96, 144, (1, 2))
        assert _graphs() == graphs, name  # the compiled blocks' guards still hold: no recompile
        assert {n: dict(vars(m)) for n, m in pipe.transformer.named_modules()} == attributes, name

    def broken(config):
        raise RuntimeError("cache hooks refused")

    monkeypatch.setattr(pipe.transformer, "enable_cache", broken)
    compiled = [b._compiled_call_impl for b in pipe.transformer.transformer_blocks]
    with pytest.raises(RuntimeError, match="refused"), sampling_cache(pipe, "pab", StepClock()):
        pass
    assert [b._compiled_call_impl for b in pipe.transformer.transformer_blocks] == compiled  # compiled again


def test_the_text_encoder_never_moves_to_the_gpu_at_placement(tiny_model, monkeypatch):
    moved = []

    def record(self, *args, **kwargs):
        target = args[0] if args else kwargs.get("device")
        moved.append((type(self).__name__, str(target)))
        return self

    monkeypatch.setattr(torch.nn.Module, "to", record)
    place_pipeline(tiny_model.pipe, ModelConfig(), torch.device("cuda"), False)
    assert ("CogVideoXTransformer3DModel", "cuda") in moved and ("AutoencoderKLCogVideoX", "cuda") in moved
    assert not [m for m in moved if m[0] == "T5EncoderModel"]  # 8.9 GiB that would only go back to the CPU


@pytest.mark.slow
def test_stages_warm_up_only_what_runs_compiled_and_encode_each_text_once(tmp_path, tiny_checkpoints, demo_video,
                                                                          monkeypatch):
    from transformers import T5EncoderModel

    from inverse_dvs import infer, invert
    from inverse_dvs.models import video_model

    cfg = _config(tmp_path, tiny_checkpoints, demo_video)
    args = ["--config", cfg, "--quiet", "--set", "run.compile=on", "--set", "run.compile_backend=aot_eager"]
    assert depth.main(args) == 0 and warp.main(args) == 0
    warmed, encoded = [], []
    original_warm_up, original_forward = video_model.warm_up, T5EncoderModel.forward
    monkeypatch.setattr(video_model, "warm_up",
                        lambda pipe, *shape: warmed.append(shape[-1]) or original_warm_up(pipe, *shape))
    monkeypatch.setattr(T5EncoderModel, "forward", lambda self, *a, **k: encoded.append(1) or original_forward(
        self, *a, **k))
    assert invert.main(args) == 0
    assert warmed == [(1,)]  # inversion runs batch 1 only
    warmed.clear()
    assert infer.main([*args, "--set", "inference.cache=pab"]) == 0
    assert warmed == []  # a cache runs the blocks uncompiled: nothing to compile for sampling
    warmed.clear()
    encoded.clear()
    shutil.rmtree(tmp_path / "out/inversions")  # (--force alone keeps inversion files made with the same settings)
    assert chain.main(["invert", "infer", *args, "--force"]) == 0
    assert warmed == [(1,), (2,)]  # one compile, batch 2 added when sampling starts
    assert len(encoded) == 2  # "a ball" and the empty negative prompt, once each for both stages


@pytest.mark.slow
def test_lora_blocks_compile_and_match_eager(tiny_checkpoints):
    import torch._dynamo

    from inverse_dvs.models.compile import compile_blocks
    from inverse_dvs.models.text import encode_texts
    from inverse_dvs.models.vae import encode_image_latents, encode_video
    from inverse_dvs.models.video_model import load_pipeline
    from inverse_dvs.testing.tiny import TINY_LORA_FILE

    lora = ModelConfig(lora=str(tiny_checkpoints / "tiny-lora"), lora_weight_name=TINY_LORA_FILE)
    pipe = load_pipeline(str(tiny_checkpoints / "tiny-cogvideox-i2v"), lora, torch.device("cpu"), torch.float32,
                         ModelStats())
    frames = np.random.default_rng(0).integers(0, 255, (49, 96, 144, 3), dtype=np.uint8)
    x0 = encode_video(pipe, frames)
    img = encode_image_latents(pipe, frames[0], x0.shape[1])
    (cond,) = encode_texts(pipe, ["a dog"])
    v_fn = guided_v(pipe, img, cond, None, 1.0, ModelStats())
    eager = v_fn(x0, 500)
    pipe.set_adapters(["user"], [0.0])
    assert not torch.allclose(v_fn(x0, 500), eager)  # the LoRA is in the computation
    pipe.set_adapters(["user"], [1.0])
    compile_blocks(pipe, "aot_eager")  # traced through peft's LoRA layers: the same kernels, the same bits
    assert torch.equal(v_fn(x0, 500), eager)
    torch._dynamo.reset()
    compile_blocks(pipe, "inductor")  # generated kernels: equal to rounding
    torch.testing.assert_close(v_fn(x0, 500), eager, rtol=1e-4, atol=1e-4)


def test_a_truncated_prompt_is_said_once_per_process(tmp_path, tiny_checkpoints, demo_video, capsys):
    """invert and infer share one LazyPipeline in run_all.sh's process: its embedding cache encodes (and warns
    about) each text once."""
    import logging

    from inverse_dvs.runner.cli import setup_logging

    setup_logging(False)
    model = _model(_config(tmp_path, tiny_checkpoints, demo_video))
    model.log = logging.getLogger("inverse_dvs")
    long = "a dog and a cat and a man in the camera " * 3
    capsys.readouterr()
    first = model.embed([long, ""])  # invert
    again = model.embed([long, "blurry"])  # infer, with its negative prompt
    assert capsys.readouterr().err.count("tokens long") == 1
    assert first[0] is again[0] and len(model.embeddings) == 3
