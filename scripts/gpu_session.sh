#!/usr/bin/env bash
# Everything a lent GPU is for in this project, in one call (the device time is 15 minutes a task):
#   1. CUDA exactness tests (pytest -m gpu);
#   2. `ibmdn bench` on CUDA at docs/protocol.md's reference geometry (LR 320x180 -> 1280x720, x4, batch 1,
#      strict fp32) for ibmdn and its peers, plus the training step (batch 16, HR 192);
#   3. `ibmdn train --profile paper` of ibmdn x2 and x4, side by side on the one GPU, each stopped by
#      --time-limit (the paper's recipe, truncated: its first N iterations).
# Results land in $OUT (or ./gpu_out): log.txt, bench.tgz (results/bench-cuda.*, figures/bench-cuda.png),
# train.tgz (runs/gpu/ibmdn_x{2,4}_paper/{final.pth,final.json,log.csv,config.json}), pytest.txt.
# Unpack them with scripts/gpu_collect.sh.
#
# Data: the device machine sees only the checkout, so the data it needs travels in .gpu/ (ignored by
# git, named in the run's carry): .gpu/data/{train/T91,train/BSD200 (first 100),benchmark/Set5} and
# .gpu/backbones/vgg16_features.pth (layers up to relu2_2 of the prepared VGG16, with its sha256).
# Knobs: TRAIN_MIN (minutes per training run, default 4), BENCH_S / TEST_S (step time limits), MODELS,
# PATHS, SIZES, REPEATS, TRAIN_REPEATS, BENCH_ARGS (e.g. --profile: top CUDA kernels of every path, written
# to results/bench-cuda-profile.txt).
source "$(dirname "$0")/gpu_common.sh"
TRAIN_MIN=${TRAIN_MIN:-4}
BENCH_S=${BENCH_S:-210}
TEST_S=${TEST_S:-60}

stamp "environment (git sha ${IBMDN_GIT_SHA:-unknown})"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
$PY -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'numpy', numpy.__version__,
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device')"

if [ "$DEVICE" = cuda ]; then
  stamp "exactness on CUDA"
  timeout "$TEST_S" $PY -m pytest -q -m gpu tests/test_perf.py -p no:cacheprovider 2>&1 | tee "$OUT/pytest.txt"
  echo "pytest exit ${PIPESTATUS[0]}"
fi

stamp "bench"
timeout "$BENCH_S" $PY -m ibmdn.cli bench --device "$DEVICE" --threads 0 --models "${MODELS:-ibmdn,rfdn_aim,imdn,depthibn}" \
  --impl unfold,shift --paths "${PATHS:-eager,fused-compiled,fused-compiled-cl}" --sizes "${SIZES:-180x320}" --scale 4 \
  --warmup 10 --repeats "${REPEATS:-50}" --train-paths eager --train-repeats "${TRAIN_REPEATS:-20}" \
  --out results --figures figures ${BENCH_ARGS:-}
echo "bench exit $?"
tar czf "$OUT/bench.tgz" results/bench-"$DEVICE"* figures/bench-"$DEVICE".png 2>/dev/null || true

stamp "train ibmdn x2 and x4 (paper recipe, ${TRAIN_MIN} min each, side by side)"
rm -rf runs/gpu; mkdir -p runs/gpu
pids=()
for s in 2 4; do
  $PY -m ibmdn.cli train --model ibmdn --scale "$s" --profile paper --device "$DEVICE" --out "runs/gpu/ibmdn_x${s}_paper" \
    --val-every "${VAL_EVERY:-1000}" --workers 6 --time-limit "$TRAIN_MIN" --no-progress ${TRAIN_ARGS:-} \
    > "runs/gpu/train_x${s}.txt" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; echo "train exit $?"; done
tail -n 3 runs/gpu/train_x2.txt runs/gpu/train_x4.txt
for s in 2 4; do tail -n 2 "runs/gpu/ibmdn_x${s}_paper/log.csv" 2>/dev/null; done
tar czf "$OUT/train.tgz" runs/gpu/train_x2.txt runs/gpu/train_x4.txt \
  $(ls runs/gpu/*/final.pth runs/gpu/*/final.json runs/gpu/*/log.csv runs/gpu/*/config.json 2>/dev/null) || true
stamp "done"
ls -la "$OUT"
