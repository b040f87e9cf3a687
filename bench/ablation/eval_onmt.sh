#!/usr/bin/env bash
# eval_onmt.sh STEP BEAM [SPLIT]: the ablation run's OpenNMT-py checkpoint on Multi30k SPLIT (val) -> one JSON line (sacreBLEU BLEU/chrF, cased, detokenized)
set -euo pipefail
PEERS=${PEERS:-/work/shared/peers}; . "$PEERS/env.sh"
export OMP_NUM_THREADS=${THREADS:-1} MKL_NUM_THREADS=${THREADS:-1}
cd "$WORK_DIR/m30k"; mkdir -p out
step=$1; beam=$2; split=${3:-val}; extra=""
[ "$beam" = 1 ] && extra="-random_sampling_topk 1"
$ONMT_BIN/onmt_translate -model onmt_run/abl_step_$step.pt -src data/$split.sp.de -output out/abl_${split}_${step}_b$beam.sp \
  -beam_size $beam $extra -batch_size 64 -batch_type sents -max_length 250 -max_length_ratio 1.5 > /dev/null 2>&1
$JOEY_BIN/python - "$step" "$beam" "$split" "$DATA_DIR" <<'PY'
import sys, json, sentencepiece as spm, sacrebleu
step, beam, split = sys.argv[1:4]
sp = spm.SentencePieceProcessor(model_file="data/spm.model")
hyp = [sp.decode(l.split()) for l in open(f"out/abl_{split}_{step}_b{beam}.sp", encoding="utf-8")]
ref = [l.rstrip("\n") for l in open(f"{sys.argv[4]}/{split}.en", encoding="utf-8")]
from sacrebleu.metrics import BLEU, CHRF
b, c = BLEU(), CHRF(); bleu = b.corpus_score(hyp, [ref]); chrf = c.corpus_score(hyp, [ref])
print(json.dumps({"system": "OpenNMT-py 3.5.1", "split": split, "step": int(step), "beam": int(beam), "bleu": round(bleu.score, 2),
                  "chrf": round(chrf.score, 2), "signature": str(b.get_signature()), "chrf_signature": str(c.get_signature())}))
PY
