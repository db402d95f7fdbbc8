"""models.video_model: one load per process shared by the stages, a failed load not retried, a failed compile or
warm-up falling back to eager on the same load."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from inverse_dvs import chain, depth, warp
from tests.models.helpers import lazy_model, small_config


@pytest.mark.slow
def test_invert_and_infer_share_one_load_and_compile_changes_nothing(tmp_path, tiny_checkpoints, demo_video,
                                                                      monkeypatch):
    from diffusers import CogVideoXImageToVideoPipeline

    cfg = small_config(tmp_path, tiny_checkpoints, demo_video)
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


@pytest.mark.slow
def test_a_failed_compile_warns_once_and_the_stage_runs_eager_on_one_load(tmp_path, tiny_checkpoints, demo_video,
                                                                         monkeypatch, capsys):
    from diffusers import CogVideoXImageToVideoPipeline

    cfg = small_config(tmp_path, tiny_checkpoints, demo_video,
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

    model = lazy_model(small_config(tmp_path, tiny_checkpoints, demo_video),
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

    model = lazy_model(small_config(tmp_path, tiny_checkpoints, demo_video), build)
    with pytest.raises(RuntimeError, match="disk error"):
        model.get()
    with pytest.raises(RuntimeError, match="earlier item.*disk error"):
        model.get()
    assert len(calls) == 1

    def out_of_memory():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    model = lazy_model(small_config(tmp_path, tiny_checkpoints, demo_video), out_of_memory)
    for _ in range(2):  # the OOM advice each time, and never a second 20 GB load
        with pytest.raises(UserError, match="model.offload: model"):
            model.get()


@pytest.mark.slow
def test_stages_warm_up_only_what_runs_compiled_and_encode_each_text_once(tmp_path, tiny_checkpoints, demo_video,
                                                                          monkeypatch):
    from transformers import T5EncoderModel

    from inverse_dvs import infer, invert
    from inverse_dvs.models import video_model

    cfg = small_config(tmp_path, tiny_checkpoints, demo_video)
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
