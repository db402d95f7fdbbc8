"""Tests of config.config."""

import dataclasses
from pathlib import Path

import pytest

from inverse_dvs.config import load_config, warp_hw
from inverse_dvs.infra.errors import ConfigError

BASE = """
run: {work_dir: out}
videos: [{path: VIDEO}]
trajectories:
  a: {theta: [0, 5], phi: [0, 10], r: [0, 0]}
  b: {preset: orbit_left+arc_up, amount: 10}
"""


def make(tmp_path: Path, extra: str = "") -> Path:
    """The base config plus `extra` (a `run:` section in `extra` replaces the base's, not repeats it)."""
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    p = tmp_path / "c.yml"
    base = BASE.replace("VIDEO", str(video))
    if extra.lstrip().startswith("run:"):
        base = base.replace("run: {work_dir: out}\n", "")
    p.write_text(base + extra)
    return p


def test_defaults_and_types(tmp_path):
    cfg = load_config(make(tmp_path))
    # the model's configs are not on this machine: `auto` stays, and says so where a stage needs it
    assert cfg.camera.num_frames == "auto" and cfg.backbone is None and cfg.inference.k_order == [10.0]
    assert cfg.videos[0].name == "v"
    assert [t.kind for t in cfg.trajectories] == ["keyframes", "preset"]


def test_shipped_configs_load():
    root = Path(__file__).resolve().parents[2]
    for name in ("config.yml", "configs/tiny.yml", "configs/reference.yml"):
        cfg = load_config(root / name)
        assert cfg.trajectories
    ref = load_config(root / "configs/reference.yml")
    assert ref.method == "reference" and ref.custom == ()  # the file only restates the preset


def test_method_presets_set_defaults_and_explicit_keys_win(tmp_path):
    from inverse_dvs.config import METHOD_PRESETS, REFERENCE_NEGATIVE_PROMPT

    p = make(tmp_path)
    default = load_config(p)
    assert default.method == "reference" and default.custom == ()  # the official code's method is the default
    paper = load_config(p, ["method=paper"])
    assert paper.method == "paper" and paper.custom == ()
    for section, keys in METHOD_PRESETS["paper"].items():
        for k, v in keys.items():
            assert getattr(getattr(paper, section), k) == v, (section, k)
    ref = load_config(p, ["method=reference"])
    assert ref == default
    assert ref.inversion.end == "terminal" and ref.inversion.prompt == "empty" and ref.slm.mode == "reference"
    assert ref.slm.mask_pooling == "reference" and ref.inference.noise_init == "reference"
    assert ref.inference.steps == [30] and ref.inference.strength == [0.98] and ref.inference.guidance_scale == [10, 12]
    assert ref.inference.preservation_scale == [1.0] and ref.inference.dynamic_cfg == "reference"
    assert ref.inference.negative_prompt == REFERENCE_NEGATIVE_PROMPT
    assert ref.inference.fps is None  # a container setting: the output follows the source's rate
    assert ref.model.lora == "Eyeline-Research/Go-with-the-Flow" and ref.inference.vae_latents == "resample"
    # an explicit key wins over the preset, and is recorded as a departure from it
    mixed = load_config(p, ["method=reference", "slm.mode=paper", "inference.steps=[30]"])
    assert mixed.slm.mode == "paper" and mixed.slm.mask_pooling == "reference"
    assert mixed.custom == (("slm.mode", "paper"),)
    with pytest.raises(ConfigError, match="'method'"):
        load_config(p, ["method=official"])


def test_reference_only_checks(tmp_path):
    p = make(tmp_path)
    with pytest.raises(ConfigError, match="refine_iterations"):
        load_config(p, ["method=reference", "inversion.refine_iterations=2"])
    # k and δ are not used by the reference initialisation, so δ > k is no error there
    assert load_config(p, ["method=reference", "inference.k_order=[2]", "inference.adaptive_order=[3]"])


@pytest.mark.parametrize("extra, words", [
    ("camera: {num_framez: 3}", ["camera.num_framez", "num_frames"]),
    ("inference: {steps: [-5]}", ["inference.steps[0]", "-5"]),
    ("inference: {strength: [1.0]}", ["inference.strength[0]", "zero terminal SNR"]),
    ("run: {work_dir: out, dtype: fp8}", ["run.dtype", "fp8"]),
    ("method: paper\ninference: {k_order: [2], adaptive_order: [3]}", ["adaptive_order", "k_order"]),
    ("slm: {occlusion_threshold: 1.5}", ["slm.occlusion_threshold", "[0, 1]"]),
    ("camera: {height: true}", ["camera.height", "integer"]),
    ("inference: {steps: [1], strength: [0.5]}", ["no sampling step", "t_start"]),
    ("run: {work_dir: out, gpus: [-1]}", ["run.gpus"]),
    ("bogus: 1", ["bogus"]),
])
def test_bad_values_name_the_key(tmp_path, extra, words):
    with pytest.raises(ConfigError) as e:
        load_config(make(tmp_path, extra))
    for w in words:
        assert w in str(e.value)


def test_paths_resolve_from_the_config_folder_then_the_project_root(tmp_path):
    from inverse_dvs.config import PROJECT_ROOT

    p = make(tmp_path)
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "v.txt").write_text("a dog", encoding="utf-8")
    cfg = load_config(p, ["trajectories.a={file: trajectories/loop1.txt}", "inference.steps=[25, 50]", "run.seed=7"])
    assert cfg.inference.steps == [25, 50] and cfg.run.seed == 7
    assert cfg.trajectories[0].file == str(PROJECT_ROOT / "trajectories/loop1.txt")  # not beside the config
    assert cfg.videos[0].prompt_file == str(tmp_path / "prompts" / "v.txt")  # beside the config
    # a missing video is not a config error: it fails its own items (preflight lists it first)
    missing = load_config(p, ["videos=[{path: nope.mp4}]"])
    assert missing.videos[0].path == str(tmp_path / "nope.mp4")


def test_unknown_names_suggest_the_nearest(tmp_path):
    from inverse_dvs.config import Selection, select

    p = make(tmp_path, "")
    with pytest.raises(ConfigError, match="unknown preset 'orbit_lft'. Did you mean 'orbit_left'"):
        load_config(p, ["trajectories.b.preset=orbit_lft"])
    with pytest.raises(ConfigError, match="unknown config key 'inference.stength'. Did you mean 'strength'"):
        load_config(p, ["inference.stength=[0.5]"])
    cfg = load_config(p)
    name = cfg.trajectories[0].name
    with pytest.raises(ConfigError, match=f"no trajectory named '{name}x'.*Did you mean '{name}'"):
        select(cfg, Selection(trajectories=(name + "x",)))
    with pytest.raises(ConfigError, match="no video named 'zzzz'") as err:
        select(cfg, Selection.parse("zzzz"))
    assert "Did you mean" not in str(err.value)


def test_warp_size_aspect_needs_stretch(tmp_path):
    p = make(tmp_path)
    size = ["method=paper", "camera.height=480", "camera.width=720"]
    with pytest.raises(ConfigError, match="camera.resize: stretch"):
        load_config(p, [*size, "camera.warp_size=[576, 1024]"])
    cfg = load_config(p, [*size, "camera.warp_size=[576, 1024]", "camera.resize=stretch"])
    assert warp_hw(cfg, cfg.videos[0]) == (576, 1024)
    same = load_config(p, [*size, "camera.warp_size=[960, 1440]"])  # same aspect: fine
    assert warp_hw(same, same.videos[0]) == (960, 1440)
    ref = load_config(p, [*size, "method=reference"])
    assert warp_hw(ref, ref.videos[0]) == (576, 1024) and ref.camera.resize == "stretch"
    assert ref.camera.intrinsics == "reference"
    assert ref.depth.mapping == "reference" and ref.warp.splat == "reference"


def test_readme_config_table_is_the_generated_one():
    """Every key the config accepts, with its default, is in the README (the table is generated from the code)."""
    from inverse_dvs.config import SECTIONS, config_reference

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- config-reference:start -->\n", 1)[1].split("<!-- config-reference:end -->", 1)[0]
    assert block == config_reference()
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f"`{section}.{f.name}`" in block and f.metadata.get("doc"), (section, f.name)


def test_bare_off_in_yaml_means_off(tmp_path):
    p = make(tmp_path, "caption: {source: off}\ninference: {dynamic_cfg: off}")
    cfg = load_config(p)
    assert cfg.caption.source == "off" and cfg.inference.dynamic_cfg == "off"
    with pytest.raises(ConfigError, match="slm.mode"):
        load_config(p, ["slm.mode=off"])  # not a choice there: still an error naming the key


def test_choice_lists_match_the_modules_that_dispatch_on_them():
    """config.py spells each mode list out (it must not import torch); they have to stay the math modules' lists."""
    from inverse_dvs import config
    from inverse_dvs.core import ddim, guidance, krnr, masks, slm, splat
    from inverse_dvs.models.caches import SAMPLING_CACHES

    def choices(section: type, key: str) -> tuple:
        return next(f for f in dataclasses.fields(section) if f.name == key).metadata["check"].choices

    pairs = [((config.WarpConfig, "splat"), splat.SPLATS), ((config.SLMConfig, "mode"), slm.SLM_MODES),
             ((config.SLMConfig, "mask_pooling"), masks.POOLINGS),
             ((config.InferenceConfig, "noise_init"), krnr.NOISE_INITS),
             ((config.InferenceConfig, "dynamic_cfg"), guidance.DYNAMIC_CFG),
             ((config.InferenceConfig, "cache"), SAMPLING_CACHES),
             ((config.InversionConfig, "end"), ddim.INVERSION_ENDS)]
    for (section, key), modes in pairs:
        assert set(choices(section, key)) == set(modes), (section.__name__, key)


@pytest.mark.parametrize("text, words", [
    ("camera: {num_frames: 49}\ncamera: {num_frames: 20}\n", ["'camera' is given twice", "lines"]),
    ("inference: {seeds: [1180591620717411303424]}\n", ["inference.seeds[0]", "2^63"]),
    ("run: {work_dir: ''}\n", ["run.work_dir", "empty"]),
    ("camera: {height: 100000}\n", ["camera.height", "4096"]),
    ("camera: {height: 1e30}\n", ["camera.height", "an integer"]),
])
def test_config_probes_fail_early_with_the_key(tmp_path, text, words):
    p = tmp_path / "c.yml"
    p.write_text(f"videos: [{{path: v.mp4}}]\ntrajectories: {{a: {{preset: orbit_left}}}}\n{text}")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    for w in words:
        assert w in str(e.value), (text, w)


def test_yaml_exponents_are_numbers_and_unicode_file_names_make_names(tmp_path):
    video = tmp_path / "my clip ü 日本.mp4"
    video.write_bytes(b"x")
    p = tmp_path / "c.yml"
    p.write_text(f"videos: [{{path: '{video}'}}]\ntrajectories: {{a: {{preset: orbit_left}}}}\n"
                 "depth: {far: 1e3}\n", encoding="utf-8")
    cfg = load_config(p, ["depth.near=2e-1"])
    assert cfg.depth.far == 1000.0 and cfg.depth.near == 0.2  # YAML 1.1 would read these as strings
    assert cfg.videos[0].name == "my_clip_ü_日本"  # derived from the stem; letters of any script kept
    with pytest.raises(ConfigError, match="videos\\[0\\].name"):  # a name the user wrote is checked as written
        load_config(p, [f"videos=[{{path: '{video}', name: 'my clip'}}]"])
    with pytest.raises(ConfigError, match="'x' is given twice"):
        load_config(p, ["camera={x: 1, x: 2}"])
