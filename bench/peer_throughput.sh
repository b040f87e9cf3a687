#!/usr/bin/env bash
# Training throughput, project vs OpenNMT-py 3.5.1, interleaved on this machine (issue 14).
# Needs ../shared/peers installed and prepared (00_install.sh, 02_prep_m30k.sh).
#   [AMPS="none bf16"] [PAIRS=2] bash bench/peer_throughput.sh OUT_PREFIX
# OpenNMT-py runs the peers' matched config (60 steps, input_feed 0 or 1, 2 threads, fp32); the
# project runs bench/bench_train.py on the reference config (40 timed steps, input feeding
# off or on) once per train.amp in AMPS (default: none, i.e. fp32; bf16 needs a CPU with
# AVX512-BF16 or AMX). Order: onmt/no-feed, project/no-feed, onmt/feed, project/feed, PAIRS
# times (default 2).
# Figures: OUT_PREFIX.onmt.txt (summarize.py lines), OUT_PREFIX.project.jsonl, and a profile
# per amp (OUT_PREFIX.profile[-AMP].*).
set -euo pipefail
export S2S_DATA_DIR="${S2S_DATA_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}"
OUT="${1:?output prefix}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS="$ROOT/../shared/peers"
. "$PEERS/env.sh"
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
W="$WORK_DIR/m30k"; mkdir -p "$W/logs"
: > "$OUT.onmt.txt"

onmt() {  # $1 = input_feed
  (cd "$W" && "$JOEY_BIN/python" "$PEERS/yaml_set.py" "$PEERS/configs/m30k/onmt.yaml" \
      onmt_feed$1.yaml input_feed=$1 save_model=onmt_run/feed$1 \
   && /usr/bin/time -v "$ONMT_BIN/onmt_train" -config onmt_feed$1.yaml > logs/onmt_feed$1.log 2>&1)
  echo "input_feed=$1: $("$JOEY_BIN/python" "$PEERS/summarize.py" train - "$W/logs/onmt_feed$1.log")" \
      | tee -a "$OUT.onmt.txt"
}

AMPS=${AMPS:-none}
project() {  # $1 = input feeding (0/1); one run per train.amp in AMPS
  local feed=false amp; [ "$1" = 1 ] && feed=true
  for amp in $AMPS; do
    "$ROOT/.venv/bin/python" "$ROOT/bench/bench_train.py" --config "$ROOT/configs/multi30k_de_en.yaml" \
        --set train.threads=2 --set model.input_feeding=$feed --set train.amp=$amp --steps 40 \
        --label "project input_feeding=$feed amp=$amp" --out "$OUT.project.jsonl"
  done
}

for _ in $(seq "${PAIRS:-2}"); do onmt 0; project 0; onmt 1; project 1; done
# where the project's time goes (torch.profiler table next to the JSON records)
for amp in $AMPS; do
  suffix=""; [ "$amp" = none ] || suffix="-$amp"
  "$ROOT/.venv/bin/python" "$ROOT/bench/bench_train.py" --config "$ROOT/configs/multi30k_de_en.yaml" \
      --set train.threads=2 --set train.amp=$amp --steps 20 --profile \
      --label "project profile amp=$amp" --out "$OUT.profile$suffix.jsonl"
done
