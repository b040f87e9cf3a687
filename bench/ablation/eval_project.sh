#!/usr/bin/env bash
# eval_project.sh RUN_DIR STEP BEAM LABEL [SPLIT]: a project ablation run's state at STEP (or RUN_DIR
# a model file, STEP only a label) on
# Multi30k SPLIT (val) -> one JSON line (sacreBLEU BLEU/chrF, cased, detokenized; no shortlist,
# as OpenNMT-py decodes with the full softmax).
set -euo pipefail
run=$1; step=$2; beam=$3; label=$4; split=${5:-val}
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"; PY=${PYTHON:-python}
D=${S2S_DATA_DIR:-data}/multi30k; ABL_DIR=${ABL_DIR:-/tmp/abl}; mkdir -p "$ABL_DIR/models"
model=$ABL_DIR/models/$(basename "$run")_$step.pt
scores=$ABL_DIR/models/$(basename "$run")_${step}_b${beam}_$split.json
cd "$ROOT"
if [ -f "$run" ]; then model=$run; scores=$ABL_DIR/models/$(basename "$run" .pt)_${step}_b${beam}_$split.json; fi
[ -f "$model" ] || $PY -m scripts.average_checkpoints \
  --inputs "$run/step-$(printf %08d "$step").pt" --output "$model" > /dev/null
OMP_NUM_THREADS=${THREADS:-1} $PY -m scripts.evaluate --model "$model" --src "$D/$split.de" \
  --ref "$D/$split.en" --beam "$beam" --no-shortlist --json "$scores" > /dev/null 2>&1
$PY - "$scores" "$label" "$split" "$step" "$beam" <<'PYTHON'
import json, sys
path, label, split, step, beam = sys.argv[1:]
scores = json.load(open(path))
print(json.dumps({"system": label, "split": split, "step": int(step), "beam": int(beam),
                  **{k: round(v, 2) if isinstance(v, float) else v for k, v in scores.items()}}))
PYTHON
