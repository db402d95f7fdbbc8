"""Tests of infra.artifacts."""

import json

import numpy as np
import pytest

from inverse_dvs.infra import artifacts as A


class Log:
    def info(self, *a):
        pass

    warning = info


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.npz"
    with pytest.raises(RuntimeError):
        with A.atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_run_item_skips_and_recomputes(tmp_path):
    calls = []

    def compute(folder):
        calls.append(1)
        A.save_npz(folder / "a.npz", x=np.arange(3))
        return ["a.npz"], {}

    dep = {"k": 1}
    assert A.run_item(tmp_path, "s", dep, {"in": "h"}, False, "i", compute, Log()) == "done"
    assert A.run_item(tmp_path, "s", dep, {"in": "h"}, False, "i", compute, Log()) == "skipped"
    assert A.run_item(tmp_path, "s", {"k": 2}, {"in": "h"}, False, "i", compute, Log()) == "done"
    assert A.run_item(tmp_path, "s", {"k": 2}, {"in": "h2"}, False, "i", compute, Log()) == "done"
    (tmp_path / "a.npz").unlink()  # a missing output is never "done"
    assert A.run_item(tmp_path, "s", {"k": 2}, {"in": "h2"}, False, "i", compute, Log()) == "done"
    A.save_npz(tmp_path / "a.npz", x=np.arange(4))  # nor one replaced since: its sha256 is not the recorded one
    assert A.stale_reason(tmp_path, "s", {"k": 2}, {"in": "h2"}) == "a.npz changed since it was made (damaged or " \
        "replaced)"
    assert A.run_item(tmp_path, "s", {"k": 2}, {"in": "h2"}, False, "i", compute, Log()) == "done"
    assert len(calls) == 5
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["stage"] == "s" and meta["outputs"] == ["a.npz"] and "created" in meta


def test_interrupted_compute_is_not_done(tmp_path):
    def crash(folder):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        A.run_item(tmp_path, "s", {}, {}, False, "i", crash, Log())
    assert A.stale_reason(tmp_path, "s", {}, {}) == "not computed yet"
