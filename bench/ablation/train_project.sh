#!/usr/bin/env bash
# train_project.sh NAME STEPS [KEY=VALUE ...]: one project run of the Multi30k de-en ablation
# (configs/multi30k_de_en.yaml plus the overrides), 1 thread, validation (greedy BLEU) every
# 200 steps, every 200-step state kept. Run folder: $ABL_DIR/NAME (default /tmp/abl).
set -euo pipefail
name=$1; steps=$2; shift 2
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"; ABL_DIR=${ABL_DIR:-/tmp/abl}; mkdir -p "$ABL_DIR"
sets=(); for kv in "$@"; do sets+=(--set "$kv"); done
cd "$ROOT"
exec "${PYTHON:-python}" -m scripts.train --config configs/multi30k_de_en.yaml \
  --set out_dir="$ABL_DIR/$name" --set train.threads=1 --set train.max_steps="$steps" \
  --set train.valid_every=200 --set train.early_stopping_patience=0 --set train.keep_last=20 \
  "${sets[@]}" --quiet > "$ABL_DIR/$name.log" 2>&1
