#!/usr/bin/env bash
# Everything measured after the recipe runs, one after another on the quiet machine.
set -x
cd /work/main
export S2S_DATA_DIR=/work/shared/data
D=$S2S_DATA_DIR/multi30k
PY=/work/main/.venv/bin/python
OUT=/tmp/final
# 3. training throughput, previous code vs new pipeline, interleaved A B A B
for i in 1 2; do
  (cd /tmp/head && PYTHONPATH=/tmp/head $PY bench/bench_train.py --config configs/multi30k_de_en.yaml --set train.threads=2 --steps 20 --label "previous code (2b6affe, lists in memory)" --out $OUT/ab_train.jsonl)
  $PY bench/bench_train.py --config configs/multi30k_de_en.yaml --set train.threads=2 --steps 20 --label "prepared data (memory map)" --out $OUT/ab_train.jsonl
done
# 4. ensemble: the reference model + the same run's step-500 state as a second member
$PY -m scripts.average_checkpoints --inputs /tmp/runs/ref/step-00000500.pt --output $OUT/de-en-step500.pt
$PY bench/bench_decode.py --model /tmp/models/de-en.pt --src $D/test2016.de --ref $D/test2016.en --beams 5 --threads 2 --out $OUT/ensemble_decode.jsonl --label single
$PY bench/bench_decode.py --model /tmp/models/de-en.pt --model $OUT/de-en-step500.pt --src $D/test2016.de --ref $D/test2016.en --beams 5 --threads 2 --out $OUT/ensemble_decode.jsonl --label "ensemble of 2"
head -300 $D/test2016.de > $OUT/test2016_first300.de
$PY bench/check_batch_invariance.py --model /tmp/models/de-en.pt --model $OUT/de-en-step500.pt --src $OUT/test2016_first300.de --beam 5 --out $OUT/ensemble_batch_invariance.json
# CI on a fresh clone runs from here on, beside the steps whose figures are not timings
rm -rf /tmp/fresh5 && git clone -q /work/main /tmp/fresh5 && (cd /tmp/fresh5 && bash .ci/run > /tmp/fresh5_ci.log 2>&1; echo "CI rc=$?" >> /tmp/fresh5_ci.log) &
# 1. recipes: test2016 once (beam 5), best by validation BLEU
for p in en_fr fr_en; do s=${p%_*}; t=${p#*_}
  $PY -m scripts.evaluate --model /tmp/recipes/$p/best.pt --src $D/test2016.$s --ref $D/test2016.$t --beam 5 --json $OUT/recipe_${p}_test2016.json > $OUT/recipe_${p}_test2016.txt 2>&1
done
# 2. fine-tuning fr-en on Multi30k (captions): before (base model) and after, greedy on val as the run validates, test2016 beam 5 once each
$PY -m scripts.evaluate --model /tmp/recipes/fr_en/best.pt --src $D/val.fr --ref $D/val.en --beam 1 --json $OUT/ft_before_val_greedy.json > /dev/null 2>&1
$PY -m scripts.train --config configs/finetune_multi30k_fr_en.yaml --init-from /tmp/recipes/fr_en/best.pt --set out_dir=/tmp/final/finetune --set train.max_steps=150 --set train.threads=2 --quiet > $OUT/finetune.log 2>&1
$PY -m scripts.evaluate --model /tmp/recipes/fr_en/best.pt --src $D/test2016.fr --ref $D/test2016.en --beam 5 --json $OUT/ft_before_test2016.json > /dev/null 2>&1
$PY -m scripts.evaluate --model /tmp/final/finetune/best.pt --src $D/test2016.fr --ref $D/test2016.en --beam 5 --json $OUT/ft_after_test2016.json > /dev/null 2>&1
# 5. the service with de-en, en-fr, fr-en: existing clients, Mastodon shapes, files, keys
mkdir -p /tmp/serve_models && cp /tmp/models/de-en.pt /tmp/serve_models/de-en.pt
cp /tmp/recipes/en_fr/best.pt /tmp/serve_models/en-fr.pt; cp /tmp/recipes/fr_en/best.pt /tmp/serve_models/fr-en.pt
rm -rf /tmp/demo_state/keys.db* /tmp/demo_state/files
.venv/bin/s2s-serve --config /tmp/demo_state/service.yaml --port 8011 > /tmp/demo_state/serve.log 2>&1 &
SERVER=$!
for i in $(seq 60); do curl -sf localhost:8011/ready > /dev/null && break; sleep 1; done
$PY bench/client_demo.py --url http://127.0.0.1:8011 --keys-db /tmp/demo_state/keys.db --out bench/client_demo.json > $OUT/client_demo.log 2>&1
kill $SERVER; wait $SERVER
# 6. the page: screenshots of translation + attention, and of detection + file upload
S2S_SCREENSHOT=bench/web_page.png S2S_SCREENSHOT_FILES=bench/web_page_files.png $PY -m pytest -q tests/test_browser.py > $OUT/browser.log 2>&1
# 7. curves: the reference run, the en-fr run, both compared
$PY -m scripts.curves /tmp/runs/ref -o bench/curves_reference_de_en.png --label "de-en reference"
cp /tmp/recipes/en_fr/curves.png bench/curves_tatoeba_en_fr.png
$PY -m scripts.curves /tmp/runs/ref /tmp/recipes/en_fr /tmp/recipes/fr_en -o bench/curves_compare.png --label "de-en reference" --label "en-fr recipe" --label "fr-en recipe"
echo ALL DONE 2
