"""infra.layout: the on-disk contract (README → Outputs)."""

from pathlib import Path

from inverse_dvs.infra import layout


def test_every_artifact_lives_where_the_readme_says():
    w = Path("w")
    assert layout.depth_dir(w, "v") == w / "depths/v"
    assert layout.result_dir(w, "t", "v") == w / "results/t/v"
    assert layout.render_file(w, "t", "v") == w / "results/t/v/render.npz"
    assert layout.run_dir(w, "t", "v", "paper_x") == w / "results/t/v/paper_x"
    assert layout.inversion_file(w, "t", "v", 939) == w / "inversions/t/v/inversion_t0939.safetensors"
    assert layout.caption_dir(w, "v") == w / "prompts/v" and layout.caption_dir(w, "v", "t") == w / "prompts/v/t"
    assert layout.eval_dir(w) == w / "eval"
