#!/usr/bin/env bash
# Issue 29, data diversification on the 2-core CPU: a tied student per direction trained on the
# Multi30k references plus both teacher ensembles' beam-5 translations that the tied distillation
# runs already made (runs/kd_tied_de_en and runs/kd_tied_en_de, see score_kd_tied.sh):
#   forward:  the training sources -> this direction's ensemble translation (distillation)
#   backward: the other direction's ensemble translation of the training targets -> the references
# so every training sentence appears with three (source, target) pairs, each corpus once per epoch.
#
#   bash bench/ablation/issue29/run_cpu_diversify.sh RUNS OUT de en   (then: en de)
#
# A second round (ROUND2 set): ROUND2/train.hyp.en and ROUND2/train.hyp.de hold the first-round
# students' ensemble translations of the training sources (runs/r2/distil.sh made them), and
# give two more corpora, forward2 and backward2, built the same way.
#
# Env: S2S_DATA_DIR (the folder holding multi30k/), STEPS (3000), THREADS (2), SEED (1), ROUND2.
set -euo pipefail
cd "$(dirname "$0")/../../.."
RUNS=${1:?folder holding kd_tied_de_en/ and kd_tied_en_de/}; OUT=${2:?run folder}
SRC=${3:?source language}; TGT=${4:?target language}
D=${S2S_DATA_DIR:-data}/multi30k
PY=.venv/bin/python; STEPS=${STEPS:-3000}; THREADS=${THREADS:-2}; SEED=${SEED:-1}
FORWARD=$RUNS/kd_tied_${SRC}_${TGT}/kd/train.hyp.$TGT
BACKWARD=$RUNS/kd_tied_${TGT}_${SRC}/kd/train.hyp.$SRC
corpora="[{name: multi30k, src: $D/train.$SRC, tgt: $D/train.$TGT},
 {name: forward, src: $D/train.$SRC, tgt: $FORWARD},
 {name: backward, src: $BACKWARD, tgt: $D/train.$TGT}"
if [ -n "${ROUND2:-}" ]; then
    corpora+=",
 {name: forward2, src: $D/train.$SRC, tgt: $ROUND2/train.hyp.$TGT},
 {name: backward2, src: $ROUND2/train.hyp.$SRC, tgt: $D/train.$TGT}"
fi
corpora+="]"
mkdir -p "$OUT"
echo "$(date -u +%H:%M:%S) training $OUT" >> "$OUT.timeline"
$PY -m scripts.train --config "configs/multi30k_${SRC}_${TGT}_distilled.yaml" --quiet --overwrite \
    --set "out_dir=$OUT" --set train.device=cpu --set "train.threads=$THREADS" \
    --set "train.max_steps=$STEPS" --set "train.seed=$SEED" --set "data.corpora=$corpora" \
    --set model.emb_dim=512 --set model.tie_embeddings=true --set train.amp=bf16 > "$OUT.log" 2>&1
$PY -m scripts.average_checkpoints --run-dir "$OUT" --last 3 --output "$OUT/averaged.pt" >> "$OUT.log" 2>&1
echo "$(date -u +%H:%M:%S) trained $OUT" >> "$OUT.timeline"
for m in averaged best; do
    $PY -m scripts.evaluate --model "$OUT/$m.pt" --src "$D/val.$SRC" --ref "$D/val.$TGT" --beam 5 \
        --device cpu --batch-tokens 6000 --json "$OUT/$m.val.json" > /dev/null 2>> "$OUT.log"
done
echo "$(date -u +%H:%M:%S) scored $OUT" >> "$OUT.timeline"
