"""On-disk artifacts: atomic writes, `meta.json` records and the "up to date" test that makes runs resumable.

An item is done exactly when its `meta.json` exists, records the same stage, dependency config and input hashes
as now, and every output it lists exists. `meta.json` is written last, after every output has been renamed into
place, so an interrupted item never looks done.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__

META = "meta.json"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path (same suffix, so writers that infer the format still work); on success
    rename it over `path`, on failure remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def save_safetensors(path: str | Path, tensors: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> None:
    """Save tensors; `metadata` goes into the header as one sorted JSON string under key `inverse_dvs` (several
    header keys would be written in a per-process random order, so equal files would differ in bytes)."""
    from safetensors.torch import save_file

    header = {"inverse_dvs": json.dumps(dict(metadata or {}), sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=header)


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def input_hashes(paths: Mapping[str, str | Path]) -> dict[str, str]:
    return {name: sha256(p) for name, p in paths.items()}


def make_meta(stage: str, depends: Mapping[str, Any], inputs: Mapping[str, str], outputs: list[str],
              **extra: Any) -> dict:
    return {
        "stage": stage,
        "version": __version__,
        "depends": _canonical(depends),
        "inputs": dict(inputs),
        "outputs": sorted(outputs),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }


def _canonical(obj: Any) -> Any:
    # JSON round-trip so tuples/lists and int/float spellings compare equal to what was stored.
    return json.loads(json.dumps(obj, sort_keys=True))


def read_meta(folder: str | Path) -> dict | None:
    p = Path(folder) / META
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_up_to_date(folder: str | Path, stage: str, depends: Mapping[str, Any], inputs: Mapping[str, str]) -> bool:
    meta = read_meta(folder)
    if meta is None:
        return False
    if meta.get("stage") != stage or meta.get("depends") != _canonical(depends) or meta.get("inputs") != dict(inputs):
        return False
    return all((Path(folder) / name).is_file() for name in meta.get("outputs", []))


def invalidate(folder: str | Path) -> None:
    """Drop the done-marker first, so a crash while recomputing never leaves stale outputs looking current."""
    p = Path(folder) / META
    if p.exists():
        p.unlink()


def run_item(folder: str | Path, stage: str, depends: Mapping[str, Any], inputs: Mapping[str, str], force: bool,
             label: str, compute, log, **meta_extra: Any) -> str:
    """Run one work item unless it is up to date. `compute(folder)` writes the outputs (atomically) and returns
    (output file names, extra meta dict). Returns 'skipped' or 'done'."""
    if not force and is_up_to_date(folder, stage, depends, inputs):
        log.info("%s %s: skipped (up to date)", stage, label)
        return "skipped"
    invalidate(folder)
    t0 = time.perf_counter()
    outputs, extra = compute(Path(folder))
    seconds = time.perf_counter() - t0
    write_json(Path(folder) / META, make_meta(stage, depends, inputs, outputs, seconds=round(seconds, 3), **meta_extra,
                                                                        **extra))
    log.info("%s %s: done in %.1f s", stage, label, seconds)
    return "done"
