#!/usr/bin/env bash
# eval_models.sh LABEL SPLIT BEAM MODEL [MODEL ...]: one system (a model file, or an ensemble of
# several) on Multi30k SPLIT (val or test2016) -> one JSON line (sacreBLEU BLEU/chrF, cased,
# detokenized, with signatures; no shortlist, as in eval_project.sh). Scores and translations go
# to $ABL_DIR/systems/LABEL_SPLIT_bBEAM.{json,txt}.
set -euo pipefail
label=$1; split=$2; beam=$3; shift 3
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"; PY=${PYTHON:-python}
D=${S2S_DATA_DIR:-data}/multi30k; ABL_DIR=${ABL_DIR:-/tmp/abl}; mkdir -p "$ABL_DIR/systems"
out=$ABL_DIR/systems/${label}_${split}_b$beam
models=(); for m in "$@"; do models+=(--model "$m"); done
cd "$ROOT"
OMP_NUM_THREADS=${THREADS:-2} $PY -m scripts.evaluate "${models[@]}" --src "$D/$split.de" \
  --ref "$D/$split.en" --beam "$beam" --no-shortlist --json "$out.json" --output "$out.txt" \
  > /dev/null
$PY - "$out.json" "$label" "$split" "$beam" "$#" <<'PYTHON'
import json, sys
path, label, split, beam, members = sys.argv[1:]
scores = json.load(open(path))
keep = ("bleu", "chrf", "bleu_signature", "chrf_signature", "translate_s", "model")
print(json.dumps({"system": label, "split": split, "beam": int(beam), "members": int(members),
                  **{k: round(v, 2) if isinstance(v, float) else v
                     for k, v in scores.items() if k in keep}}))
PYTHON
