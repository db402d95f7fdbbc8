"""`python -m inverse_dvs.studio`: the page needs the `studio` extra (Gradio, plotly, ruamel.yaml)."""

import importlib.util
import sys

MISSING = [m for m in ("gradio", "plotly", "ruamel.yaml") if importlib.util.find_spec(m.split(".")[0]) is None]

if __name__ == "__main__":
    if MISSING:
        sys.stderr.write(
            f"studio: {', '.join(MISSING)} not installed; the studio is the package's `studio` extra. Install it "
            "with `.venv/bin/pip install -e '.[studio]'` in the project folder (`bash setup_env.sh` installs it), "
            "then rerun `python -m inverse_dvs.studio`.\n")
        raise SystemExit(2)
    from .app import main

    raise SystemExit(main())
