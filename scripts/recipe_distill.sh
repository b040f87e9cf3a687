#!/usr/bin/env bash
# Issue 29's recipe: sequence-level knowledge distillation on Multi30k, one direction.
#
#   bash scripts/recipe_distill.sh de en [OUT]        # OUT defaults to runs/distill_de_en
#   bash scripts/recipe_distill.sh en de [OUT]
#
# 1. SEEDS teachers: the reference recipe (configs/multi30k_de_en.yaml, languages swapped for
#    en->de), seeds 1..SEEDS, each averaged over its last 3 training states.
# 2. The teachers' ensemble translates the training sources with beam 5 (OUT/kd/train.hyp.TGT).
# 3. Students (configs/multi30k_SRC_TGT_distilled.yaml), one per VARIANTS entry, each averaged
#    over its last 3 states; its average and its best.pt are scored on val (beam 5; their
#    averaged.val.json and best.val.json), and the best of all on val becomes OUT/model.pt,
#    the model file s2s-serve loads (OUT/val.json holds every score).
# test2016 is never read here: score the chosen OUT/model.pt once with s2s-evaluate.
#
# Env: S2S_DATA_DIR (the folder holding multi30k/, default data), DEVICE (auto), SEEDS (3),
# TEACHER_STEPS (2000), STUDENT_STEPS (3000), TEACHER_MINUTES, STUDENT_MINUTES (a wall-clock
# limit per run, 0 = none), THREADS (0 = torch's default), PARALLEL (1: runs of a stage side by side, for a GPU;
# 0: one after another, for 2 CPU cores), PY (.venv/bin/python if present, else python3),
# VARIANTS ("name:--set k=v ...;name2:..."; default "only:" + KD_ONLY: the student on the
# teachers' translations alone), EXTRA ("--set k=v ..." given to every run), STUDENTS (1; 0: stop
# after step 2, as scripts/recipe_diversify.sh does before it trains its students), TEACHERS
# ("a.pt b.pt ...": existing model files whose ensemble translates in step 2; no teachers trained).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:?source language (de or en)}; TGT=${2:?target language (en or de)}
OUT=${3:-runs/distill_${SRC}_${TGT}}
D=${S2S_DATA_DIR:-data}/multi30k
export S2S_DATA_DIR=${S2S_DATA_DIR:-data}
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
DEVICE=${DEVICE:-auto}; SEEDS=${SEEDS:-3}; PARALLEL=${PARALLEL:-0}
TEACHER_STEPS=${TEACHER_STEPS:-2000}; STUDENT_STEPS=${STUDENT_STEPS:-3000}
TEACHER_MINUTES=${TEACHER_MINUTES:-0}; STUDENT_MINUTES=${STUDENT_MINUTES:-0}; THREADS=${THREADS:-0}
KD_ONLY="--set 'data.corpora=[{name: distilled, src: $D/train.$SRC, tgt: $OUT/kd/train.hyp.$TGT}]'"
VARIANTS=${VARIANTS:-"only:$KD_ONLY"}
eval "extra=(${EXTRA:-})"
mkdir -p "$OUT/logs"
log() { echo "$(date -u +%H:%M:%S) $*" | tee -a "$OUT/timeline.txt"; }
stage() { if [ "$PARALLEL" = 1 ]; then "$@" & else "$@"; fi; }

train() {  # folder config steps minutes [--set ...]: train, then average the last 3 states
    local name=$1 config=$2 steps=$3 minutes=$4; shift 4
    [ -f "$OUT/$name/averaged.pt" ] && return 0
    $PY -m scripts.train --config "$config" --quiet --overwrite --set "out_dir=$OUT/$name" \
        --set "train.device=$DEVICE" --set "train.max_steps=$steps" \
        --set "train.max_minutes=$minutes" --set "train.threads=$THREADS" "${extra[@]}" "$@" \
        > "$OUT/logs/$name.log" 2>&1
    for last in 3 2 1; do   # fewer states when the wall-clock limit stopped the run early
        $PY -m scripts.average_checkpoints --run-dir "$OUT/$name" --last $last \
            --output "$OUT/$name/averaged.pt" >> "$OUT/logs/$name.log" 2>&1 && break
    done
    log "trained $name"
}

teachers=()
if [ -n "${TEACHERS:-}" ]; then
    for file in $TEACHERS; do teachers+=(--model "$file"); done
else
    log "teachers ($SEEDS, $SRC->$TGT, $DEVICE)"
    for seed in $(seq 1 "$SEEDS"); do
        stage train teacher_s$seed configs/multi30k_de_en.yaml "$TEACHER_STEPS" "$TEACHER_MINUTES" \
            --set data.src_lang=$SRC --set data.tgt_lang=$TGT --set train.seed=$seed
        teachers+=(--model "$OUT/teacher_s$seed/averaged.pt")
    done
    wait
fi

mkdir -p "$OUT/kd"
if [ ! -s "$OUT/kd/train.hyp.$TGT" ]; then
    log "distilling $D/train.$SRC"
    $PY -m scripts.translate "${teachers[@]}" --src "$D/train.$SRC" --beam 5 --device "$DEVICE" \
        --batch-tokens "${DISTIL_BATCH_TOKENS:-12000}" --no-progress --output "$OUT/kd/train.hyp.$TGT.part" \
        2> "$OUT/logs/distil.log"
    mv "$OUT/kd/train.hyp.$TGT.part" "$OUT/kd/train.hyp.$TGT"
fi
log "distilled $(wc -l < "$OUT/kd/train.hyp.$TGT") lines"
[ "${STUDENTS:-1}" = 0 ] && exit 0

student() {  # name, then --set ...: train a student, score its average and best.pt on val
    local name=$1 state; shift
    S2S_KD_DIR=$OUT/kd train "student_$name" "configs/multi30k_${SRC}_${TGT}_distilled.yaml" \
        "$STUDENT_STEPS" "$STUDENT_MINUTES" "$@"
    for state in averaged best; do
        [ -f "$OUT/student_$name/$state.pt" ] || continue   # no validation ran: no best.pt
        $PY -m scripts.evaluate --model "$OUT/student_$name/$state.pt" --src "$D/val.$SRC" \
            --ref "$D/val.$TGT" --beam 5 --device "$DEVICE" --batch-tokens 6000 \
            --json "$OUT/student_$name/$state.val.json" > /dev/null 2>> "$OUT/logs/student_$name.log"
    done
}
IFS=';' read -ra specs <<< "$VARIANTS"
for spec in "${specs[@]}"; do
    name=${spec%%:*}; sets=${spec#*:}
    eval "args=($sets)"   # the --set arguments of this variant, quoted as written
    stage student "$name" "${args[@]}"
done
wait

$PY - "$OUT" <<'EOF'
import json, pathlib, shutil, sys
out = pathlib.Path(sys.argv[1])
scores = {f"{p.parent.name}/{p.name.removesuffix('.val.json')}.pt": json.loads(p.read_text())
          for p in out.glob("student_*/*.val.json")}   # each scored model file, by its scores
if not scores:
    sys.exit("no student was scored: see the logs under " + str(out / "logs"))
best = max(scores, key=lambda name: scores[name]["bleu"])
shutil.copy(out / best, out / "model.pt")
(out / "val.json").write_text(json.dumps({"chosen": best, "students": scores}, indent=2) + "\n")
print(f"{best}: val BLEU {scores[best]['bleu']:.2f} -> {out / 'model.pt'}")
EOF
log "done"
