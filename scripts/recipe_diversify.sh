#!/usr/bin/env bash
# Issue 29's recipe with data diversification, both directions of Multi30k English<->German:
#
#   bash scripts/recipe_diversify.sh [OUT]        # OUT defaults to runs/diversify
#
# Round 1:
# 1. scripts/recipe_distill.sh de en, then en de, up to their distillation (STUDENTS=0): SEEDS
#    teachers per direction (tied 512-wide embeddings, bf16 by default) and each ensemble's beam-5
#    translation of its training sources (OUT/de_en/kd/train.hyp.en, OUT/en_de/kd/train.hyp.de).
# 2. Per direction students (one per seed) on three corpora, each once per epoch: the
#    references, the sources with this direction's translations (distillation), and the other
#    direction's translations of the training targets with the references as targets
#    (back-translation).
#    Each is averaged over its last 3 states; the average and best.pt are scored on val.
# Round R > 1 (ROUNDS): the ensemble of round R-1's students (every scored file) translates in
# place of teachers (OUT/de_en_rR/kd, OUT/en_de_rR/kd), and the new students train on the
# references and both translations of every round so far.
# The best student file on val of all rounds becomes OUT/models/de-en.pt and en-de.pt, the
# folder s2s-serve --models-dir loads. test2016 is never read here.
#
# Env: as scripts/recipe_distill.sh (S2S_DATA_DIR, DEVICE, SEEDS, THREADS, PARALLEL, PY, ...),
# with these defaults: EXTRA (tied embeddings and bf16, below), DE_EN_TEACHER_STEPS (1200),
# EN_DE_TEACHER_STEPS (1000), STUDENT_STEPS (3000), DE_EN_STUDENT_SEEDS ("1 2"),
# EN_DE_STUDENT_SEEDS ("1"), ROUNDS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/diversify}
D=${S2S_DATA_DIR:-data}/multi30k
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export EXTRA=${EXTRA:-"--set model.emb_dim=512 --set model.tie_embeddings=true --set train.amp=bf16"}
export STUDENT_STEPS=${STUDENT_STEPS:-3000}
ROUNDS=${ROUNDS:-2}

other() { [ "$1" = de ] && echo en || echo de; }
folder() { echo "$OUT/$1_$2$([ "$3" = 1 ] || echo "_r$3")"; }   # src tgt round
suffix() { [ "$1" = 1 ] || echo "$1"; }                         # round 1's corpora are unnumbered
students() {  # folder: the model files recipe_distill.sh scored there, space-separated
    local file
    for file in "$1"/student_*/{averaged,best}.pt; do if [ -f "$file" ]; then echo -n "$file "; fi; done
}

for round in $(seq 1 "$ROUNDS"); do
    declare -A teachers=()
    for src in de en; do
        tgt=$(other $src)
        [ "$round" = 1 ] || teachers[$src]=$(students "$(folder $src $tgt $((round - 1)))")
        steps=$([ $src = de ] && echo "${DE_EN_TEACHER_STEPS:-1200}" || echo "${EN_DE_TEACHER_STEPS:-1000}")
        STUDENTS=0 TEACHERS=${teachers[$src]:-} TEACHER_STEPS=$steps \
            bash scripts/recipe_distill.sh $src $tgt "$(folder $src $tgt $round)"
    done
    for src in de en; do
        tgt=$(other $src)
        corpora="[{name: multi30k, src: $D/train.$src, tgt: $D/train.$tgt}"
        for r in $(seq 1 "$round"); do
            forward=$(folder $src $tgt $r)/kd/train.hyp.$tgt
            backward=$(folder $tgt $src $r)/kd/train.hyp.$src
            corpora+=", {name: forward$(suffix $r), src: $D/train.$src, tgt: $forward}"
            corpora+=", {name: backward$(suffix $r), src: $backward, tgt: $D/train.$tgt}"
        done
        corpora+="]"
        seeds=$([ $src = de ] && echo "${DE_EN_STUDENT_SEEDS:-1 2}" || echo "${EN_DE_STUDENT_SEEDS:-1}")
        variants=""
        for seed in $seeds; do
            variants+="${variants:+;}diverse_s$seed:--set 'data.corpora=$corpora' --set train.seed=$seed"
        done
        TEACHERS=${teachers[$src]:-} VARIANTS=$variants \
            bash scripts/recipe_distill.sh "$src" "$tgt" "$(folder $src $tgt $round)"
    done
done

mkdir -p "$OUT/models"
$PY - "$OUT" <<'EOF'
import json, pathlib, shutil, sys
out = pathlib.Path(sys.argv[1])
for pair in ("de_en", "en_de"):   # every round's val.json (recipe_distill.sh) scores its students
    scored = {folder / name: student["bleu"] for folder in [out / pair, *out.glob(f"{pair}_r*")]
              for name, student in json.loads((folder / "val.json").read_text())["students"].items()}
    best = max(scored, key=scored.get)
    shutil.copy(best, out / "models" / f"{pair.replace('_', '-')}.pt")
    print(f"{pair}: {best.relative_to(out)} val BLEU {scored[best]:.2f}")
EOF
