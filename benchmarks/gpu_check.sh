#!/usr/bin/env bash
# The GPU check (see benchmarks/gpu_check.py): one table of dnalm's GPU figures against the usual routes.
#   bash benchmarks/gpu_check.sh                        # CUDA, published sizes (about 5 minutes on one H100)
#   bash benchmarks/gpu_check.sh --device cpu --tiny    # the same path at toy sizes, on a CPU
# Machines without network: `make gpu-wheels` here puts the Python packages a stock CUDA image lacks into
# .whl/; carried there, they are installed into /tmp/site before the run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 WANDB_MODE=disabled PYTHONUNBUFFERED=1
exec "$PYTHON" -m benchmarks.gpu_check "$@"
