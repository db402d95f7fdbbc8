"""The second backbone on the tiny CogVideoX1.5-I2V checkpoint (rotary embeddings only, temporal patch 2, an `ofs`
embedding, `invert_scale_latents`), loaded through the real `from_pretrained`: its latent layout against diffusers'
own pipeline, every transformer call, the padding frame, `auto` sizes on a portrait and a landscape clip end to end,
repeatable bytes, and the inputs refused before any model loads."""

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import tiny_run_config

TINY15 = "tiny-cogvideox15-i2v"


def _config(tmp_path: Path, ckpt: Path, videos: str, extra: str = "") -> str:
    """The tests' small run on the tiny 1.5 model with `auto` sizes and frames."""
    return tiny_run_config(tmp_path, ckpt, videos, "camera: {num_frames: auto, height: auto, width: auto}\n"
                           f"inversion: {{model: {ckpt / TINY15}, steps: 2}}\n{extra}")


@pytest.fixture(scope="module")
def method15(tiny_checkpoints, tmp_path_factory):
    """The method on the tiny 1.5 model (LazyPipeline loaded as the stages load it), with a config of its `auto`
    frames (33) at its landscape size 128×224."""
    from inverse_dvs import InverseDVSPipeline

    tmp = tmp_path_factory.mktemp("c15")
    pipe = InverseDVSPipeline.from_config(_config(tmp, tiny_checkpoints, "{path: v.mp4, name: v, prompt: a dog}",
                                                  "camera: {num_frames: auto, height: 128, width: 224}"))
    cfg = pipe.config
    assert cfg.backbone.name == "CogVideoX1.5-5B-I2V" and cfg.camera.num_frames == 33 and cfg.camera.window == 33
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _frames(n: int = 33, h: int = 128, w: int = 224, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, h, w, 3), dtype=np.uint8)


def test_the_latent_layout_is_diffusers_own(method15):
    """x0 and the image condition have 9 + 1 latent frames, the padding in front as diffusers' pipeline puts it: its
    own `prepare_latents`, given the padded frame count as its `__call__` gives it, builds the same condition."""
    from inverse_dvs.models.vae import to_pixels
    from inverse_dvs.pipeline.latents import encode_render

    pipe = method15.video_model.get()
    frames = _frames()
    enc = encode_render(pipe, frames, "reference", 42)
    assert enc.padding == 1 and enc.x0.shape[1] == 10 and enc.image_latents.shape[1] == 10
    assert torch.equal(enc.x0[:, 0], enc.x0[:, 1])  # the padding frame starts as the first latent frame
    _, oracle = pipe.prepare_latents(to_pixels(frames[:1], "cpu", torch.float32)[:, :, 0], 1, 4, 33 + 4, 128, 224,
                                     torch.float32, torch.device("cpu"), torch.Generator().manual_seed(42))
    assert oracle.shape[1] == 10 and torch.equal(enc.image_latents, oracle)  # divided by the VAE scale, image first


def test_every_transformer_call_gets_ofs_and_the_padded_frames_and_the_padding_never_reaches_decode(method15):
    from inverse_dvs.pipeline.schedule import plan_sweep

    cfg, pipe = method15.config, method15.video_model.get()
    calls, decoded = [], []
    forward, decode = pipe.transformer.forward, pipe.vae.decode

    def wrapped(*args, **kw):
        calls.append((kw["hidden_states"].shape, kw.get("ofs")))
        return forward(*args, **kw)

    def wrapped_decode(z, *args, **kw):
        decoded.append(z.shape[2])
        return decode(z, *args, **kw)

    pipe.transformer.forward, pipe.vae.decode = wrapped, wrapped_decode
    nfe0 = method15.stats.nfe
    try:
        frames = _frames(seed=1)
        visible = np.ones(frames.shape[:3], np.float32)
        visible[:, :, 150:] = 0.0  # a hole on the right
        depth = np.ones(frames.shape[:3], np.float32)
        (plan,) = plan_sweep(cfg)
        enc = method15.encode(frames)
        inv = method15.invert(enc, "a dog", plan.inversion_end)
        out = method15.generate(frames, visible, depth, "a dog", plan=plan, inversion=inv)
    finally:
        del pipe.transformer.forward, pipe.vae.decode
    # every pass went through the wrapper (NFE counts latents: a CFG pass is 2), CFG passes among them
    assert sum(shape[0] for shape, _ in calls) == method15.stats.nfe - nfe0 > 0 and any(s[0] == 2 for s, _ in calls)
    for shape, ofs in calls:
        assert shape[1] == 10 and shape[2] == 8  # 9 latent frames + 1 padding; latents and condition
        assert ofs is not None and ofs.shape == (shape[0],) and bool((ofs == 2.0).all())
    assert decoded == [9]  # the padding frame is dropped before the VAE
    assert out.frames.shape == (33, 128, 224, 3)


def _clip(out: Path, name: str, height: int, width: int) -> Path:
    from scripts.make_demo_scene import main

    assert main(["--out", str(out), "--name", name, "--frames", "33", "--height", str(height), "--width",
                 str(width), "--fps", "16"]) == 0
    return out / f"{name}.mp4"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_portrait_and_landscape_clips_run_end_to_end_at_their_own_aspect_and_repeat_bytes(tmp_path, tiny_checkpoints,
                                                                                        caplog):
    from inverse_dvs import chain, depth, evaluate, warp
    from inverse_dvs.infra.video_io import probe_video

    data = tmp_path / "data"
    land, port = _clip(data, "land", 144, 252), _clip(data, "port", 252, 144)  # 7:4 and 4:7
    cfg = _config(tmp_path, tiny_checkpoints,
                  f"{{path: {land}, name: land, prompt: a ball}}, {{path: {port}, name: port, prompt: a ball}}",
                  f"eval: {{clip_model: {tiny_checkpoints / 'tiny-clip'}, lpips: false}}")
    caplog.set_level(logging.INFO, logger="inverse_dvs")
    for stage in (depth, warp):
        assert stage.main(["--config", cfg, "--quiet"]) == 0
    assert chain.main(["invert", "infer", "--config", cfg, "--quiet"]) == 0
    assert evaluate.main(["--config", cfg, "--quiet"]) == 0
    assert "cropped" not in caplog.text  # the model size has the video's aspect: nothing is cut away
    outputs = {}
    for name, size in (("land", (128, 224)), ("port", (224, 128))):
        folder = tmp_path / "out/results/left" / name
        (run,) = folder.glob("paper*")
        info = probe_video(run / "output.mp4")
        assert info.frames == 33 and info.size == size and probe_video(folder / "input.mp4").size == size
        assert json.loads((folder / "cameras.json").read_text())["model_height"] == size[0]
        assert json.loads((run / "meta.json").read_text())["nfe_per_output"] > 0
        outputs[name] = (run / "output.mp4", _digest(run / "output.mp4"))
    # the same seed gives the same bytes: everything recomputed from the same renders
    assert chain.main(["invert", "infer", "--config", cfg, "--quiet", "--force"]) == 0
    assert {n: _digest(p) for n, (p, _) in outputs.items()} == {n: d for n, (_, d) in outputs.items()}


@pytest.mark.parametrize(("settings", "words"), [
    (["camera.height=480", "camera.width=720"], ["'camera.height'", "480×720", "shorter side 128", "224", "auto"]),
    (["camera.height=128", "camera.width=240"], ["'camera.height'", "128×240", "128 to 224"]),
    (["camera.num_frames=49", "camera.window=50"], ["'camera.window'", "1 + 4m"]),
    (["camera.num_frames=25"], ["'camera.num_frames'", "25", "1 + 16·k frames up to 161"]),
    (["camera.num_frames=all", "camera.window=41"], ["'camera.window'", "41", "1 + 16·k"]),
    (["camera.num_frames=all", "camera.window=49", "camera.overlap=9", "camera.height=128", "camera.width=96"],
     ["'camera.height'", "128×96"]),
    (["camera.height=auto", "camera.width=224"], ["'camera.height'", "'camera.width'", "both"]),
])
def test_sizes_and_frames_the_family_does_not_take_exit_2_before_any_model_loads(tmp_path, tiny_checkpoints,
                                                                                demo_video, capsys, settings, words):
    from inverse_dvs import preflight

    cfg = _config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo, prompt: a}}")
    argv = ["--config", cfg]
    for s in settings:
        argv += ["--set", s]
    assert preflight.main(argv) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_of_no_known_family_exits_2_naming_the_key(tmp_path, tiny_checkpoints, demo_video, capsys):
    """Only the config files are read: a folder with a transformer of the 1.5 kind but no ofs embedding."""
    from inverse_dvs import preflight

    odd = tmp_path / "odd-model"
    shutil.copytree(tiny_checkpoints / TINY15, odd, ignore=shutil.ignore_patterns("*.safetensors"))
    conf = json.loads((odd / "transformer/config.json").read_text())
    (odd / "transformer/config.json").write_text(json.dumps(conf | {"ofs_embed_dim": None}))
    cfg = _config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo, prompt: a}}")
    assert preflight.main(["--config", cfg, "--set", f"inversion.model={odd}"]) == 2
    err = capsys.readouterr().err
    assert "'inversion.model'" in err and str(odd) in err and "matches no model family" in err
    assert "ofs_embed_dim None" in err and "CogVideoX1.5-5B-I2V" in err


def test_auto_resolves_from_the_family_and_the_official_lora_is_off_with_a_warning(tmp_path, tiny_checkpoints,
                                                                                  demo_video, caplog):
    from inverse_dvs.config import load_config, model_hw, resolve_config

    def load(*args):
        return resolve_config(load_config(*args))

    videos = f"{{path: {demo_video}, name: demo, prompt: a}}"
    plain = load_config(_config(tmp_path, tiny_checkpoints, videos))
    assert (plain.backbone, plain.camera.num_frames) == (None, "auto")  # loading reads no model file
    cfg = resolve_config(plain)
    assert (cfg.camera.num_frames, cfg.camera.window, cfg.camera.height) == (33, 33, "auto")
    assert model_hw(cfg, cfg.videos[0]) == (128, 192)  # the demo is 96×144 (3:2)
    five = load(_config(tmp_path, tiny_checkpoints, videos,
                        f"inversion: {{model: {tiny_checkpoints / 'tiny-cogvideox-i2v'}}}"))
    assert (five.camera.num_frames, five.camera.height, five.camera.width) == (49, 96, 144)  # fixed: resolved
    with caplog.at_level(logging.INFO, logger="inverse_dvs"):
        ref = load(_config(tmp_path, tiny_checkpoints, videos), ["method=reference"])
    assert ref.model.lora is None and "the LoRA is off" in caplog.text and "CogVideoX1.5-5B-I2V" in caplog.text
    assert ref.camera.warp_size is None  # the official 576×1024 warp size is for the 5B model's 480×720
    mine = load(_config(tmp_path, tiny_checkpoints, videos),
                ["method=reference", f"model.lora={tiny_checkpoints / 'tiny-lora'}"])
    assert mine.model.lora == str(tiny_checkpoints / "tiny-lora")  # a LoRA the user names is theirs to load


def test_weights_download_fetches_the_real_repository_into_checkpoints(tmp_path, tiny_checkpoints, demo_video,
                                                                      monkeypatch):
    """`auto` keys do not stop the download that brings the configs deciding them."""
    import huggingface_hub

    from inverse_dvs import weights

    fetched = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda repo, local_dir=None, allow_patterns=None, **kw: fetched.append((repo, local_dir)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("INVERSE_DVS_CHECKPOINTS", str(tmp_path / "checkpoints"))
    cfg = _config(tmp_path, tiny_checkpoints, f"{{path: {demo_video}, name: demo, prompt: a}}",
                  "inversion: {model: THUDM/CogVideoX1.5-5B-I2V}\n"
                  f"eval: {{clip_model: {tiny_checkpoints / 'tiny-clip'}, lpips: false}}")
    assert weights.main(["download", "--config", cfg]) == 0
    from inverse_dvs.core.backbone import FAMILIES

    assert all(f.hub_id in weights.__doc__ for f in FAMILIES)  # `--help` names the video models it runs on
    downloads = [f for f in fetched if f[1] is not None]  # (the others: the offline look into the cache first)
    assert downloads == [("THUDM/CogVideoX1.5-5B-I2V", str(tmp_path / "checkpoints/CogVideoX1.5-5B-I2V"))]


@pytest.mark.parametrize(("family", "name", "size"), [("5b", "CogVideoX-5B-I2V", (480, 720)),
                                                      ("1.5", "CogVideoX1.5-5B-I2V", (768, 1360))])
def test_the_benchmarks_real_architectures_are_the_families_they_stand_for(family, name, size):
    """gpu_check's random-weight models (built here on the meta device: no memory) detect as the real families."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel

    from inverse_dvs.core.backbone import detect
    from inverse_dvs.testing.tiny import REAL_FAMILIES, SCHEDULER_5B_I2V

    arch, vae_arch = REAL_FAMILIES[family]
    with init_empty_weights():
        transformer = CogVideoXTransformer3DModel(num_attention_heads=48, attention_head_dim=64, in_channels=32,
                                                  out_channels=16, num_layers=1, patch_size=2,
                                                  use_rotary_positional_embeddings=True, **arch)
        vae = AutoencoderKLCogVideoX(latent_channels=16, **vae_arch)
    bb = detect(dict(transformer.config), dict(vae.config), SCHEDULER_5B_I2V)
    assert bb.name == name and bb.auto_size((1080, 1920)) == size
