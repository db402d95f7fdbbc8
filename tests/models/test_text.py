"""models.text: prompt embeddings, a truncated prompt said once."""

from __future__ import annotations

from tests.models.helpers import lazy_model, small_config


def test_a_truncated_prompt_is_said_once_per_process(tmp_path, tiny_checkpoints, demo_video, capsys):
    """invert and infer share one LazyPipeline in run_all.sh's process: its embedding cache encodes (and warns
    about) each text once."""
    import logging

    from inverse_dvs.runner.cli import setup_logging

    setup_logging(False)
    model = lazy_model(small_config(tmp_path, tiny_checkpoints, demo_video))
    model.log = logging.getLogger("inverse_dvs")
    long = "a dog and a cat and a man in the camera " * 3
    capsys.readouterr()
    first = model.embed([long, ""])  # invert
    again = model.embed([long, "blurry"])  # infer, with its negative prompt
    assert capsys.readouterr().err.count("tokens long") == 1
    assert first[0] is again[0] and len(model.embeddings) == 3
