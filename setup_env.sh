#!/usr/bin/env bash
# Two-command setup, step 1: create .venv, install inverse-dvs (editable, with dev tools), build the tiny offline
# checkpoints and the demo video. `--weights` also downloads the real weights named in config.yml; `--cluster` adds
# the Ray backend (Ray and pyarrow: `bash run_all.sh CONFIG --ray`, README → Clusters).
# Idempotent: a second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")"

WEIGHTS=0
CLUSTER=0
CONFIG=config.yml
for arg in "$@"; do
  case "$arg" in
    --weights) WEIGHTS=1 ;;
    --cluster) CLUSTER=1 ;;
    --config=*) CONFIG="${arg#--config=}" ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "setup_env.sh: unknown option '$arg' (use --weights, --cluster, --config=PATH)" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
PIP=(env PIP_DISABLE_PIP_VERSION_CHECK=1 "$VPY" -m pip)

# torch first, so that the package's torch requirement is already met. Without an NVIDIA GPU take the CPU build
# (pinned: a local wheel on some machines; otherwise the CPU index), never a multi-GB CUDA build.
if ! "$VPY" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    "${PIP[@]}" install "torch>=2.4,<2.15"
  else
    "${PIP[@]}" install "torch==2.13.0" 2>/dev/null \
      || "${PIP[@]}" install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
  fi
fi

STAMP=.venv/.inverse_dvs_installed
EXTRAS=dev,studio
if [ "$CLUSTER" = 1 ] || "$VPY" -c "import ray" 2>/dev/null; then EXTRAS=$EXTRAS,cluster; fi  # keep it once added
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ "$(cat "$STAMP")" != "$EXTRAS" ]; then
  "${PIP[@]}" install -q -e ".[$EXTRAS]"
  echo "$EXTRAS" > "$STAMP"
fi

# LPIPS (evaluation) needs torchvision. With an NVIDIA GPU, install the CUDA release that matches the torch above
# (inverse_dvs.models.clip_scorer.matching_torchvision); next to the CPU build of torch the registries' torchvision
# wheels are CUDA builds that break the import, so CPU machines go without (the evaluation says so, with the command).
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && ! "$VPY" -c "import torchvision" 2>/dev/null; then
  "${PIP[@]}" install "$("$VPY" -c "import torch; from inverse_dvs.models.clip_scorer import matching_torchvision as m; print(m(torch.__version__))")"
fi

"$VPY" -m inverse_dvs.testing.tiny --out checkpoints
"$VPY" scripts/make_demo_scene.py --out data
# a portrait clip for the CogVideoX1.5 demo (configs/tiny15.yml: any aspect, no crop)
"$VPY" scripts/make_demo_scene.py --out data --name demo_portrait --frames 33 --height 448 --width 256 --fps 16

if [ "$WEIGHTS" = 1 ]; then
  "$VPY" -m inverse_dvs.weights download --config "$CONFIG"
fi
echo "setup_env.sh: ready. Activate with 'source .venv/bin/activate'; run 'bash run_all.sh [CONFIG]'."
