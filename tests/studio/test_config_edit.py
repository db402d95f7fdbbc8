"""Saving in the studio adds lines to the config and changes no other line (a diff of the file before and after)."""

import difflib

import pytest
import yaml

pytest.importorskip("ruamel.yaml", reason="the studio extra is not installed (pip install -e '.[studio]')")
from inverse_dvs.studio.config_edit import add_trajectory, add_video  # noqa: E402

# a config written by hand: a line far past 80 columns, lists indented 4 and aligned, quotes, comments everywhere
LONG = "a red ball rolling in front of a wall, filmed on a sunny afternoon with a handheld camera"
CONFIG = f"""\
# my notes: keep me
method: paper
run: {{work_dir: outputs, device: auto, dtype: bf16, seed: 42}}   # a trailing comment
videos:
    -   {{path: data/demo.mp4, name: demo, prompt: '{LONG}', notes: '{LONG}'}}
    -   path: "data/other.mp4"
        name: other

trajectories:
    loop1:   {{file: trajectories/loop1.txt}}      # aligned comments
    orbit:   {{preset: orbit_left, amount: 20}}
    # a comment closing the block

# the depth model
depth: {{backend: depth_anything}}
inference: {{steps: [50], strength: [0.95],
            guidance_scale: [6.0]}}
"""


def changes(before: str, after: str) -> tuple[list[str], list[str]]:
    """(removed, added) lines of a diff."""
    diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0))
    removed = [d[1:] for d in diff if d.startswith("-") and not d.startswith("---")]
    added = [d[1:] for d in diff if d.startswith("+") and not d.startswith("+++")]
    return removed, added


def test_a_saved_trajectory_and_video_are_lines_added_in_the_files_own_style():
    after = add_trajectory(CONFIG, "mine", {"file": "trajectories/mine.txt"})
    after = add_video(after, {"path": "/clips/new one.mp4", "name": "new"})
    removed, added = changes(CONFIG, after)
    assert removed == []
    assert added == ["    mine: {file: trajectories/mine.txt}", "    -   {path: /clips/new one.mp4, name: new}"] or \
        added == ["    -   {path: /clips/new one.mp4, name: new}", "    mine: {file: trajectories/mine.txt}"]
    data = yaml.safe_load(after)
    assert list(data["trajectories"]) == ["loop1", "orbit", "mine"]
    assert data["videos"][-1] == {"path": "/clips/new one.mp4", "name": "new"}
    assert after.index("mine:") < after.index("# a comment closing the block")  # inside the block, before its tail


@pytest.mark.parametrize("name", ["yes", "1e3", "null", "on-the.way"])
def test_names_yaml_would_read_as_something_else_are_quoted(name):
    after = add_trajectory(CONFIG, name, {"preset": "orbit_left"})
    assert name in yaml.safe_load(after)["trajectories"] and changes(CONFIG, after)[0] == []


def test_a_flow_or_missing_block_changes_only_its_own_lines():
    flow = "method: paper\ntrajectories: {a: {preset: orbit_left}}  # mine\nvideos: [{path: v.mp4}]\n"
    after = add_video(add_trajectory(flow, "b", {"file": "t.txt"}), {"path": "w.mp4", "name": "w"})
    removed, _ = changes(flow, after)
    assert removed == ["trajectories: {a: {preset: orbit_left}}  # mine", "videos: [{path: v.mp4}]"]
    assert yaml.safe_load(after) == {"method": "paper", "trajectories": {"a": {"preset": "orbit_left"},
                                                                        "b": {"file": "t.txt"}},
                                     "videos": [{"path": "v.mp4"}, {"path": "w.mp4", "name": "w"}]}
    bare = "method: paper"  # no trajectories, no final newline
    after = add_trajectory(bare, "b", {"file": "t.txt"})
    assert after.startswith("method: paper\n") and yaml.safe_load(after)["trajectories"] == {"b": {"file": "t.txt"}}
