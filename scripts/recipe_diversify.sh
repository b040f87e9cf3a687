#!/usr/bin/env bash
# Issue 29's recipe with data diversification, both directions of Multi30k English<->German:
#
#   bash scripts/recipe_diversify.sh [OUT]        # OUT defaults to runs/diversify
#
# 1. scripts/recipe_distill.sh de en, then en de, up to their distillation (STUDENTS=0): SEEDS
#    teachers per direction (tied 512-wide embeddings, bf16 by default) and each ensemble's beam-5
#    translation of its training sources (OUT/de_en/kd/train.hyp.en, OUT/en_de/kd/train.hyp.de).
# 2. Per direction students (one per seed) on three corpora, each once per epoch: the
#    references, the sources with this direction's translations (distillation), and the other
#    direction's translations of the training targets with the references as targets
#    (back-translation).
#    Each is averaged over its last 3 states; the best on val of the averages and best.pt files
#    becomes OUT/SRC_TGT/model.pt, the model file s2s-serve loads. test2016 is never read here.
#
# Env: as scripts/recipe_distill.sh (S2S_DATA_DIR, DEVICE, SEEDS, THREADS, PARALLEL, PY, ...),
# with these defaults: EXTRA (tied embeddings and bf16, below), DE_EN_TEACHER_STEPS (1200),
# EN_DE_TEACHER_STEPS (1000), STUDENT_STEPS (3000), DE_EN_STUDENT_SEEDS ("1 2"),
# EN_DE_STUDENT_SEEDS ("1").
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/diversify}
D=${S2S_DATA_DIR:-data}/multi30k
export EXTRA=${EXTRA:-"--set model.emb_dim=512 --set model.tie_embeddings=true --set train.amp=bf16"}
export STUDENT_STEPS=${STUDENT_STEPS:-3000}

STUDENTS=0 TEACHER_STEPS=${DE_EN_TEACHER_STEPS:-1200} bash scripts/recipe_distill.sh de en "$OUT/de_en"
STUDENTS=0 TEACHER_STEPS=${EN_DE_TEACHER_STEPS:-1000} bash scripts/recipe_distill.sh en de "$OUT/en_de"

for src in de en; do
    tgt=$([ "$src" = de ] && echo en || echo de)
    corpora="[{name: multi30k, src: $D/train.$src, tgt: $D/train.$tgt}"
    corpora+=", {name: forward, src: $D/train.$src, tgt: $OUT/${src}_$tgt/kd/train.hyp.$tgt}"
    corpora+=", {name: backward, src: $OUT/${tgt}_$src/kd/train.hyp.$src, tgt: $D/train.$tgt}]"
    seeds=$([ "$src" = de ] && echo "${DE_EN_STUDENT_SEEDS:-1 2}" || echo "${EN_DE_STUDENT_SEEDS:-1}")
    variants=""
    for seed in $seeds; do
        variants+="${variants:+;}diverse_s$seed:--set 'data.corpora=$corpora' --set train.seed=$seed"
    done
    VARIANTS=$variants bash scripts/recipe_distill.sh "$src" "$tgt" "$OUT/${src}_$tgt"
done
