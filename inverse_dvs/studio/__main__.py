"""`python -m inverse_dvs.studio`: the page needs the `studio` extra (Gradio, plotly, ruamel.yaml)."""

import importlib
import sys


def missing() -> list[str]:
    out = []
    for module in ("gradio", "plotly", "ruamel.yaml"):
        try:
            importlib.import_module(module)
        except ImportError:
            out.append(module)
    return out


if __name__ == "__main__":
    if absent := missing():
        sys.stderr.write(
            f"studio: {', '.join(absent)} not installed; the studio is the package's `studio` extra. Install it with "
            "`.venv/bin/pip install -e '.[studio]'` in the project folder (`bash setup_env.sh` installs it), then "
            "rerun `python -m inverse_dvs.studio`.\n")
        raise SystemExit(2)
    from .app import main

    raise SystemExit(main())
