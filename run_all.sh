#!/usr/bin/env bash
# Run the whole pipeline for one config: preflight, then depth → warp → caption → invert → infer, each stage once
# over every (trajectory, video) item so each model is loaded once per stage process (one process per GPU through
# `accelerate launch` when run.gpus lists several). A failing item never stops the others: every healthy item goes
# through all the stages, and the run ends with a summary naming each failed item and its stage. Finished items are
# skipped, so an interrupted run resumes. Exit codes (README → Exit codes; inverse_dvs/infra/errors.py): 0 done,
# 1 some items failed, 2 bad input or preflight, 130 interrupted.
usage() {
  cat <<'EOF'
Usage: bash run_all.sh [CONFIG] [options]

  CONFIG                 config file (default: config.yml); a relative path is looked up from the current folder,
                         then the project folder
  --set SECTION.KEY=V    override a config value (YAML syntax, repeatable), e.g. --set inference.steps=[25,50]
  --force                recompute items even when they are up to date
  --quiet                warnings and errors only; no progress bars
  --only-video A[,B]     process only these videos
  --only-trajectory X    process only these trajectories
  --shard I/N | slurm    only this task's slice of the videos (position mod N = I), for N tasks on one work folder,
                         e.g. a Slurm array job (`slurm` reads SLURM_ARRAY_TASK_ID; README → Clusters)
  --ray[=ADDRESS]        run on a Ray cluster (python -m inverse_dvs.cluster): ADDRESS, else cluster.address, else
                         RAY_ADDRESS, else one `ray start` began here, else a local one; needs `setup_env.sh --cluster`
  --evaluate             then evaluate the outputs (python -m inverse_dvs.evaluate → {work_dir}/eval/report.md)
  -h, --help             this text

Examples: bash run_all.sh; bash run_all.sh configs/tiny.yml; bash run_all.sh --force --set run.seed=7
EOF
}
set -uo pipefail
CALLER=$PWD
cd "$(dirname "$0")" || exit 2
ROOT=$PWD

CONFIG=""
ARGS=()
RAY=()
EVALUATE=0
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --set|--only-video|--only-trajectory|--shard)
      if [ $# -lt 2 ]; then echo "run_all.sh: $1 needs a value (see --help)" >&2; exit 2; fi
      ARGS+=("$1" "$2"); shift 2 ;;
    --set=*|--only-video=*|--only-trajectory=*|--shard=*) ARGS+=("${1%%=*}" "${1#*=}"); shift ;;
    --ray) RAY=(--ray); shift ;;
    --ray=*) RAY=(--ray --address "${1#*=}"); shift ;;
    --force|--quiet) ARGS+=("$1"); shift ;;
    --evaluate) EVALUATE=1; shift ;;
    --config) CONFIG=${2:-}; shift 2 ;;
    -*) echo "run_all.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *)
      if [ -n "$CONFIG" ]; then echo "run_all.sh: more than one config given ('$CONFIG', '$1'); see --help" >&2; exit 2; fi
      CONFIG=$1; shift ;;
  esac
done
CONFIG=${CONFIG:-config.yml}
case "$CONFIG" in
  /*) ;;
  *) if [ -f "$CALLER/$CONFIG" ]; then CONFIG="$CALLER/$CONFIG"; fi ;;  # else: relative to the project folder
esac

# Ctrl-C reaches the stage too (one process group), which keeps its finished items and exits 130; so does this script,
# after the stage has ended, whenever the signal came
trap 'echo "run_all.sh: interrupted; finished items are kept, rerun to resume." >&2; exit 130' INT

PY=python3
[ -x "$ROOT/.venv/bin/python" ] && PY="$ROOT/.venv/bin/python"
export INVERSE_DVS_RUN_ID="${INVERSE_DVS_RUN_ID:-$(date +%s)-$$}"

if [ ${#RAY[@]} -gt 0 ]; then  # the Ray backend: its own preflight, scheduling and summary (same records)
  EV=(); [ $EVALUATE -eq 1 ] && EV=(--evaluate)
  "$PY" -m inverse_dvs.cluster --config "$CONFIG" "${RAY[@]:1}" "${ARGS[@]}" "${EV[@]}"
  exit $?
fi

"$PY" -m inverse_dvs.preflight --config "$CONFIG" "${ARGS[@]}" || exit $?

declare -a NAMES SECS
worst=0
# the steps after preflight, from the one stage list (inverse_dvs/stages.py): invert and infer run in one process
# (`inverse_dvs.chain`), sharing one loaded (and compiled) model
mapfile -t STEPS < <("$PY" -m inverse_dvs.stages $([ $EVALUATE -eq 1 ] && echo --evaluate))
[ ${#STEPS[@]} -gt 0 ] || { echo "run_all.sh: could not read the stage list (python -m inverse_dvs.stages)" >&2; exit 1; }
n=0
for step in "${STEPS[@]}"; do
  read -r -a cmd <<< "$step"
  n=$((n + 1))
  export INVERSE_DVS_STEP="$n/${#STEPS[@]}"  # each item's progress line: [step n/N stage] item i of I, time, ETA
  start=$EPOCHREALTIME
  "$PY" -m inverse_dvs.launch "${cmd[@]}" --config "$CONFIG" "${ARGS[@]}"
  rc=$?
  NAMES+=("${step#chain }"); SECS+=("$start-$EPOCHREALTIME")
  [ $rc -eq 130 ] && exit 130  # interrupted: finished items are kept
  if [ $rc -ne 0 ]; then
    # items failed: go on with the healthy ones, unless a stage of this step could not run or finish at all (no
    # record of this run): name the first such stage (`chain invert infer` runs two)
    stopped=""
    for stage in "${cmd[@]}"; do
      [ "$stage" = chain ] && continue
      if ! "$PY" -m inverse_dvs.summary --config "$CONFIG" "${ARGS[@]}" --ran "$stage" >/dev/null 2>&1; then
        stopped=$stage; break
      fi
    done
    if [ -n "$stopped" ]; then
      if [ $rc -gt 128 ]; then
        echo "run_all.sh: stage '$stopped' was killed (signal $((rc - 128))) before it finished. Nothing is wrong" \
             "with the input: rerun to resume; finished items are kept and skipped (if the system killed it for" \
             "lack of memory, see README → Speed and memory)." >&2
      else
        echo "run_all.sh: stage '$stopped' could not run (exit code $rc; see above). Fix it and rerun; finished" \
             "items are kept and skipped." >&2
      fi
      exit $rc
    fi
    if [ $rc -eq 2 ] && [ $worst -ne 1 ]; then worst=2; else worst=1; fi
  fi
done
"$PY" -m inverse_dvs.summary --config "$CONFIG" "${ARGS[@]}" --stages "$(IFS=,; echo "${NAMES[*]}")" \
  --spans "$(IFS=,; echo "${SECS[*]}")"
exit $worst
