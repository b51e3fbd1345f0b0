#!/usr/bin/env bash
# The full pruning table of docs/pruning.md: levels 0/50/60/70/80/90 % x {feature-map clustering, L1}, every
# model fine-tuned with the same budget on Penn-Fudan train, scored on Penn-Fudan val, timed side by side on
# onnxruntime CPU. Too long for CI (tests/test_prune_cli.py runs a tiny version).
#
#   scripts/prune_sweep_full.sh [EPOCHS] [WORK_DIR]
#
# Models and ONNX files go to WORK_DIR (default /tmp/prune-sweep); the table, JSON and plots are copied to
# docs/pruning/. EPOCHS is the fine-tune budget per model (default 5). THREADS (default 1) sets torch's CPU
# threads: on a machine shared with other jobs, 2 threads per process thrash (10x slower forward passes).
# LEVELS (default 0,0.5,0.6,0.7,0.8,0.9) picks the pruning levels. DOCS_DIR (default docs/pruning) gets the copies.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS="${1:-5}"
WORK="${2:-/tmp/prune-sweep}"
SHARED="${SDK_SHARED:-../shared}"
DOCS="${DOCS_DIR:-docs/pruning}"
mkdir -p "$WORK" "$DOCS"
python -m sdk prune-sweep \
  --weights "$SHARED/models/yolov7-tiny-pennfudan.pt" --data "$SHARED/data/pennfudan" \
  --levels "${LEVELS:-0,0.5,0.6,0.7,0.8,0.9}" --criteria fmc,l1 \
  --epochs "$EPOCHS" --batch-size 8 --imgsz 416 --warmup-epochs 1 --hyp mosaic=0 \
  --stats-images 64 --bench-runs 30 --threads "${THREADS:-1}" --out-dir "$WORK" | tee "$WORK/prune_sweep.log"
cp "$WORK"/prune_sweep.md "$WORK"/prune_sweep.json "$WORK"/map_vs_params.png "$WORK"/map_vs_latency.png "$DOCS"/
