"""What a file of a run is and what made it: `python -m inverse_dvs.inspect PATH [PATH ...] [--json]`.

For a video: frames, size (height × width), fps and duration. For an array file (.npz, .safetensors): its arrays and
their shapes. Then the record (meta.json) of the item that wrote it: stage, when, how long, the settings it ran
with, the digests of its inputs, and whether the file still has the digest recorded when it was made. A folder shows
its record and each output it lists. Reads only; exit 2 when a path is missing or a file cannot be read as what its
suffix says (its record is still shown).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .infra.artifacts import META, read_meta, sha256
from .infra.errors import EXIT_OK, EXIT_USER_ERROR, UserError
from .infra.video_io import probe_video

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif")


def _flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    """{'inference.steps': 50, ...} from nested mappings."""
    if not isinstance(obj, dict):
        return {prefix: obj}
    out: dict[str, Any] = {}
    for k, v in obj.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _arrays(path: Path) -> dict[str, str]:
    """name → 'shape dtype' of the arrays in a .npz or .safetensors file."""
    if path.suffix == ".npz":
        import numpy as np

        with np.load(path, allow_pickle=False) as z:
            return {k: f"{list(z[k].shape)} {z[k].dtype}" for k in z.files}
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as fh:
        return {k: f"{fh.get_slice(k).get_shape()} {fh.get_slice(k).get_dtype()}" for k in fh.keys()}  # noqa: SIM118


def record_of(path: Path) -> tuple[Path, dict] | None:
    """(folder, record) of the item that made `path`: the nearest meta.json in its folder or above."""
    for folder in ([path] if path.is_dir() else []) + list(path.absolute().parents):
        if (folder / META).is_file():
            meta = read_meta(folder)
            return (folder, meta) if isinstance(meta, dict) else (folder, {"damaged": True})
    return None


def describe(path: str | Path) -> dict[str, Any]:
    """Everything `inspect` says about one path, as plain data (a file that cannot be read as what its suffix says
    gets `video_error` or `arrays_error`, and still its record). UserError when it does not exist."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"'{path}' does not exist; give a video, an artifact or a folder of a run's work_dir.")
    out: dict[str, Any] = {"path": str(path)}
    if path.is_file():
        out["bytes"] = path.stat().st_size
        if path.suffix.lower() in VIDEO_SUFFIXES:
            try:
                info = probe_video(path)
                seconds = round(info.frames / info.fps, 2) if info.fps else None
                out["video"] = {"frames": info.frames, "height": info.size[0], "width": info.size[1],
                                "fps": round(info.fps, 3), "seconds": seconds, "variable_rate": info.variable_rate}
            except UserError as exc:  # a damaged video: say so, still show its record and digest
                out["video_error"] = str(exc)
        if path.suffix in (".npz", ".safetensors"):
            try:
                out["arrays"] = _arrays(path)
            except Exception as exc:  # a damaged archive: say so, still show its record
                out["arrays_error"] = f"{type(exc).__name__}: {str(exc)[:160]}"
    found = record_of(path)
    if found is None:
        out["record"] = None
        return out
    folder, meta = found
    out["record"] = {"file": str(folder / META), **meta}
    if path.is_file():
        name = path.absolute().relative_to(folder.absolute()).as_posix()
        want = (meta.get("output_hashes") or {}).get(name)
        out["digest"] = {"sha256": sha256(path), "recorded": want}
    return out


def _lines(d: dict[str, Any]) -> list[str]:
    lines = [d["path"]]
    if "video" in d:
        v = d["video"]
        lines.append(f"  video: {v['frames']} frames, {v['height']}×{v['width']} (height × width), {v['fps']:g} fps, "
                     f"{v['seconds']} s" + (" (variable frame rate)" if v["variable_rate"] else ""))
    for k, desc in (d.get("arrays") or {}).items():
        lines.append(f"  array {k}: {desc}")
    if "video_error" in d:
        lines.append(f"  unreadable as a video: {d['video_error']}")
    if "arrays_error" in d:
        lines.append(f"  unreadable as an array file: {d['arrays_error']}")
    rec = d["record"]
    if rec is None:
        lines.append("  record: none found (not written by a stage of inverse-dvs, or its folder was moved alone)")
        return lines
    if rec.get("damaged"):
        lines.append(f"  record: {rec['file']} is damaged (not JSON); the next run recomputes this item")
        return lines
    if "digest" in d:
        got, want = d["digest"]["sha256"], d["digest"]["recorded"]
        state = ("matches its record" if got == want else
                 "not an output its record lists" if want is None else
                 "differs from its record: changed since it was made (the next run recomputes it)")
        lines.append(f"  sha256: {got[:16]}… {state}")
    took = f", in {rec['seconds']:g} s" if isinstance(rec.get("seconds"), int | float) else ""
    lines.append(f"  made by: the {rec.get('stage', '?')} stage, {rec.get('created', '?')}{took} "
                 f"(inverse-dvs {rec.get('version', '?')}); record {rec['file']}")
    if rec.get("outputs"):
        lines.append("  outputs: " + ", ".join(rec["outputs"]))
    lines.append("  inputs:")
    lines += [f"    {k}: sha256 {str(v)[:16]}…" for k, v in sorted((rec.get("inputs") or {}).items())]
    lines.append("  settings:")
    settings = _flat(rec.get("depends") or {})
    lines += [f"    {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in sorted(settings.items())]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m inverse_dvs.inspect", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="a video, artifact or item folder of a work_dir")
    p.add_argument("--json", action="store_true", help="one JSON object per path instead of text")
    args = p.parse_args(argv)
    rc = EXIT_OK
    for path in args.paths:
        try:
            d = describe(path)
        except UserError as exc:
            sys.stderr.write(f"inspect: {exc}\n")
            rc = EXIT_USER_ERROR
            continue
        sys.stdout.write((json.dumps(d, ensure_ascii=False) if args.json else "\n".join(_lines(d))) + "\n")
        if "video_error" in d or "arrays_error" in d:
            rc = EXIT_USER_ERROR
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
