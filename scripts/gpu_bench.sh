#!/usr/bin/env bash
# GPU side of issue 5, in one go on a lent NVIDIA H100 / H200 (one GPU). Nothing here runs on CPU-only machines.
#
#   bash scripts/gpu_bench.sh            # results/bench-cuda.csv (+ .meta.json), figures/bench-cuda.png
#   QUICK=1 bash scripts/gpu_bench.sh    # fewer models/paths (about 3 minutes)
#
# Steps: (1) environment facts; (2) exactness on CUDA (pytest -m gpu: shift vs unfold forward + gradients,
# eager and compiled, i.e. the Triton kernel inductor generates; fused vs eager network); (3) `ibmdn bench`
# at the reference geometry of docs/protocol.md (LR 320x180 -> 1280x720, x4, batch 1, strict fp32, TF32 off,
# cudnn.benchmark on, CUDA-event medians of 50 runs, peak = max_memory_allocated minus what was allocated
# before the pass) plus LR 128x128, and the train step (batch 16, HR 192). Compiled paths use
# mode="reduce-overhead" (CUDA graphs), the compiled peers docs/protocol.md names.
# If $OUT is set (device runner), copies of the results land there too. Exit status: the first failure.
# Needs a CUDA build of torch (with triton) and the package importable: PY=/path/to/python, default
# .venv/bin/python when present (a CPU-only venv will stop at the environment check), else python.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

echo "== environment"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
$PY - <<'PY'
import torch
assert torch.cuda.is_available(), f"no CUDA device visible to torch {torch.__version__}"
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0))
try:
    import triton
    print("triton", triton.__version__)
except ImportError:
    print("triton: not installed (compiled CUDA paths will fail)")
PY

echo "== exactness on CUDA"
$PY -m pytest -q -m gpu tests/test_perf.py -p no:cacheprovider

MODELS=${MODELS:-ibmdn,rfdn_aim,imdn,depthibn,bsrn}
PATHS=${PATHS:-eager,compiled,fused,fused-compiled,fused-compiled-cl}
SIZES=${SIZES:-180x320,128}
TRAIN_PATHS=${TRAIN_PATHS:-eager,compiled}
if [ "${QUICK:-0}" = 1 ]; then
  MODELS=ibmdn,rfdn_aim; PATHS=eager,fused-compiled; SIZES=180x320; TRAIN_PATHS=eager
fi

echo "== bench: models $MODELS, paths $PATHS, sizes $SIZES"
$PY -m ibmdn.cli bench --device cuda --threads 0 --models "$MODELS" --paths "$PATHS" --impl unfold,shift \
  --sizes "$SIZES" --scale 4 --warmup 10 --repeats 50 --train-paths "$TRAIN_PATHS" --train-repeats 20 \
  --out results --figures figures

if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT/results" "$OUT/figures"
  cp results/bench-cuda.csv results/bench-cuda.meta.json "$OUT/results/"
  cp figures/bench-cuda.png "$OUT/figures/" 2>/dev/null || true
fi
echo "== done: results/bench-cuda.csv, figures/bench-cuda.png"
