#!/usr/bin/env bash
# Run the whole pipeline for one config: depth → warp → invert → infer, each stage once over every
# (trajectory, video) item so each model is loaded once per stage process (one process per GPU through
# `accelerate launch` when run.gpus lists several). Finished items are skipped, so an interrupted or failed run
# resumes where it stopped. Usage: bash run_all.sh [CONFIG] [extra stage options, e.g. --force]
set -uo pipefail
cd "$(dirname "$0")"
CONFIG=${1:-config.yml}
shift $(( $# > 0 ? 1 : 0 ))
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python

declare -a NAMES SECS
for stage in depth warp invert infer; do
  start=$EPOCHREALTIME
  "$PY" -m inverse_dvs.launch "$stage" --config "$CONFIG" "$@"
  rc=$?
  NAMES+=("$stage"); SECS+=("$start-$EPOCHREALTIME")
  if [ $rc -ne 0 ]; then
    echo "run_all.sh: stage '$stage' failed with exit code $rc (config $CONFIG). Fix the error above and rerun;" \
         "finished items are kept and skipped." >&2
    exit $rc
  fi
done
"$PY" -m inverse_dvs.summary --config "$CONFIG" --stages "$(IFS=,; echo "${NAMES[*]}")" \
  --spans "$(IFS=,; echo "${SECS[*]}")"
