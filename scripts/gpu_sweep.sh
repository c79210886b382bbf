#!/usr/bin/env bash
# Second device call of 2026-11-26 (see scripts/gpu_session.sh for the first): the `short` profile at x2,
# run side by side on the GPU for several models and recipe variants (the diagnosis of issue 4's
# acceptance 3, which needs ~15 min per run on the 2-core CPU), then `ibmdn bench` again (the
# training step too; compiled paths' peak memory now measured over the whole path).
# Output ($OUT or ./gpu_out): log.txt, sweep.tgz (runs/sweep/*/{final.json,log.csv,config.json}), bench.tgz.
source "$(dirname "$0")/gpu_common.sh"
SWEEP_MIN=${SWEEP_MIN:-2.5}
stamp "environment (git sha ${IBMDN_GIT_SHA:-unknown})"
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"

stamp "short-profile sweep, x2, side by side (${SWEEP_MIN} min cap each)"
rm -rf runs/sweep; mkdir -p runs/sweep
# name model [config]
RUNS=${RUNS:-"imdn:imdn: rfdn_aim:rfdn_aim: depthibn:depthibn: ibmdn:ibmdn: ibmdn_clip1:ibmdn:clip1 ibmdn_lr5e-4:ibmdn:lr5e-4 ibmdn_lr2e-3_clip1:ibmdn:lr2e-3_clip1 ibmdn_bsreg:ibmdn:bsreg"}
pids=()
for r in $RUNS; do
  IFS=: read -r name model conf <<< "$r"
  args=()
  [ -n "$conf" ] && args=(--config "configs/short_sweep/$conf.toml")
  $PY -m ibmdn.cli train --model "$model" --scale 2 --profile short --device "$DEVICE" --out "runs/sweep/$name" \
    --workers 1 --time-limit "$SWEEP_MIN" --no-progress "${args[@]}" ${SWEEP_ARGS:-} > "runs/sweep/$name.txt" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for r in $RUNS; do IFS=: read -r name model conf <<< "$r"; echo "$name: $(tail -n 1 runs/sweep/$name.txt)"; done
tar czf "$OUT/sweep.tgz" runs/sweep/*.txt $(ls runs/sweep/*/final.json runs/sweep/*/log.csv runs/sweep/*/config.json runs/sweep/*/final.pth 2>/dev/null) || true

stamp "bench"
timeout "${BENCH_S:-150}" $PY -m ibmdn.cli bench --device "$DEVICE" --threads 0 --models "${MODELS:-ibmdn,rfdn_aim,imdn,depthibn}" \
  --impl unfold,shift --paths "${PATHS:-eager,fused-compiled,fused-compiled-cl}" --sizes "${SIZES:-180x320}" --scale 4 \
  --warmup 10 --repeats "${REPEATS:-50}" --train-paths eager --train-repeats "${TRAIN_REPEATS:-20}" --out results --figures figures
echo "bench exit $?"
tar czf "$OUT/bench.tgz" results/bench-"$DEVICE"* figures/bench-"$DEVICE".png 2>/dev/null || true
stamp "done"
