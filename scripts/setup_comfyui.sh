#!/usr/bin/env bash
# A ComfyUI to test the node pack against: `bash scripts/setup_comfyui.sh [SOURCE]` unpacks ComfyUI (SOURCE: a
# ComfyUI folder or release tarball; default $INVERSE_DVS_COMFYUI, else ../shared/vendor/comfyui-*.tar.gz) into
# $INVERSE_DVS_COMFYUI_HOME (default ~/.cache/inverse-dvs/comfyui)/ComfyUI with its own venv beside it holding
# ComfyUI's requirements and this project (editable). Prints the ComfyUI folder. Reused, by every clone of the
# project, while its inputs are unchanged (the source, pyproject.toml, this script): then only the project's own
# editable install is pointed at this clone. The tests link the node pack (comfyui/) into a server's custom_nodes.
#
# On CPU-only machines (like CI) the registries' torchvision is a CUDA build that fails to import next to CPU torch;
# ComfyUI needs it at start-up, so here (and only in this test venv) its two unconditional fake-op registrations are
# made conditional on its compiled ops being there. A GPU user's own ComfyUI needs none of this: README → ComfyUI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SRC=${1:-${INVERSE_DVS_COMFYUI:-}}
if [ -z "$SRC" ]; then
  SRC=$(ls "$ROOT"/../shared/vendor/comfyui-*.tar.gz 2>/dev/null | head -1 || true)
fi
if [ -z "$SRC" ] || [ ! -e "$SRC" ]; then
  echo "setup_comfyui.sh: no ComfyUI found (looked for $ROOT/../shared/vendor/comfyui-*.tar.gz): give a ComfyUI" \
       "folder or release tarball as the argument or in INVERSE_DVS_COMFYUI" >&2
  exit 2
fi
DEST=${INVERSE_DVS_COMFYUI_HOME:-$HOME/.cache/inverse-dvs/comfyui}
STAMP=$DEST/.stamp
KEY=$( (if [ -d "$SRC" ]; then git -C "$SRC" rev-parse HEAD 2>/dev/null || echo "$SRC"; else cat "$SRC"; fi
        cat pyproject.toml "$0") | sha256sum | cut -c1-16)  # contents only: every clone and path gives one key
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ] && [ -x "$DEST/venv/bin/python" ]; then
  # -I: not from the working directory (this clone's root), which would hide an install of a deleted clone
  if [ "$("$DEST/venv/bin/python" -I -c "import inverse_dvs, pathlib; print(pathlib.Path(inverse_dvs.__file__).parents[1])" \
        2>/dev/null)" != "$ROOT" ]; then  # another clone: install this one, nothing else changes
    env PIP_DISABLE_PIP_VERSION_CHECK=1 "$DEST/venv/bin/python" -m pip install -q --no-deps -e "$ROOT" >&2
  fi
  echo "$DEST/ComfyUI"
  exit 0
fi
rm -rf "$DEST"
mkdir -p "$DEST"
if [ -d "$SRC" ]; then
  cp -r "$SRC" "$DEST/ComfyUI"
else
  tar -xzf "$SRC" -C "$DEST"
  [ -d "$DEST/ComfyUI" ] || mv "$DEST"/*/ "$DEST/ComfyUI"
fi
PY=${PYTHON:-python3}
"$PY" -m venv "$DEST/venv" >&2
VPY=$DEST/venv/bin/python
PIP=(env PIP_DISABLE_PIP_VERSION_CHECK=1 "$VPY" -m pip install -q)
TORCH=$("$ROOT/.venv/bin/python" -c "import torch; print(torch.__version__.split('+')[0])" 2>/dev/null || echo 2.13.0)
{ "${PIP[@]}" "torch==$TORCH" 2>/dev/null || "${PIP[@]}" "torch==$TORCH" --index-url https://download.pytorch.org/whl/cpu; } >&2
echo "torch==$TORCH" > "$DEST/constraints.txt"
grep -vE '^(torch|torchvision|torchaudio)([<>=~ ]|$)' "$DEST/ComfyUI/requirements.txt" > "$DEST/requirements.txt"
"${PIP[@]}" -c "$DEST/constraints.txt" -r "$DEST/requirements.txt" requests torchvision >&2
"${PIP[@]}" -c "$DEST/constraints.txt" -e "$ROOT" >&2
if ! "$VPY" -c "import torchvision" 2>/dev/null; then  # CPU torch: see the header
  "$VPY" - <<'EOF'
import importlib.util, pathlib, re
path = pathlib.Path(importlib.util.find_spec("torchvision").submodule_search_locations[0]) / "_meta_registrations.py"
text = path.read_text()
text = re.sub(r'^@torch\.library\.register_fake\("torchvision::(\w+)"\)\n',
              r'@(torch.library.register_fake("torchvision::\1") if torchvision.extension._has_ops() else (lambda f: f))\n',
              text, flags=re.M)
path.write_text(text)
EOF
  "$VPY" -c "import torchvision"
fi
echo "$KEY" > "$STAMP"
echo "$DEST/ComfyUI"
