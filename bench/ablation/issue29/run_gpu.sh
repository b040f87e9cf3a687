#!/usr/bin/env bash
# Issue 29 ablation on one GPU, one call: phase 1 trains teachers and lever runs side by side,
# phase 2 averages, scores on val (beam 5) and distils, phase 3 trains students, phase 4 scores.
# Test2016 scores go to sealed/ (read only for the systems chosen on val).
# Run from anywhere: bash bench/ablation/issue29/run_gpu.sh (results under $W/res, packed into
# $OUT/results.tgz every 30 s). Env: DATA (the folder holding multi30k/ and tatoeba-deu-eng/;
# default $S2S_DATA_DIR, else data), DEVICE (cuda), STEPS, MIN1, MIN2 (max minutes per phase),
# VALID, PY, W, OUT. On the lent GPU it ran with the data copied into the checkout (DATA=.gpu/data).
set -u
cd "$(dirname "$0")/../../.."
R=$(pwd)
export PYTHONPATH=$R:${PYTHONPATH:-} PYTHONUNBUFFERED=1 S2S_DATA_DIR=${DATA:-${S2S_DATA_DIR:-$R/data}}
PY=${PY:-python3}
DEV=${DEVICE:-cuda}; STEPS=${STEPS:-3000}; MIN1=${MIN1:-3.0}; MIN2=${MIN2:-2.4}; VALID=${VALID:-300}
OUT=${OUT:-/tmp/out}; W=${W:-/tmp/w}; mkdir -p $W $OUT
RES=$W/res; mkdir -p $RES/logs $RES/val $RES/sealed $RES/metrics
D=$S2S_DATA_DIR/multi30k
T0=$(date +%s)
stamp() { echo "$(( $(date +%s) - T0 ))s $*" | tee -a $RES/timeline.txt; }
pack() { tar czf $OUT/.r.tgz -C $W res 2>/dev/null && mv $OUT/.r.tgz $OUT/results.tgz; }
(while sleep 30; do pack; done) & PACKER=$!; disown $PACKER
{ nvidia-smi; $PY -c "import torch,sys;print(sys.version, torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"; nproc; } > $RES/machine.txt 2>&1

train() {  # name minutes config [--set ...]
    local name=$1 min=$2 cfg=$3; shift 3
    $PY -m scripts.train --config $cfg --quiet --set out_dir=$W/$name --set train.device=$DEV \
        --set train.max_steps=$STEPS --set train.max_minutes=$min --set train.threads=2 \
        --set train.valid_every=$VALID ${EXTRA:-} "$@" > $RES/logs/$name.log 2>&1
    cp $W/$name/metrics.jsonl $RES/metrics/$name.jsonl 2>/dev/null
    for last in 3 2 1; do   # fewer states when max_minutes stopped the run early
        $PY -m scripts.average_checkpoints --run-dir $W/$name --last $last \
            --output $W/$name/averaged.pt >> $RES/logs/$name.log 2>&1 && break
    done
    stamp "trained $name"
}
score() {  # label src tgt model... : val beam 5 (visible) and test2016 (sealed)
    local label=$1 s=$2 t=$3; shift 3
    local models=(); for m in "$@"; do models+=(--model $m); done
    $PY -m scripts.evaluate "${models[@]}" --src $D/val.$s --ref $D/val.$t --beam 5 --device $DEV \
        --batch-tokens 6000 --json $RES/val/$label.json > /dev/null 2>> $RES/logs/score_$label.log
    $PY -m scripts.evaluate "${models[@]}" --src $D/test2016.$s --ref $D/test2016.$t --beam 5 \
        --device $DEV --batch-tokens 6000 --json $RES/sealed/$label.json --output $RES/sealed/$label.hyp \
        > /dev/null 2>> $RES/logs/score_$label.log
}
score_run() {  # name src tgt: best.pt and averaged.pt
    score $1.best $2 $3 $W/$1/best.pt; score $1.avg $2 $3 $W/$1/averaged.pt
}

REF=configs/multi30k_de_en.yaml
ENDE=(--set data.src_lang=en --set data.tgt_lang=de)
BIG=(--set model.emb_dim=512 --set model.enc_hidden=768 --set model.dec_hidden=768)
stamp "phase 1"
for s in 1 2 3; do train ref_s$s $MIN1 $REF --set train.seed=$s & done
for s in 1 2 3; do train ende_s$s $MIN1 $REF "${ENDE[@]}" --set train.seed=$s & done
train tatoeba $MIN1 configs/multi30k_tatoeba_de_en.yaml &
train big $MIN1 $REF "${BIG[@]}" &
train big_d4 $MIN1 $REF "${BIG[@]}" --set model.dropout=0.4 &
train fr_de_en $MIN1 $REF --set data.valid_src=$D/val.de --set data.valid_tgt=$D/val.en \
    --set "data.corpora=[{name: de, src: $D/train.de, tgt: $D/train.en}, {name: fr, src: $D/train.fr, tgt: $D/train.en}]" &
wait
stamp "phase 2"
distil() {  # name src tgt teachers...
    local name=$1 s=$2 t=$3; shift 3
    local models=(); for m in "$@"; do models+=(--model $m); done
    mkdir -p $W/$name
    timeout 120 $PY -m scripts.translate "${models[@]}" --src $D/train.$s --output $W/$name/train.hyp.$t \
        --beam 5 --device $DEV --batch-tokens 12000 --no-progress 2> $RES/logs/$name.log
    stamp "distilled $name rc=$? lines=$(wc -l < $W/$name/train.hyp.$t)"
}
distil kd_de de en $W/ref_s{1,2,3}/averaged.pt &
distil kd_en en de $W/ende_s{1,2,3}/averaged.pt &
wait
for r in ref_s1 ref_s2 ref_s3 tatoeba big big_d4 fr_de_en; do score_run $r de en & done
for r in ende_s1 ende_s2 ende_s3; do score_run $r en de & done
score ens_ref_avg de en $W/ref_s{1,2,3}/averaged.pt &
score ens_ende_avg en de $W/ende_s{1,2,3}/averaged.pt &
head -3 $W/kd_de/train.hyp.en > $RES/kd_de_head.txt
stamp "phase 3"
KD=configs/multi30k_de_en_distilled.yaml
S2S_KD_DIR=$W/kd_de train kd_de_mix $MIN2 $KD &
S2S_KD_DIR=$W/kd_de train kd_de_mix_big $MIN2 $KD "${BIG[@]}" &
corpora() {  # src_lang tgt_lang tgt_file_of_first tgt_file_of_second
    echo "data.corpora=[{name: refs, src: $D/train.$1, tgt: $3}, {name: distilled, src: $D/train.$1, tgt: $4}]"
}
ENDE_KD=(--set "$(corpora en de $D/train.de $W/kd_en/train.hyp.de)" --set data.valid_src=$D/val.en
         --set data.valid_tgt=$D/val.de "${ENDE[@]}")
train kd_de_only $MIN2 $KD --set "data.corpora=[{name: distilled, src: $D/train.de, tgt: $W/kd_de/train.hyp.en}]" &
train kd_en_mix $MIN2 $KD "${ENDE_KD[@]}" &
train kd_en_mix_big $MIN2 $KD "${ENDE_KD[@]}" "${BIG[@]}" &
wait
stamp "phase 4"
for r in kd_de_mix kd_de_mix_big kd_de_only; do score_run $r de en & done
for r in kd_en_mix kd_en_mix_big; do score_run $r en de & done
score ens_kd_de de en $W/kd_de_mix/averaged.pt $W/kd_de_mix_big/averaged.pt &
score ens_kd_en en de $W/kd_en_mix/averaged.pt $W/kd_en_mix_big/averaged.pt &
wait
stamp "scored all"
# the best single de-en model file by val BLEU comes back in parts
best=$($PY - <<EOF
import json, glob, os
rows = []
for f in glob.glob("$RES/val/*.json"):
    label = os.path.basename(f)[:-5]
    if label.startswith(("ens_", "ende", "kd_en")):
        continue
    rows.append((json.load(open(f))["bleu"], label))
print(max(rows)[1] if rows else "")
EOF
)
stamp "best single de-en on val: $best"
if [ -n "$best" ]; then
    run=${best%.*}; kind=${best##*.}; [ $kind = avg ] && kind=averaged
    cp $W/$run/$kind.pt $W/best_de_en.pt && sha256sum $W/best_de_en.pt > $RES/best_de_en.sha256
    split -b 15M -d $W/best_de_en.pt $OUT/best_de_en.pt.part
fi
stamp done
kill $PACKER; pack
