#!/usr/bin/env bash
# The study's second budget on a lent GPU (issue: the study): every network of Tables I-III (and the
# stable IBMDN), one seed, under the `study_gpu` profile (HR 128, batch 16, 3,000 iterations), WORKERS
# runs side by side on the one device, each evaluated with the project's protocol and recorded like the
# CPU study's runs but under results/study_gpu/ (never mixed with results/study/). Sized for a 15-minute
# device allowance: set HOURS to what is left after start-up (the workers stop cleanly at the deadline
# and a later call resumes them from runs/study_gpu).
# Output ($OUT or ./gpu_out): log.txt, study_gpu.tgz (the records and the workers' logs).
source "$(dirname "$0")/gpu_common.sh"
WORKERS=${WORKERS:-9}
HOURS=${HOURS:-0.15}
SEEDS=${SEEDS:-0}
stamp "environment (git sha ${IBMDN_GIT_SHA:-unknown})"
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"
mkdir -p runs/study_gpu results/study_gpu
cp -n results/study/bicubic.csv results/study/bicubic.meta.json results/study_gpu/ 2>/dev/null || true
stamp "study_gpu: $WORKERS workers, ${HOURS} h, seeds $SEEDS"
pids=()
for i in $(seq 1 "$WORKERS"); do
  $PY -m ibmdn.experiments.study run --profile study_gpu --device "$DEVICE" --seeds "$SEEDS" --hours "$HOURS" \
    --runs runs/study_gpu --records results/study_gpu > "runs/study_gpu/worker$i.log" 2>&1 &
  pids+=($!)
  sleep 2  # staggered claims
done
for p in "${pids[@]}"; do wait "$p"; done
grep -h "recorded\|paused" runs/study_gpu/worker*.log
$PY -m ibmdn.experiments.study status --profile study_gpu --seeds "$SEEDS" --runs runs/study_gpu --records results/study_gpu
tar czf "$OUT/study_gpu.tgz" results/study_gpu runs/study_gpu/*.log
stamp "done"
