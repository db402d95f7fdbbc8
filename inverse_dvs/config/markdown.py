"""The README's config table, generated from the schema and the presets (`python -m inverse_dvs.config --markdown`;
a test keeps the README and the code in step)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .presets import METHOD_PRESETS
from .schema import DEFAULT_METHOD, SECTIONS


def _fmt(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return f'"{v}"' if v == "" else str(v)


def config_reference() -> str:
    """The README's config table, generated from the dataclasses: every key, its `method: paper` value (the
    dataclass default), the `method: reference` value where it differs, and what it does."""
    rows = [
        "| key | `method: paper` | `method: reference` (where it differs) | meaning |",
        "|---|---|---|---|",
        f"| `method` | `{DEFAULT_METHOD}` (the default) | | `paper` or `reference`: which of the two value columns "
        "gives the defaults (README → Fidelity); a key written in the config wins |",
        "| `videos[]` | | | `{path, name (default: the file stem), prompt}`; a glob path (`videos/*.mp4`) adds every "
        "match, each named by its stem; a missing prompt is read from "
        "`prompts/{name}.txt` (config folder, then project root) |",
        "| `trajectories.NAME` | | | one of `{file: PATH}` (3-line θ/φ/r keyframe file), `{theta: […], phi: […], "
        "r: […]}`, `{preset: orbit_left\\|orbit_right\\|arc_up\\|arc_down\\|dolly_in\\|dolly_out (combine with +), "
        "amount: X}` (degrees; percent of the scene radius for dolly), `{poses: PATH.json}` (T camera-to-world 4×4) |",
    ]
    for section, cls in SECTIONS.items():
        ref = METHOD_PRESETS["reference"].get(section, {})
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            alt = f"`{_fmt(ref[f.name])}`" if f.name in ref and ref[f.name] != default else ""
            doc = f.metadata.get("doc", "").replace("|", "\\|")
            rows.append(f"| `{section}.{f.name}` | `{_fmt(default)}` | {alt} | {doc} |")
    return "\n".join(rows) + "\n"
