#!/usr/bin/env bash
# Issue 29, second GPU call: the distillation recipe (scripts/recipe_distill.sh) for de->en and
# en->de with its teachers side by side, student variants (KD alone, KD + references, EMA,
# R-Drop, another seed), and the levers EMA, R-Drop and subword regularization on the
# reference recipe itself, all on one GPU. Every score on val (beam 5); test2016 goes to
# RES/sealed and is read only for the systems chosen on val.
# Run by bench/ablation/gpu_session.sh (which sets S2S_DATA_DIR, W, RES); env: T1 (teacher
# and lever minutes), T2 (student minutes).
set -u
cd "$(dirname "$0")/../../.."
PY=${PY:-python3}; DEV=${DEVICE:-cuda}; T1=${T1:-3.2}; T2=${T2:-2.8}
D=$S2S_DATA_DIR/multi30k
mkdir -p $RES/val $RES/sealed $RES/metrics $RES/logs
stamp() { echo "$(( $(date +%s) - T0 ))s $*" | tee -a $RES/timeline.txt; }

score() {  # label src tgt sealed(0/1) model...: val beam 5, and test2016 into sealed/ if asked
    local label=$1 s=$2 t=$3 sealed=$4; shift 4
    local models=(); for m in "$@"; do models+=(--model $m); done
    $PY -m scripts.evaluate "${models[@]}" --src $D/val.$s --ref $D/val.$t --beam 5 --device $DEV \
        --batch-tokens 6000 --json $RES/val/$label.json > /dev/null 2>> $RES/logs/score_$label.log
    [ "$sealed" = 1 ] && $PY -m scripts.evaluate "${models[@]}" --src $D/test2016.$s \
        --ref $D/test2016.$t --beam 5 --device $DEV --batch-tokens 6000 \
        --json $RES/sealed/$label.json --output $RES/sealed/$label.hyp \
        > /dev/null 2>> $RES/logs/score_$label.log
    return 0
}

lever() {  # name --set ...: the reference recipe with one lever, averaged, scored on val
    local name=$1; shift
    $PY -m scripts.train --config configs/multi30k_de_en.yaml --quiet --set out_dir=$W/$name \
        --set train.device=$DEV --set train.max_steps=3000 --set train.max_minutes=$T1 \
        --set train.threads=1 --set train.valid_every=300 "$@" > $RES/logs/$name.log 2>&1
    for last in 3 2 1; do
        $PY -m scripts.average_checkpoints --run-dir $W/$name --last $last \
            --output $W/$name/averaged.pt >> $RES/logs/$name.log 2>&1 && break
    done
    cp $W/$name/metrics.jsonl $RES/metrics/$name.jsonl
    stamp "trained $name"
    score $name de en 0 $W/$name/averaged.pt
}

recipe() {  # src tgt variants
    local s=$1 t=$2
    PARALLEL=1 DEVICE=$DEV THREADS=1 DISTIL_BATCH_TOKENS=24000 TEACHER_STEPS=3000 STUDENT_STEPS=5000 TEACHER_MINUTES=$T1 \
        STUDENT_MINUTES=$T2 EXTRA="--set train.valid_every=300" VARIANTS=$3 PY=$PY \
        bash scripts/recipe_distill.sh $s $t $W/distill_${s}_$t > $RES/logs/recipe_$s$t.log 2>&1
    local out=$W/distill_${s}_$t
    cp $out/timeline.txt $RES/timeline_recipe_$s$t.txt; cp $out/val.json $RES/val/recipe_$s$t.json
    for run in $out/teacher_s* $out/student_*; do
        cp $run/metrics.jsonl $RES/metrics/$s${t}_$(basename $run).jsonl
    done
    head -5 $out/kd/train.hyp.$t > $RES/kd_${s}${t}_head.txt
    gzip -c $out/kd/train.hyp.$t > $RES/kd_${s}${t}_train.hyp.$t.gz
    stamp "recipe $s->$t done"
    local teachers=($out/teacher_s*/averaged.pt) students=($out/student_only*/averaged.pt)
    for m in "${teachers[@]}"; do score ${s}${t}_$(basename $(dirname $m)) $s $t 0 $m & done
    score ${s}${t}_chosen $s $t 1 $out/model.pt &
    score ${s}${t}_ens_teachers $s $t 1 "${teachers[@]}" &
    score ${s}${t}_ens_students $s $t 1 "${students[@]}" &   # same corpus, same SentencePiece
    wait
    stamp "scored $s->$t"
}

only() {  # the KD-only student's corpus for src tgt
    echo "--set 'data.corpora=[{name: distilled, src: $D/train.$1, tgt: $W/distill_$1_$2/kd/train.hyp.$2}]'"
}
EMA="--set train.ema_decay=0.999"; RDROP="--set train.rdrop_alpha=3.0"
SWR="--set tokenizer.sampling_alpha=0.3 --set tokenizer.sampled_copies=4"
stamp "issue 29: recipes and levers"
recipe de en "only:$(only de en);mix:;only_ema:$(only de en) $EMA;only_rdrop:$(only de en) $RDROP;only_s2:$(only de en) --set train.seed=2" &
recipe en de "only:$(only en de);mix:;only_ema:$(only en de) $EMA;only_rdrop:$(only en de) $RDROP" &
lever ref_ema $EMA &
lever ref_rdrop $RDROP &
lever ref_swr $SWR &
wait
stamp "issue 29 done"
