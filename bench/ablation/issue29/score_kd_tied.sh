#!/usr/bin/env bash
# Issue 29: scores and records of a distillation run with tied teachers and students, made by
#   EXTRA="--set model.emb_dim=512 --set model.tie_embeddings=true --set train.amp=bf16" \
#   SEEDS=3 TEACHER_STEPS=1200 STUDENT_STEPS=2600 THREADS=2 DEVICE=cpu \
#   bash scripts/recipe_distill.sh SRC TGT RUN
# (de->en as written; en->de with TEACHER_STEPS=1000 STUDENT_STEPS=2200)
#
#   bash bench/ablation/issue29/score_kd_tied.sh val  RUN SRC TGT RECORDS
#   bash bench/ablation/issue29/score_kd_tied.sh test RUN SRC TGT RECORDS SINGLE ENSEMBLE...
#
# val: beam 5 on val for every teacher (averaged), the teachers' ensemble, the student's best.pt
# (the recipe scored its average; a student builds its own SentencePiece models, so it cannot
# join the teachers' ensemble); copies the metrics, the scores, the timeline and the curves into
# RECORDS. test: test2016, read once, for the single model file and the ensemble chosen on val
# (model files relative to RUN); the translations are kept beside the scores.
set -euo pipefail
cd "$(dirname "$0")/../../.."
MODE=${1:?val or test}; RUN=${2:?recipe folder}; SRC=${3:?}; TGT=${4:?}; REC=${5:?records folder}
shift 5
D=${S2S_DATA_DIR:?the folder holding multi30k/}/multi30k
PY=${PY:-.venv/bin/python}
mkdir -p "$REC/val" "$REC/metrics" "$REC/test2016"
score() {  # split json [--output file] --model m ...
    local split=$1 json=$2; shift 2
    [ -f "$json" ] && return 0
    $PY -m scripts.evaluate "$@" --src "$D/$split.$SRC" --ref "$D/$split.$TGT" --beam 5 \
        --device cpu --batch-tokens 6000 --json "$json" > /dev/null
}
models() { for name in "$@"; do echo --model "$RUN/$name"; done; }

if [ "$MODE" = val ]; then
    teachers=()
    for dir in "$RUN"/teacher_s*; do
        name=$(basename "$dir"); teachers+=("$name/averaged.pt")
        score val "$REC/val/$name.val.json" --model "$dir/averaged.pt"
    done
    # shellcheck disable=SC2046
    score val "$REC/val/ensemble_teachers.val.json" $(models "${teachers[@]}")
    for dir in "$RUN"/student_*; do
        name=$(basename "$dir")
        cp "$dir/val.json" "$REC/val/$name.val.json"
        score val "$REC/val/$name.best.val.json" --model "$dir/best.pt"
    done
    for dir in "$RUN"/teacher_s* "$RUN"/student_*; do
        cp "$dir/metrics.jsonl" "$REC/metrics/$(basename "$dir").jsonl"
    done
    cp "$RUN/timeline.txt" "$REC/timeline.txt"
    # shellcheck disable=SC2046
    $PY -m scripts.curves $(ls -d "$RUN"/teacher_s* "$RUN"/student_*) -o "$REC/curves.png"
elif [ "$MODE" = test ]; then
    single=${1:?single model file}; shift
    score test2016 "$REC/test2016/single.json" --output "$REC/test2016/single.hyp" \
        --model "$RUN/$single"
    # shellcheck disable=SC2046
    score test2016 "$REC/test2016/ensemble.json" --output "$REC/test2016/ensemble.hyp" \
        $(models "$@")
else
    echo "mode must be val or test" >&2; exit 2
fi
