#!/usr/bin/env bash
# One call on the lent GPU for issues 29 and 26 (bench/ablation/issue29/run_gpu_kd.sh and
# bench/corpora/run_gpu_multidomain.sh side by side). Expects, in the checkout (ignored,
# carried): .gpu/whl (wheels the device lacks: pydantic and its needs, sentencex) and
# .gpu/data.tgz (multi30k/, tatoeba-*/ and corpora/ as built by s2s-download-data).
# Results: $OUT/results.tgz every 30 s and at the end (res/), and the chosen de->en and
# en->de students as fp16 parts (bench/ablation/gpu_transport.py unpack joins them).
# DEADLINE (s, default 565): everything still running then is stopped and packed.
# A dry run on a CPU: PY=.venv/bin/python WHEELS=none DATA_TGZ=small.tgz DEVICE=cpu T1=.3 T2=.3 TMD=.5
set -u
cd "$(dirname "$0")/../.."
export T0=$(date +%s) PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
export W=${W:-/tmp/w} OUT=${OUT:-/tmp/out}; export RES=$W/res
mkdir -p $RES $OUT /tmp/data
export PY=${PY:-python3}; WHEELS=${WHEELS:-.gpu/whl}
if [ "$WHEELS" != none ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site $WHEELS/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$(pwd)
tar xzf ${DATA_TGZ:-.gpu/data.tgz} -C /tmp/data || exit 1
export S2S_DATA_DIR=/tmp/data S2S_CORPORA_DIR=/tmp/data/corpora
{ nvidia-smi; $PY -c "import torch,sys;print(sys.version, torch.__version__, torch.cuda.get_device_name(0))"; nproc; } > $RES/machine.txt 2>&1
pack() { tar czf $OUT/.r.tgz -C $W res 2>/dev/null && mv $OUT/.r.tgz $OUT/results.tgz; }
(while sleep 30; do pack; done) & PACKER=$!

setsid bash bench/ablation/issue29/run_gpu_kd.sh > $RES/issue29.log 2>&1 & P29=$!
setsid bash bench/corpora/run_gpu_multidomain.sh > $RES/issue26.log 2>&1 & P26=$!
DEADLINE=${DEADLINE:-565}
while [ $(( $(date +%s) - T0 )) -lt $DEADLINE ] && { kill -0 $P29 2>/dev/null || kill -0 $P26 2>/dev/null; }; do
    sleep 2
done
echo "$(( $(date +%s) - T0 ))s stopping what still runs" >> $RES/timeline.txt
kill -- -$P29 -$P26 2>/dev/null
kill $PACKER
for pair in de_en en_de; do
    [ -f $W/distill_$pair/model.pt ] && $PY bench/ablation/gpu_transport.py pack \
        $W/distill_$pair/model.pt $OUT/$pair >> $RES/timeline.txt 2>&1
done
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv >> $RES/machine.txt 2>&1
pack
ls -la $OUT
cat $RES/timeline.txt
