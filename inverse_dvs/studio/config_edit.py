"""Adding a trajectory (and a video) to a config file by inserting lines: every other line stays byte for byte — its
wrapping, indentation, quotes and comments — so the diff of a save is the lines it adds.

ruamel.yaml reads where each top-level block starts and how its entries are indented; the new entry is one line in
the block's own style, after the block's last line. A block the lines cannot be added to (a flow mapping such as
`trajectories: {a: …}`, or an empty key) is written anew in block style, and only its lines change.
"""

from __future__ import annotations

import re

import yaml

from ..infra.errors import UserError


def _flow(value) -> str:
    """One YAML line for a mapping or a scalar (quoted where YAML needs it)."""
    return yaml.safe_dump(value, default_flow_style=True, width=1 << 20, allow_unicode=True, sort_keys=False
                          ).strip().removesuffix("\n...").strip()


def _block_lines(data, key: str, lines: list[str]) -> tuple[int, int]:
    """(first, end) line indices of top-level `key`'s block: from its key line to its last line that is not blank or
    a comment before the next top-level key."""
    keys = list(data.keys())
    first = data.lc.key(key)[0]
    nxt = keys.index(key) + 1
    end = data.lc.key(keys[nxt])[0] if nxt < len(keys) else len(lines)
    while end > first + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return first, end


def _ends_with_newline(lines: list[str]) -> None:
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"


def _add(text: str, key: str, line_of, block_of) -> str:
    """`text` with one entry added to top-level `key`: `line_of(data, lines)` gives the new line in the block's
    style (None when the block has none to follow), `block_of(value)` the whole block anew."""
    from ruamel.yaml import YAML

    data = YAML().load(text) or {}
    lines = text.splitlines(keepends=True)
    _ends_with_newline(lines)
    if key not in data:
        return "".join(lines) + block_of(None)
    first, end = _block_lines(data, key, lines)
    line = line_of(data, lines)
    if line is not None:
        return "".join(lines[:end] + [line] + lines[end:])
    return "".join(lines[:first] + [block_of(data[key])] + lines[end:])


def add_trajectory(text: str, name: str, entry: dict) -> str:
    """`text` with trajectory `name: entry` added to its `trajectories` mapping."""
    item = f"{_flow({name: entry})[1:-1]}\n"  # `name: {…}`

    def line_of(data, lines):
        block = data["trajectories"]
        if not block or getattr(block, "fa", None) is None or block.fa.flow_style():
            return None
        return " " * block.lc.key(next(iter(block)))[1] + item

    def block_of(old):
        return "trajectories:\n" + "".join(f"  {_flow({k: dict(v) if isinstance(v, dict) else v})[1:-1]}\n"
                                           for k, v in (old or {}).items()) + "  " + item

    data = yaml.safe_load(text) or {}
    expected = {**data, "trajectories": {**(data.get("trajectories") or {}), name: entry}}
    return _checked(expected, _add(text, "trajectories", line_of, block_of))


def add_video(text: str, entry: dict) -> str:
    """`text` with video `entry` appended to its `videos` list."""
    item = f"{_flow(entry)}\n"

    def line_of(data, lines):
        block = data["videos"]
        if not block or getattr(block, "fa", None) is None or block.fa.flow_style():
            return None
        m = re.match(r"\s*-\s+", lines[block.lc.item(0)[0]])  # the first item's indent and dash, e.g. `    -   `
        return f"{m[0]}{item}" if m else None

    def block_of(old):
        return "videos:\n" + "".join(f"  - {_flow(dict(v) if isinstance(v, dict) else v)}\n" for v in old or []) \
            + "  - " + item

    data = yaml.safe_load(text) or {}
    expected = {**data, "videos": [*(data.get("videos") or []), entry]}
    return _checked(expected, _add(text, "videos", line_of, block_of))


def _checked(expected: dict, new: str) -> str:
    """`new` when it reads as `expected` (the old config plus the entry), else a UserError: never a config that says
    something else than the user wrote."""
    try:
        ok = yaml.safe_load(new) == expected
    except yaml.YAMLError:
        ok = False
    if not ok:
        raise UserError("the studio could not add the entry to the config without changing what else it says; add it "
                        "by hand, or tick the box that writes a new config beside it.")
    return new
