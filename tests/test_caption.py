"""Caption stage on the tiny SmolVLM-architecture checkpoint (real from_pretrained + generate; its text is noise)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inverse_dvs import caption, depth, evaluate, infer, invert, preflight, warp
from tests.conftest import tiny_run_config, with_sections


def _config(tmp_path: Path, ckpt: Path, video: Path, videos: str | None = None, extra: str = "") -> str:
    own = f"""
caption: {{model: {ckpt / 'tiny-smolvlm'}, num_frames: 3, max_new_tokens: 12}}
eval: {{clip_model: {ckpt / 'tiny-clip'}, lpips: false}}
"""
    return tiny_run_config(tmp_path, ckpt, videos or f"{{path: {video}, name: auto}}", with_sections(own, extra))


@pytest.mark.slow
def test_a_video_without_prompt_is_captioned_and_used(tmp_path, tiny_checkpoints, demo_video, capsys):
    cfg = _config(tmp_path, tiny_checkpoints, demo_video,
                  f"{{path: {demo_video}, name: auto}}, {{path: {demo_video}, name: given}}")
    (tmp_path / "prompts").mkdir()
    user = tmp_path / "prompts" / "given.txt"
    user.write_text("a red ball rolls past a wall", encoding="utf-8")
    args = ["--config", cfg, "--quiet"]
    for stage in (depth, warp, caption):
        assert stage.main(args) == 0
    out = tmp_path / "out"
    text = (out / "prompts/auto/prompt.txt").read_text(encoding="utf-8").strip()
    meta = json.loads((out / "prompts/auto/meta.json").read_text())
    assert text and meta["caption"] == text and meta["process_model_loads"] == 1 and (out / "prompts/auto/frames.png")\
        .is_file()
    assert not (out / "prompts/given").exists()  # a user prompt is never captioned over
    assert user.read_text(encoding="utf-8") == "a red ball rolls past a wall"
    mtime = (out / "prompts/auto/prompt.txt").stat().st_mtime_ns
    assert caption.main(args) == 0  # rerun: up to date, nothing loaded or written
    assert (out / "prompts/auto/prompt.txt").stat().st_mtime_ns == mtime
    for stage in (invert, infer):
        assert stage.main(args) == 0
    run = next((out / "results/left/auto").glob("*/meta.json"))
    assert json.loads(run.read_text())["prompt"] == text
    inv = json.loads((out / "inversions/left/auto/meta.json").read_text())
    assert inv["prompt"] == text
    given = next((out / "results/left/given").glob("*/meta.json"))
    assert json.loads(given.read_text())["prompt"] == "a red ball rolls past a wall"
    # a caption that changed behind the record is refused downstream
    (out / "prompts/auto/prompt.txt").write_text("edited\n", encoding="utf-8")
    assert infer.main([*args, "--force", "--only-video", "auto"]) == 2
    assert "caption of video 'auto'" in capsys.readouterr().err
    assert evaluate.main([*args, "--only-video", "auto"]) == 2  # nor is an output evaluated against it
    assert "caption of video 'auto'" in capsys.readouterr().err


def test_caption_off_runs_unconditioned_with_a_warning(tmp_path, tiny_checkpoints, demo_video, capsys):
    cfg = _config(tmp_path, tiny_checkpoints, demo_video, extra="")
    args = ["--config", cfg, "--set", "caption.source=off"]
    assert preflight.main(args) == 0
    assert "has no prompt and caption.source is off" in capsys.readouterr().err
    for stage in (depth, warp, caption, invert, infer):
        assert stage.main([*args, "--quiet"]) == 0
    assert not (tmp_path / "out/prompts").exists()
    run = next((tmp_path / "out/results/left/auto").glob("*/meta.json"))
    assert json.loads(run.read_text())["prompt"] == ""


def test_render_captions_are_per_trajectory_and_needed_before_invert(tmp_path, tiny_checkpoints, demo_video, capsys):
    cfg = _config(tmp_path, tiny_checkpoints, demo_video)
    args = ["--config", cfg, "--quiet", "--set", "caption.source=render"]
    for stage in (depth, warp):
        assert stage.main(args) == 0
    assert invert.main(args) == 2  # no caption yet: the item says which stage to run
    assert "no finished caption record" in capsys.readouterr().err
    assert caption.main(args) == 0
    assert (tmp_path / "out/prompts/auto/left/prompt.txt").is_file()
    assert invert.main(args) == 0
