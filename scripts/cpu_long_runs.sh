#!/usr/bin/env bash
# The long CPU runs, in the background on a 2-core machine, one core each, until a deadline HOURS from now:
#   1. the study: `python -m ibmdn.experiments.study run` on Tables I-V (whatever has no record yet; a run
#      that would not finish is paused at the deadline and resumed by the next call), then seeds 3 and 4 of
#      the networks whose not-resolvable comparisons five seeds per side would resolve (MORE_SEEDS below);
#   2. the shipped-weights runs: configs/weights/ibmdn_stable_x2_long.toml, then the x3 and x4 fine-tunes
#      from its final network (configs/weights/ibmdn_stable_x{3,4}_long.toml), one after the other.
# Every run checkpoints as it goes and resumes bitwise where it stopped, so the same call in a later session
# continues both. The call returns at once; the logs are runs/study/worker.log and runs/weights/*.log.
#
#   scripts/cpu_long_runs.sh HOURS          start both
#   scripts/cpu_long_runs.sh stop           stop both now: each run finishes its step, checkpoints, exits
#   DRY=1 scripts/cpu_long_runs.sh HOURS    print what would run
#
# Environment: PY (default .venv/bin/python), IBMDN_DATA / IBMDN_WEIGHTS / IBMDN_BACKBONES as for make;
# RUNS (default runs: the run folders) and RECORDS (default results/study: where study records go), so that
# a second checkout pinned at one commit can train while this one is edited.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-runs}
RECORDS=${RECORDS:-results/study}
STUDY=(-m ibmdn.experiments.study run --runs "$RUNS/study" --records "$RECORDS")
# Then seeds 3 and 4 of the networks of the not-resolvable comparisons that five seeds per side would resolve,
# as `study status --seeds 0,1,2,3,4 --resolvable 5` listed them from the claims of 2026-12-07 (51 records).
# The list is fixed: computed again from later claims it would become "more seeds until resolved".
MORE_SEEDS=(--seeds 0,1,2,3,4 --models bsrn,bsrn_icmd,imdn,imdn_ibmd_chfab,imdn_icmd,rfdn,rfdn_ibmd_cca,rfdn_ibmd_chfab,rfdn_ibmd_esa,rfdn_ibmd_hfab,rfdn_icmd_6b)
TRAIN=(-m ibmdn.cli train --model ibmdn_stable --profile short --threads 1 --no-progress)

if [ "${1:-}" = stop ]; then
  pkill -TERM -f "cpu_long_runs.sh (weights|study)"  # first, so that they start no further run
  pkill -TERM -f "ibmdn.experiments.study run"; pkill -TERM -f "ibmdn.cli train --model ibmdn_stable"
  exit 0
fi

finished() {  # whether run folder $1 ran its whole schedule (final.json without stopped_early)
  [ -f "$1/final.json" ] && "$PY" -c "import json, sys; sys.exit(json.load(open(sys.argv[1]))['stopped_early'])" "$1/final.json"
}

weights() {  # the x2 run, then x3 and x4 from its final network, each until the deadline (epoch seconds)
  local deadline=$1 scale out left extra
  for scale in 2 3 4; do
    out=$RUNS/weights/ibmdn_stable_x${scale}_long
    finished "$out" && continue
    left=$(( (deadline - $(date +%s)) / 60 ))
    [ "$left" -ge 2 ] || return 0
    extra=(); [ -f "$out/last.pth" ] && extra=(--resume)
    [ "$scale" = 2 ] || extra+=(--init "$RUNS/weights/ibmdn_stable_x2_long/final.pth")
    echo "== $(date -u +%FT%TZ) x$scale for at most $left min ${extra[*]}"
    ${DRY:+echo} "$PY" "${TRAIN[@]}" --scale "$scale" --config "configs/weights/ibmdn_stable_x${scale}_long.toml" \
      --out "$out" --time-limit "$left" "${extra[@]}" || return 1
    [ -n "${DRY:-}" ] || finished "$out" || return 0  # stopped by its time limit or a stop request: resumed next call
  done
}

study() {  # Tables I-V, then the extra seeds, until the deadline (epoch seconds); --hours 0 would mean no deadline
  local deadline=$1 hours
  left() { "$PY" -c "import sys, time; h = (int(sys.argv[1]) - time.time()) / 3600; print(f'{h:.3f}' if h > 0.03 else '')" "$deadline"; }
  hours=$(left); [ -n "$hours" ] || return 0
  ${DRY:+echo} "$PY" "${STUDY[@]}" --tables table1,table2,table3,table4,table5 --hours "$hours" || return 1
  hours=$(left); [ -n "$hours" ] || return 0
  ${DRY:+echo} "$PY" "${STUDY[@]}" --tables table1,table2,table3 "${MORE_SEEDS[@]}" --hours "$hours"
}

if [ "${1:-}" = weights ]; then weights "$2"; exit $?; fi
if [ "${1:-}" = study ]; then study "$2"; exit $?; fi

hours=${1:?usage: scripts/cpu_long_runs.sh HOURS | stop}
deadline=$("$PY" -c "import sys, time; print(int(time.time() + float(sys.argv[1]) * 3600))" "$hours") || exit 1
mkdir -p "$RUNS/study" "$RUNS/weights"
if [ -n "${DRY:-}" ]; then
  study "$deadline"
  weights "$deadline"
  exit 0
fi
OMP_NUM_THREADS=1 nohup bash "$0" study "$deadline" >> "$RUNS/study/worker.log" 2>&1 &
OMP_NUM_THREADS=1 nohup bash "$0" weights "$deadline" >> "$RUNS/weights/runs.log" 2>&1 &
echo "started until $(date -d "@$deadline" +%T): the study ($RUNS/study/worker.log), the weights ($RUNS/weights/runs.log)"
