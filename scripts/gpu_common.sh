# Sourced by the device scripts (gpu_session.sh, gpu_sweep.sh): repository root, python, output folder
# ($OUT on the device runner, else ./gpu_out) with a copy of the whole log, the roots of the data the call
# carries in .gpu/, and a timestamped section header.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PY:-python3}
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export IBMDN_DATA=${IBMDN_DATA:-$PWD/.gpu/data} IBMDN_BACKBONES=${IBMDN_BACKBONES:-$PWD/.gpu/backbones}
export IBMDN_CACHE=${IBMDN_CACHE:-/tmp/ibmdn_cache}
DEVICE=${DEVICE:-cuda}
exec > >(tee "$OUT/log.txt") 2>&1
t0=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - t0 )) s] $*"; }
