#!/usr/bin/env bash
# All three benchmarks on a CUDA device in a few minutes: input-path ratios (AlexNet at its real
# 227 px), train-step images/s of both networks with bf16 + channels_last, peak GPU memory,
# and the estimated wall time of the paper's grid.
#   bash benchmarks/gpu_run.sh            (from the repository root, venv active)
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python benchmarks/bench_input_path.py --device cuda --train-size 227 --train-faces 4096 \
    --train-batch 128 --rounds 3 --input-faces 4096 --input-batch 256 --seconds 5 --workers 0 8
python benchmarks/bench_train_step.py --device cuda --batch 128 --steps 30
