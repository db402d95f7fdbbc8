"""`python -m inverse_dvs.X --help` prints the usage and exits 0 for every module that runs as a program."""

import contextlib
import io
import runpy
import sys
from pathlib import Path

import pytest

import inverse_dvs

PACKAGE = Path(inverse_dvs.__file__).parent


def _programs() -> list[str]:
    """Every module of the package that runs with `python -m`: a `__main__` guard, or a package's __main__.py."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if path.name == "__main__.py":
            out.append(".".join(parts[:-1]))
        elif 'if __name__ == "__main__"' in path.read_text(encoding="utf-8"):
            out.append(".".join(parts))
    return out


def test_the_programs_are_found():
    progs = _programs()
    assert {"inverse_dvs.chain", "inverse_dvs.infer", "inverse_dvs.config", "inverse_dvs.studio"} <= set(progs)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # runpy: the module was imported before, by another test
@pytest.mark.parametrize("module", _programs())
def test_help_exits_zero(module, monkeypatch):
    monkeypatch.setattr(sys, "argv", [module, "--help"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop:
        runpy.run_module(module, run_name="__main__", alter_sys=False)
    assert stop.value.code in (0, None), f"python -m {module} --help exited {stop.value.code}"
    assert "usage" in out.getvalue().lower() or module.split(".")[-1] in out.getvalue()
