#!/usr/bin/env bash
# The device check of a CUDA machine, one command, under 8 minutes on one GPU: `make test-gpu`,
# then benchmarks/gpu_check.py (input path vs ImageFolder + DataLoader at 227 px, train-step
# images/s of both networks, one real phase-1 epoch on FER-2013, the grid's projected time),
# printed as one table. Without CUDA the tests skip with their reasons and each measurement
# runs once at a token size on the CPU, its row marked "skipped: no CUDA"; exit code 0.
#   bash benchmarks/gpu_check.sh [--quick]   (from anywhere; uses the repository's .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    echo "benchmarks/gpu_check.sh: no .venv in $PWD; set it up first with \`make setup\`" >&2
    exit 1
fi
export PATH="$PWD/.venv/bin:$PATH"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
fi
start=$SECONDS
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# A failing test does not stop the measurements; it sets the exit code at the end.
tests_rc=0
make --no-print-directory test-gpu 2>&1 | tee "$log" || tests_rc=$?
tests=$(tail -n 1 "$log")
python benchmarks/gpu_check.py --tests "$(echo "${tests//=/}" | xargs)" "$@"
echo "device check: $((SECONDS - start)) s"
exit "$tests_rc"
