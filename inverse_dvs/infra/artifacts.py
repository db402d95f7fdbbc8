"""On-disk artifacts: atomic writes, `meta.json` records, item locks and the checks that make runs resumable.

An item is done exactly when its `meta.json` exists, records the same stage, dependency config and input hashes
as now, and every output it lists exists with the sha256 recorded. `meta.json` is written last, after every output
has been renamed into place, so an interrupted item never looks done; a downstream stage consumes an artifact only
when its record matches the current config and the file (`upstream`).

Half-written files are named `.{stem}.partial-{host}-{pid}{suffix}`; those of dead processes (this host) or older
than a day (other hosts) are removed when their folder's item runs again. An item being computed holds
`{folder}/.lock` (pid, host, start time); another process skips it, and takes over a lock left by a dead process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .errors import UpstreamBusy, UserError

META = "meta.json"
LOCK = ".lock"
STALE_SECONDS = 24 * 3600  # a lock or partial file from another host is taken as abandoned after this long
_PARTIAL = re.compile(r"^\..*\.partial-(?P<host>.+)-(?P<pid>\d+)(\.[^.]*)?$")


def host_name() -> str:
    return socket.gethostname() or "localhost"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _abandoned(host: str, pid: int, mtime: float) -> bool:
    if host == host_name():
        return not pid_alive(pid)
    return time.time() - mtime > STALE_SECONDS


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path (same suffix, so writers that infer the format still work); on success
    rename it over `path`, on failure remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial-{host_name()}-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_writable(folder: str | Path, key: str) -> None:
    """UserError naming the config `key` unless `folder` can be created and takes a new file. Folders made for the
    test are removed again, so a run stopped afterwards leaves nothing behind."""
    folder = Path(folder).absolute()
    made = []
    parent = folder
    while not parent.exists() and parent != parent.parent:
        made.append(parent)
        parent = parent.parent
    probe = folder / f".write-test-{host_name()}-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        what = "written to" if not made else "created"
        raise UserError(f"config key '{key}' is '{folder}', which cannot be {what} ({exc.strerror or exc}). Point "
                        f"it at a folder you can write, e.g. --set {key}=outputs.") from None
    finally:
        for d in made:  # deepest first
            with contextlib.suppress(OSError):
                d.rmdir()


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def tensor_digest(tensors: Mapping[str, Any]) -> str:
    """sha256 over the tensors' names, dtypes, shapes and bytes (sorted by name)."""
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_safetensors(path: str | Path, tensors: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> None:
    """Save tensors; `metadata` goes into the header as one sorted JSON string under key `inverse_dvs` (several
    header keys would be written in a per-process random order, so equal files would differ in bytes), with the
    `tensor_digest` of the tensors under `content_sha256`, so a file damaged in its tensor bytes is recognised even
    while its header is intact (`load_safetensors`)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {**dict(metadata or {}), "content_sha256": tensor_digest(tensors)}
    header = {"inverse_dvs": json.dumps(meta, sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)


def load_safetensors(path: str | Path) -> tuple[dict[str, Any], dict]:
    """(tensors, inverse_dvs metadata) of a file written by `save_safetensors`, after checking its tensors against
    the digest in its header. UserError naming the file when it is missing, unreadable or damaged."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {}).get("inverse_dvs", "{}"))
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except FileNotFoundError:
        raise UserError(f"'{path}' is missing.") from None
    except Exception as exc:  # safetensors raises its own error types for truncated or garbled files
        raise UserError(f"'{path}' is damaged ({type(exc).__name__}: {str(exc)[:120]}).") from None
    if meta.get("content_sha256") != tensor_digest(tensors):
        raise UserError(f"'{path}' is damaged: its tensors do not match the digest written with them.")
    return tensors, meta


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def input_hashes(paths: Mapping[str, str | Path]) -> dict[str, str]:
    return {name: sha256(p) for name, p in paths.items()}


def clean_partials(folder: str | Path) -> list[Path]:
    """Remove half-written files left in `folder` by processes that died (this host) or long ago (other hosts)."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        m = _PARTIAL.match(p.name)
        if m and p.is_file() and _abandoned(m["host"], int(m["pid"]), p.stat().st_mtime):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


class ItemLock:
    """`{folder}/.lock` while an item is computed. `acquire()` returns None when taken, else who holds it."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / LOCK
        self.held = False

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _state(self) -> tuple[dict, float | None]:
        """The lock file's contents and mtime (None: no lock file)."""
        info = self._read()
        try:
            return info, self.path.stat().st_mtime
        except OSError:
            return info, None

    @staticmethod
    def _live_holder(info: dict, mtime: float) -> str | None:
        if info and not _abandoned(str(info.get("host")), int(info.get("pid", -1)), mtime):
            return f"pid {info.get('pid')} on host {info.get('host')} since {info.get('started')}"
        return None

    def holder(self) -> str | None:
        """Who holds the lock now (a live process), or None."""
        info, mtime = self._state()
        return None if mtime is None else self._live_holder(info, mtime)

    def acquire(self) -> str | None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info, mtime = self._state()
                if mtime is None:
                    continue  # released meanwhile: try again
                if (live := self._live_holder(info, mtime)) is not None:
                    return live
                if not info and time.time() - mtime < 60:  # being written right now
                    return "another process (lock being written)"
                self.path.unlink(missing_ok=True)  # abandoned: take it over
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"pid": os.getpid(), "host": host_name(),
                           "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, fh)
            self.held = True
            return None
        return "another process (lock contended)"

    def release(self) -> None:
        if self.held:
            info = self._read()
            if info.get("pid") == os.getpid() and info.get("host") == host_name():
                self.path.unlink(missing_ok=True)
            self.held = False


def make_meta(stage: str, depends: Mapping[str, Any], inputs: Mapping[str, str], outputs: list[str],
              output_hashes: Mapping[str, str] | None = None, **extra: Any) -> dict:
    return {
        "stage": stage,
        "version": __version__,
        "depends": _canonical(depends),
        "inputs": dict(inputs),
        "outputs": sorted(outputs),
        "output_hashes": dict(sorted((output_hashes or {}).items())),
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


def stale_reason(folder: str | Path, stage: str, depends: Mapping[str, Any], inputs: Mapping[str, str]) -> str | None:
    """Why the item in `folder` must be computed (again), or None when it is up to date: its record is of `stage`,
    for the same settings and inputs, and every output it lists is there with the sha256 it recorded — an output
    damaged or replaced since is never reused, whatever its size or modification time say."""
    meta = read_meta(folder)
    if meta is None or meta.get("stage") != stage:
        return "not computed yet"
    if meta.get("depends") != _canonical(depends):
        return "settings changed"
    if meta.get("inputs") != dict(inputs):
        return "inputs changed"
    recorded = meta.get("output_hashes", {})
    for name in meta.get("outputs", []):
        path = Path(folder) / name
        if not path.is_file():
            return f"{name} is missing"
        if recorded.get(name) != sha256(path):
            return f"{name} changed since it was made (damaged or replaced)"
    return None



def _differing(recorded: Any, current: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two dependency records differ (for messages)."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        out = []
        for k in sorted(set(recorded) | set(current)):
            out += _differing(recorded.get(k), current.get(k), f"{prefix}{k}.")
        return out
    return [] if recorded == current else [prefix.rstrip(".") or "(all)"]


def upstream(folder: str | Path, stage: str, depends: Mapping[str, Any], files: Mapping[str, str | Path],
             inputs: Mapping[str, str] | None = None, what: str = "") -> dict[str, str]:
    """Check that artifacts made by an earlier `stage` may be consumed, and return their sha256 by name.

    The folder's record must exist, be of `stage`, depend on exactly `depends` (what that stage computes for the
    current config), list `inputs` (hashes of the files it was made from, as they are now) and record each of
    `files` with its current hash. Anything else raises UserError naming the stage to rerun, so a stale file left by
    a failed or outdated run is never used.
    """
    folder = Path(folder)
    rerun = f"rerun `python -m inverse_dvs.{stage}` (or `bash run_all.sh`), then this stage"
    label = what or str(folder)
    # the lock, then the record, then the lock again: a process finishing the item writes its record before it
    # releases the lock, and one starting it takes the lock before it drops the record (`run_item`), so an item
    # finished or started between the two reads is never taken for one that failed
    lock = ItemLock(folder)
    holder = lock.holder()
    meta = read_meta(folder)
    if holder is None and meta is None:
        holder = lock.holder()
    if holder is not None and (meta is None or meta.get("depends") != _canonical(depends)):
        raise UpstreamBusy(f"{label}: the {stage} stage is computing it in another process ({holder}); this stage "
                           "comes back to it when that has finished.", folder)
    if meta is None or meta.get("stage") != stage:
        raise UserError(f"{label}: no finished {stage} record in {folder} (the {stage} stage has not run for it, or "
                        f"its last run failed); {rerun}.")
    if meta.get("depends") != _canonical(depends):
        keys = ", ".join(_differing(meta.get("depends"), _canonical(depends))[:6])
        raise UserError(f"{label}: the {stage} results in {folder} were made with other settings than the current "
                        f"config ({keys}); {rerun}.")
    for name, digest in (inputs or {}).items():
        if meta.get("inputs", {}).get(name) != digest:
            raise UserError(f"{label}: the {name} the {stage} results in {folder} were made from has changed since; "
                            f"{rerun}.")
    hashes = {}
    for name, path in files.items():
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{label}: '{path}' is missing although its {stage} record exists; {rerun}.")
        hashes[name] = sha256(path)
        if meta.get("output_hashes", {}).get(path.name) != hashes[name]:
            raise UserError(f"{label}: '{path}' is not the file its {stage} record describes (changed or replaced "
                            f"since); {rerun}.")
    return hashes


def invalidate(folder: str | Path) -> None:
    """Drop the done-marker first, so a crash while recomputing never leaves stale outputs looking current."""
    p = Path(folder) / META
    if p.exists():
        p.unlink()


def run_item(folder: str | Path, stage: str, depends: Mapping[str, Any], inputs: Mapping[str, str], force: bool,
             label: str, compute, log, **meta_extra: Any) -> str:
    """Run one work item unless it is up to date. `compute(folder)` writes the outputs (atomically) and returns
    (output file names, extra meta dict). Returns 'skipped' or 'done'."""
    reason = stale_reason(folder, stage, depends, inputs)
    if not force and reason is None:
        log.info("%s %s: skipped (up to date)", stage, label)
        return "skipped"
    if not force and "changed since it was made" in reason:  # worth a warning: someone or something altered it
        log.warning("%s %s: %s; computing it again.", stage, label, reason)
    invalidate(folder)
    t0 = time.perf_counter()
    outputs, extra = compute(Path(folder))
    seconds = time.perf_counter() - t0
    hashes = {name: sha256(Path(folder) / name) for name in outputs}
    write_json(Path(folder) / META, make_meta(stage, depends, inputs, outputs, hashes, seconds=round(seconds, 3),
                                              **meta_extra, **extra))
    log.info("%s %s: done in %.1f s", stage, label, seconds)
    return "done"
