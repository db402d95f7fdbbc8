#!/usr/bin/env bash
# The GPU check, in one call: bash scripts/gpu_check.sh [--cpu] [--model 5b|1.5] [--budget SECONDS] [--cache NAME]
# Prints one table and writes it to $OUT/gpu_check.md (else outputs/gpu_check/), with gpu_check.json and
# tiny_e2e.log beside it. What it measures and why: scripts/gpu_check.py. `--cpu` runs the same steps on the tiny
# model on the CPU (a test of this script, no targets).
#
# Environment: the project's .venv when there is one (setup_env.sh), else python3. On a bare CUDA machine without
# diffusers, decord or ffmpeg (the lent GPU), first run `bash scripts/gpu_prepare.sh` here, carry `.gpu`, and this
# installs the packed wheels to /tmp/site. Through the device tool, in one call of at most 9 minutes:
#   run(command="bash scripts/gpu_check.sh", carry=[".gpu"], timeout_s=560)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
if ! "$PY" -c "import diffusers" >/dev/null 2>&1; then
  if [ ! -d .gpu/whl ]; then
    echo "gpu_check.sh: diffusers is not installed and there is no .gpu/whl; run 'bash setup_env.sh', or on a bare" \
         "GPU machine 'bash scripts/gpu_prepare.sh' beforehand and carry .gpu." >&2
    exit 2
  fi
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl || exit 2
  cp -r .gpu/whl/iof/* /tmp/site/ 2>/dev/null
  if [ -f .gpu/ff/ff.xz ]; then
    xz -d -c .gpu/ff/ff.xz > /tmp/ffmpeg && chmod +x /tmp/ffmpeg && export IMAGEIO_FFMPEG_EXE=/tmp/ffmpeg
  fi
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# the tiny checkpoints and the demo video of configs/tiny.yml (setup_env.sh makes them; both steps are idempotent)
"$PY" -m inverse_dvs.testing.tiny --out checkpoints >/dev/null || exit 1
"$PY" scripts/make_demo_scene.py --out data >/dev/null || exit 1
exec "$PY" scripts/gpu_check.py "$@"
