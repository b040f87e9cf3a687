#!/usr/bin/env python3
"""Corpus-scale data benchmark (issue 13): synthetic corpora made by repeating Tatoeba en-fr
to each size, then for each size

- preparation (s2s-prepare) with 1 and 2 encoding processes: wall time, pairs/s, peak RSS of
  the process tree (sampled from /proc every 0.1 s), size on disk;
- the training process on the prepared data: time from launching the process to the start of
  its first step and to the end of it (split into imports, memory-mapping the prepared data,
  building the trainer (model, optimizer: torch's Adam imports torch._dynamo, 1.3-1.8 s
  here), the first epoch's batch plan, and the step), its peak RSS at that point;
- optionally the previous code (``--old-root``: a checkout of the commit before the prepare
  step) preparing the same corpus in one process, for the speed-up measured side by side;
- optionally (``--floor``) the part no prepare code can go below: SentencePiece training on the
  same sample, and SentencePiece encoding alone of every line of both sides (one thread, only
  the encode calls timed), so the floor on N cores is training + encoding / N;
- optionally two DDP ranks (gloo, CPU) on the largest size: RSS of each and the proof that
  their batches are disjoint.

    python bench/bench_prepare.py --sizes 170000 1300000 5000000 --out bench/prepare.json

Writes one JSON record with the machine (CPU model and flags, threads, torch version).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_train import machine_info  # noqa: E402

CONFIG = """
name: bench
out_dir: {out}
data:
  src_lang: en
  tgt_lang: fr
  corpora:
    - name: synthetic
      src: {corpus}/train.en
      tgt: {corpus}/train.fr
  valid_src: {data}/multi30k/val.en
  valid_tgt: {data}/multi30k/val.fr
  prepared_dir: {prepared}
  max_len: 80
tokenizer:
  vocab_size: 8000
train:
  seed: 1
  threads: 2
  batch_tokens: 4000
  valid_every: 100000
"""

FIRST_STEP = """
import json, resource, sys, time
started = time.perf_counter()
import torch
from s2s.config import load_config
from s2s.training.prepare import open_prepared, prepared_folder
from s2s.training.trainer import Trainer
imported = time.perf_counter()
config = load_config(sys.argv[1])
open_prepared(config, prepared_folder(config))
opened = time.perf_counter()
trainer = Trainer.build(config)
built = time.perf_counter()
trainer.plan._epoch_bounds()
planned = time.perf_counter()
first_step_begins = time.time()
trainer.train_step()
done = time.perf_counter()
launched = float(sys.argv[2])
print(json.dumps({"launch_to_first_step_s": first_step_begins - launched,
                  "launch_to_first_step_done_s": time.time() - launched,
                  "import_s": imported - started, "open_prepared_s": opened - imported,
                  "build_s": built - opened, "first_plan_s": planned - built,
                  "first_step_s": done - planned,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "pairs": len(trainer.data.train)}))
"""

DDP_WORKER = """
import json, os, resource, sys
import torch.distributed as dist
from s2s.config import load_config
from s2s.training.distributed import init_from_env
from s2s.training.trainer import Trainer
info = init_from_env("cpu")
trainer = Trainer.build(load_config(sys.argv[1]), info)
batches = trainer.plan.epoch_batches()
trainer.train_step()
pairs = sorted({i for batch in batches for i in batch})
out = {"rank": info.rank, "batches": len(batches), "pairs": len(pairs),
       "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
with open(sys.argv[2] + f".{info.rank}.json", "w") as handle:
    json.dump({**out, "batch_ids": [hash(tuple(b)) for b in batches]}, handle)
with open(sys.argv[2] + f".{info.rank}.pairs", "w") as handle:
    handle.write("\\n".join(map(str, pairs)))
dist.destroy_process_group()
"""

OLD_PREPARE = """
import json, resource, sys, time
started = time.perf_counter()
from s2s.config import load_config
from s2s.training.prepare import prepare_data
from s2s.training.run_folder import RunFolder
config = load_config(None, [f"data.corpus_dir={sys.argv[1]}", "data.src_lang=en",
                            "data.tgt_lang=fr", "data.max_len=80", "tokenizer.vocab_size=8000",
                            f"out_dir={sys.argv[2]}"])
run = RunFolder(config.run_dir())
run.path.mkdir(parents=True, exist_ok=True)
data = prepare_data(config, run)
print(json.dumps({"seconds": time.perf_counter() - started, "pairs": len(data.train),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

FLOOR = """
import json, sys, time
import sentencepiece as spm
from s2s.config import load_config
from s2s.training.corpus_files import line_blocks
from s2s.training.prepare import select_holdouts, train_tokenizer
config = load_config(sys.argv[1])
corpora = config.data.training_corpora()
started = time.perf_counter()
tokenizer = train_tokenizer(config, corpora, select_holdouts(corpora, config.train.seed))
trained = time.perf_counter() - started
encode_s, lines = 0.0, 0
src_model, tgt_model = tokenizer.model_bytes()
for path, model in zip(corpora[0].paths(), (src_model, tgt_model or src_model)):
    processor = spm.SentencePieceProcessor()
    processor.LoadFromSerializedProto(model)
    for data, ends in line_blocks(path):
        text = data[:int(ends[-1])].decode("utf-8").split("\\n")
        started = time.perf_counter()
        processor.encode(text, out_type=int, num_threads=1)
        encode_s += time.perf_counter() - started
        lines += len(text)
print(json.dumps({"sentencepiece_train_s": round(trained, 2),
                  "sentencepiece_encode_one_thread_s": round(encode_s, 2), "lines": lines}))
"""


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and its descendants (MiB), from /proc."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines()
                              if line.startswith("VmRSS:")))
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total / 1024


def run_measured(command: list[str], env: dict | None = None, cwd: Path = ROOT
                 ) -> tuple[float, float, str]:
    """(wall seconds, peak RSS of the process tree in MiB, stdout)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, text=True,
                                   env=env, cwd=cwd)
        peak = 0.0
        while process.poll() is None:
            peak = max(peak, tree_rss_mb(process.pid))
            time.sleep(0.1)
        wall = time.perf_counter() - started
        if process.returncode:
            raise RuntimeError(f"{command} failed: {process.stderr.read()[-2000:]}")
        out.seek(0)
        return wall, peak, out.read()


def make_corpus(source: Path, folder: Path, pairs: int) -> Path:
    """``pairs`` lines of each side, repeating the source corpus."""
    if (folder / "train.fr").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for lang in ("en", "fr"):
        lines = (source / f"train.{lang}").read_text(encoding="utf-8").splitlines(True)
        with open(folder / f"train.{lang}", "w", encoding="utf-8") as handle:
            written = 0
            while written < pairs:
                chunk = lines[: pairs - written]
                handle.writelines(chunk)
                written += len(chunk)
        (folder / f"val.{lang}").write_text("".join(lines[:200]), encoding="utf-8")
    return folder


def disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 2**20


def measure_startup(config: Path) -> dict:
    """The training process on prepared data: launch to first step, its parts, peak RSS."""
    wall, peak, out = run_measured([sys.executable, "-c", FIRST_STEP, str(config),
                                    repr(time.time())])
    return {"process_wall_s": round(wall, 2), "peak_rss_mb": round(peak), **json.loads(out)}


def measure_size(args, pairs: int, work: Path) -> dict:
    corpus = make_corpus(args.data / "tatoeba-eng-fra", work / f"corpus_{pairs}", pairs)
    record: dict = {"pairs": pairs}
    if args.startup_only:
        config = work / f"config_{pairs}_{max(args.workers)}.yaml"
        record["training_process"] = measure_startup(config)
        return record
    for workers in args.workers:
        prepared = work / f"prepared_{pairs}_{workers}"
        config = work / f"config_{pairs}_{workers}.yaml"
        shutil.rmtree(prepared, ignore_errors=True)  # else s2s-prepare finds it current
        config.write_text(CONFIG.format(out=work / f"run_{pairs}_{workers}", corpus=corpus,
                                        data=args.data, prepared=prepared))
        wall, peak, _ = run_measured([sys.executable, "-m", "scripts.prepare", "--config",
                                      str(config), "--workers", str(workers)])
        record[f"prepare_{workers}_workers"] = {
            "seconds": round(wall, 2), "pairs_per_s": round(pairs / wall),
            "peak_tree_rss_mb": round(peak), "disk_mb": round(disk_mb(prepared), 1)}
    record["training_process"] = measure_startup(config)
    if args.floor:
        _, _, out = run_measured([sys.executable, "-c", FLOOR, str(config)])
        floor = json.loads(out)
        floor["floor_on_2_cores_s"] = round(floor["sentencepiece_train_s"]
                                            + floor["sentencepiece_encode_one_thread_s"] / 2, 2)
        record["sentencepiece_floor"] = floor
    if args.old_root:
        env = {**os.environ, "PYTHONPATH": str(args.old_root)}
        shutil.rmtree(work / f"old_{pairs}", ignore_errors=True)
        wall, peak, out = run_measured([sys.executable, "-c", OLD_PREPARE, str(corpus),
                                        str(work / f"old_{pairs}")], env, args.old_root)
        record["previous_code_prepare"] = {"seconds": round(wall, 2),
                                           "pairs_per_s": round(pairs / wall),
                                           "peak_tree_rss_mb": round(peak), **json.loads(out)}
    return record


def measure_ddp(config: Path, work: Path) -> dict:
    prefix = work / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", "29533", str(work / "ddp_worker.py"), str(config), str(prefix)]
    (work / "ddp_worker.py").write_text(DDP_WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    wall, peak, _ = run_measured(command, env)
    ranks = [json.loads(Path(f"{prefix}.{r}.json").read_text()) for r in (0, 1)]
    pairs = [set(Path(f"{prefix}.{r}.pairs").read_text().split()) for r in (0, 1)]
    batches = [set(rank.pop("batch_ids")) for rank in ranks]
    return {"ranks": ranks, "tree_peak_rss_mb": round(peak), "seconds": round(wall, 2),
            "shared_batches": len(batches[0] & batches[1]),
            "shared_pairs": len(pairs[0] & pairs[1]),
            "note": "each rank's epoch-0 batches; a pair is in both ranks' sets only if the "
                    "corpus repeats it (the synthetic corpus repeats Tatoeba, so pair indices "
                    "are compared, not texts)"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[170_000, 1_300_000, 5_000_000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("S2S_DATA_DIR",
                                                                          "data")))
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_prepare"))
    parser.add_argument("--old-root", type=Path, default=None,
                        help="checkout of the previous code, run for the side-by-side figure")
    parser.add_argument("--old-max-pairs", type=int, default=1_300_000)
    parser.add_argument("--ddp", action="store_true", help="two gloo ranks on the largest size")
    parser.add_argument("--startup-only", action="store_true",
                        help="only the training process, on the data an earlier run prepared")
    parser.add_argument("--floor", action="store_true",
                        help="also time SentencePiece's own training and encoding (the floor)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.data = args.data.resolve()
    old_root = args.old_root
    records = []
    for pairs in args.sizes:
        args.old_root = old_root if old_root and pairs <= args.old_max_pairs else None
        records.append(measure_size(args, pairs, args.work))
        print(json.dumps(records[-1]), flush=True)
    result = {"machine": machine_info(), "sizes": records}
    if args.ddp:
        largest = max(args.sizes)
        result["ddp_two_ranks"] = {"pairs": largest, **measure_ddp(
            args.work / f"config_{largest}_{max(args.workers)}.yaml", args.work)}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result.get("ddp_two_ranks", {})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
