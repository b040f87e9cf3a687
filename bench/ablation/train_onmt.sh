#!/usr/bin/env bash
# train_onmt.sh [STEPS]: OpenNMT-py 3.5.1 on the same task and shape (../shared/peers, input_feed 0),
# STEPS updates (default 1,000) on THREADS threads (default 1), a checkpoint every 200 (the last 20 kept).
# Needs 00_install.sh and 02_prep_m30k.sh.
set -euo pipefail
steps=${1:-1000}; threads=${THREADS:-1}
PEERS=${PEERS:-/work/shared/peers}; . "$PEERS/env.sh"
cd "$WORK_DIR/m30k"; mkdir -p logs
"$ONMT_BIN/python" "$PEERS/yaml_set.py" "$PEERS/configs/m30k/onmt.yaml" onmt_abl.yaml input_feed=0 \
  train_steps=$steps save_checkpoint_steps=200 keep_checkpoint=20 save_model=onmt_run/abl report_every=50
OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads "$ONMT_BIN/onmt_train" -config onmt_abl.yaml > logs/onmt_abl.log 2>&1
