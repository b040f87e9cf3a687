#!/usr/bin/env bash
# Issue 26 on one GPU: the multi-domain recipes for the six directions
# (configs/multidomain_{de_en,en_de,fr_en,en_fr,es_en,en_es}.yaml) from scratch, and three
# single-domain de->en models of the same shape (Tatoeba alone, documentation alone: LibreOffice
# and GIMP help, UI strings alone: LibreOffice and other applications), side by side; then every
# model on every domain's held-out test (bench/corpora/eval_domains.py, beam 5), the caption
# models being the issue-29 teachers of seed 1 (run_gpu_kd.sh) where they exist.
# Run by bench/ablation/gpu_session.sh (S2S_DATA_DIR, S2S_CORPORA_DIR, W, RES); env: TMD
# (training minutes per run).
set -u
cd "$(dirname "$0")/../.."
PY=${PY:-python3}; DEV=${DEVICE:-cuda}; TMD=${TMD:-6.2}
C=$S2S_CORPORA_DIR
mkdir -p $RES/md/metrics $RES/md/logs $RES/md/eval
stamp() { echo "$(( $(date +%s) - T0 ))s $*" | tee -a $RES/timeline.txt; }

train() {  # name config --set ...
    local name=$1 config=$2; shift 2
    $PY -m scripts.train --config $config --quiet --set out_dir=$W/$name --set train.device=$DEV \
        --set train.max_steps=100000 --set train.max_minutes=$TMD --set train.threads=1 \
        --set train.valid_every=500 --set train.early_stopping_patience=0 "$@" \
        > $RES/md/logs/$name.log 2>&1
    for last in 3 2 1; do
        $PY -m scripts.average_checkpoints --run-dir $W/$name --last $last \
            --output $W/$name/averaged.pt >> $RES/md/logs/$name.log 2>&1 && break
    done
    cp $W/$name/metrics.jsonl $RES/md/metrics/$name.jsonl
    stamp "trained $name"
}

corpus() {  # name folder lang: one built corpus of the de-en folder as a corpora entry
    echo "{name: $1, src: $C/$1/de-en/train.de, tgt: $C/$1/de-en/train.en}"
}
single() {  # name validation-corpus corpus...: de->en on some corpora, validated on one's val
    local name=$1 valid=$2; shift 2
    local entries=(); for c in "$@"; do entries+=("$(corpus $c)"); done
    local joined; joined=$(IFS=,; echo "${entries[*]}")
    train $name configs/multidomain_de_en.yaml --set "data.corpora=[$joined]" \
        --set data.valid_src=$C/$valid/de-en/val.de --set data.valid_tgt=$C/$valid/de-en/val.en
}

evaluate() {  # pair name model: one model on every domain's test of the pair
    local pair=$1 name=$2 model=$3
    [ -f $model ] || { stamp "no model for $pair $name"; return; }
    $PY bench/corpora/eval_domains.py --model $name=$model --pair $pair --data $S2S_DATA_DIR \
        --corpora $C --out $RES/md/eval/${pair}.$name.json --jobs 4 \
        > $RES/md/logs/eval_${pair}_$name.log 2>&1
    stamp "evaluated $pair $name"
}

stamp "issue 26: multi-domain and single-domain runs"
for d in de_en en_de fr_en en_fr es_en en_es; do train md_$d configs/multidomain_$d.yaml & done
single sd_tatoeba tatoeba tatoeba &
single sd_docs libreoffice-help libreoffice-help gimp-help &
single sd_ui libreoffice-ui libreoffice-ui gettext-apps &
wait
stamp "issue 26: evaluating"
for d in de_en en_de fr_en en_fr es_en en_es; do evaluate ${d/_/-} multidomain $W/md_$d/averaged.pt & done
for s in tatoeba docs ui; do evaluate de-en $s $W/sd_$s/averaged.pt & done
evaluate de-en captions $W/distill_de_en/teacher_s1/averaged.pt &
evaluate en-de captions $W/distill_en_de/teacher_s1/averaged.pt &
wait
stamp "issue 26 done"
