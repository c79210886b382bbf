#!/usr/bin/env bash
# The shipped-weights recipes (issue: IBMDN weights worth using) on a lent GPU: the x2 run of
# configs/weights/ibmdn_stable_x2_long.toml, then the x3 and x4 fine-tunes from its final network
# (configs/weights/ibmdn_stable_x{3,4}_long.toml): the same recipes as the CPU runs, so a run stopped here
# by its time limit continues anywhere with --resume (bitwise only on the same device and threads).
# Each run is capped by --time-limit (X2_MIN, X34_MIN minutes); a run cut short keeps last.pth and its
# schedule is not finished: the log says which.
# Data: the device machine sees only the checkout, so the training and validation sets travel in .gpu/
# (ignored by git, named in the call's carry):
#   mkdir -p .gpu/data/train .gpu/data/benchmark
#   cp -r "$IBMDN_DATA"/train/T91 "$IBMDN_DATA"/train/BSD200 .gpu/data/train/
#   cp -r "$IBMDN_DATA"/benchmark/Set5 .gpu/data/benchmark/
# A run folder of an earlier call (runs/weights/, also carried) is resumed.
# Output ($OUT or ./gpu_out): log.txt, weights.tgz (each run's final.pth / last.pth, final.json, log.csv,
# config.json).
source "$(dirname "$0")/gpu_common.sh"
X2_MIN=${X2_MIN:-8}
X34_MIN=${X34_MIN:-2}
stamp "environment (git sha ${IBMDN_GIT_SHA:-unknown})"
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"
train() {  # scale, minutes
  local out="runs/weights/ibmdn_stable_x$1_long" resume=()
  [ -f "$out/last.pth" ] && resume=(--resume)
  stamp "ibmdn_stable x$1 (${2} min at most) ${resume[*]}"
  $PY -m ibmdn.cli train --model ibmdn_stable --scale "$1" --profile short --device "$DEVICE" \
    --config "configs/weights/ibmdn_stable_x$1_long.toml" --out "$out" --time-limit "$2" --no-progress "${resume[@]}"
  echo "train x$1 exit $?"
  tail -n 2 "$out/log.csv"
}
train 2 "$X2_MIN"
done_x2=$($PY -c "import json; print(not json.load(open('runs/weights/ibmdn_stable_x2_long/final.json'))['stopped_early'])" 2>/dev/null)
if [ "$done_x2" = True ]; then
  pids=()
  for s in 3 4; do train "$s" "$X34_MIN" > "$OUT/train_x$s.txt" 2>&1 & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
  cat "$OUT"/train_x3.txt "$OUT"/train_x4.txt
else
  echo "x2 did not finish its schedule (stopped early): x3 and x4 wait for its final network"
fi
tar czf "$OUT/weights.tgz" $(ls runs/weights/*/final.pth runs/weights/*/last.pth runs/weights/*/final.json \
  runs/weights/*/log.csv runs/weights/*/config.json 2>/dev/null)
stamp "done"
