"""The prepare step: corpora -> SentencePiece model, memory-mapped token shards, validation
set and shortlist, in a folder described by a manifest.

    manifest.json          config hash, input files, tokenizer hash, per-corpus counts and
                           filtering statistics, checksums of every file written
    spm.src.model [spm.tgt.model]
    <corpus>.src|tgt.*     token shards (s2s.training.shards)
    valid.src / valid.tgt  the validation pairs as text (files and held-out pairs)
    shortlist.pt           the decoding shortlist (when the config asks for one)

``prepare(config, folder, tokenizer)`` does the work (several encoding processes); it is skipped
when the manifest matches the config, the input files and the tokenizer. ``open_prepared``
memory-maps the result: that is all that training, a resume, or a DDP rank does.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from s2s.checkpoint import (
    FORMAT_VERSION,
    SHORTLIST_FORMAT,
    atomic_save,
    atomic_write_text,
    load_checkpoint,
)
from s2s.config import Config, CorpusConfig, expand_env
from s2s.inference.shortlist import Shortlist
from s2s.ragged import positions_within
from s2s.tokenizer import Tokenizer, train_sentencepiece
from s2s.training.corpus_files import (
    DataError,
    count_lines,
    file_identity,
    read_lines,
    read_pairs,
    write_lines,
)
from s2s.training.data import ParallelData
from s2s.training.demo_task import demo_splits
from s2s.training.encoding import (
    EncodedChunk,
    FilterStats,
    LengthFilter,
    encode_chunk,
    load_processors,
)
from s2s.training.run_folder import load_tokenizer_files, save_tokenizer_files
from s2s.training.shards import (
    SIDES,
    CorpusShards,
    ShardWriter,
    TokenShard,
    TrainingSet,
    token_dtype,
)

PREPARED_FORMAT = 1
CHUNK_PAIRS = 20_000
SHORTLIST_SAMPLE_PAIRS = 100_000


@dataclass
class PreparedData:
    """What training uses: tokenizer, memory-mapped training set, validation pairs."""

    tokenizer: Tokenizer
    train: TrainingSet
    valid: Any                      # s2s.training.data.ParallelData (encoded validation pairs)
    valid_src: list[str]
    valid_ref: list[str]
    manifest: dict[str, Any]
    shortlist: Shortlist | None = None


def prepared_folder(config: Config) -> Path:
    if config.data.prepared_dir:
        return Path(expand_env(config.data.prepared_dir))
    return config.run_dir() / "prepared"


# ---- what the prepared data depends on -------------------------------------------------------
def config_fingerprint(config: Config) -> str:
    """Hash of every setting the prepared files depend on."""
    data = config.data.model_dump(mode="json", exclude={"prepare_workers", "prepared_dir"})
    relevant = {"data": data, "tokenizer": config.tokenizer.model_dump(mode="json"),
                "seed": config.train.seed, "max_src_len": config.model.max_src_len,
                "valid_max_sentences": config.train.valid_max_sentences,
                "shortlist": [config.train.shortlist_per_source, config.train.shortlist_frequent],
                "format": PREPARED_FORMAT}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def input_files(config: Config) -> list[Path]:
    if config.data.corpus == "demo":
        return []
    paths = [path for corpus in config.data.training_corpora() for path in corpus.paths()]
    valid = config.data.validation_files()
    return paths + (list(valid) if valid else [])


def is_current(folder: Path, config: Config, tokenizer: Tokenizer | None) -> bool:
    """Whether the folder's manifest matches the config, the input files and the tokenizer."""
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("config_hash") != config_fingerprint(config):
        return False
    inputs = [file_identity(path) for path in input_files(config)]
    if manifest.get("inputs") != inputs:
        return False
    return tokenizer is None or manifest.get("tokenizer_sha256") == tokenizer.fingerprint()


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---- the prepare step ----------------------------------------------------------------------
def prepare(config: Config, folder: Path, tokenizer: Tokenizer | None = None,
            workers: int | None = None) -> dict[str, Any]:
    """Write the prepared data of ``config`` to ``folder`` (unless it is current) and return
    its manifest. ``tokenizer`` (a resumed run's, or a model file's for fine-tuning) is used
    instead of training SentencePiece."""
    if is_current(folder, config, tokenizer):
        return read_manifest(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").unlink(missing_ok=True)
    corpora, valid_files = resolve_corpora(config, folder)
    held = select_holdouts(corpora, config.train.seed)
    valid_src, valid_tgt = validation_pairs(config, valid_files, held)
    if tokenizer is None:
        tokenizer = train_tokenizer(config, corpora, held)
    save_tokenizer_files(folder, tokenizer)
    held_sources = {src for pairs in held.values() for src, _ in pairs}
    stats = encode_corpora(config, folder, tokenizer, corpora, held, held_sources, workers)
    write_lines(folder / "valid.src", valid_src)
    write_lines(folder / "valid.tgt", valid_tgt)
    manifest = {
        "format": PREPARED_FORMAT, "config_hash": config_fingerprint(config),
        "inputs": [file_identity(path) for path in input_files(config)],
        "tokenizer_sha256": tokenizer.fingerprint(),
        "token_dtype": token_dtype(max(len(tokenizer.src), len(tokenizer.tgt))).name,
        "corpora": stats, "valid_pairs": len(valid_src),
    }
    (folder / "shortlist.pt").unlink(missing_ok=True)
    if config.train.shortlist_per_source:
        shortlist = build_shortlist(config, folder, tokenizer, manifest)
        atomic_save({"format": SHORTLIST_FORMAT, "version": FORMAT_VERSION,
                     **shortlist.state_dict()}, folder / "shortlist.pt")
    manifest["checksums"] = {name: digest for corpus in stats
                             for name, digest in corpus.pop("checksums").items()}
    atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return manifest


def resolve_corpora(config: Config, folder: Path
                    ) -> tuple[list[CorpusConfig], tuple[Path, Path] | None]:
    """The training corpora and the validation files (None: held-out pairs only); the demo
    task is first written out as files in ``folder``."""
    if config.data.corpus != "demo":
        return config.data.training_corpora(), config.data.validation_files()
    data = config.data
    splits = demo_splits(data.demo_train_size, data.demo_valid_size, data.demo_test_size,
                         config.train.seed)
    files = {}
    for split in ("train", "valid"):
        files[split] = (folder / f"demo.{split}.src.txt", folder / f"demo.{split}.tgt.txt")
        for path, lines in zip(files[split], splits[split]):
            write_lines(path, lines)
    src, tgt = files["train"]
    return [CorpusConfig(name="demo", src=str(src), tgt=str(tgt))], files["valid"]


def select_holdouts(corpora: list[CorpusConfig], seed: int) -> dict[str, list[tuple[str, str]]]:
    """Each corpus's held-out pairs (line numbers drawn with the seed), in line order."""
    held: dict[str, list[tuple[str, str]]] = {}
    for number, corpus in enumerate(corpora):
        if not corpus.holdout:
            continue
        src_path, _ = corpus.paths()
        total = count_lines(src_path)
        if corpus.holdout >= total:
            raise DataError(f"corpus {corpus.name}: holdout {corpus.holdout} >= its {total} pairs")
        rng = np.random.default_rng([seed, number])
        chosen = set(rng.choice(total, corpus.holdout, replace=False).tolist())
        held[corpus.name] = [pair for index, pair in enumerate(read_pairs(*corpus.paths()))
                             if index in chosen]
    return held


def validation_pairs(config: Config, files: tuple[Path, Path] | None,
                     held: dict[str, list[tuple[str, str]]]) -> tuple[list[str], list[str]]:
    """Validation files, then held-out pairs; at most train.valid_max_sentences when set."""
    pairs = [] if files is None else list(read_pairs(*files))
    for corpus_pairs in held.values():
        pairs.extend(corpus_pairs)
    if config.train.valid_max_sentences:
        pairs = pairs[: config.train.valid_max_sentences]
    if not pairs:
        raise DataError("the validation set is empty")
    return [s for s, _ in pairs], [t for _, t in pairs]


def training_lines(corpus: CorpusConfig, held: dict[str, list[tuple[str, str]]]
                   ) -> Iterator[tuple[str, str]]:
    """A corpus's pairs minus its held-out ones (pairs equal to a held-out pair go too)."""
    excluded = set(held.get(corpus.name, ()))
    for pair in read_pairs(*corpus.paths()):
        if pair not in excluded:
            yield pair


def train_tokenizer(config: Config, corpora: list[CorpusConfig],
                    held: dict[str, list[tuple[str, str]]]) -> Tokenizer:
    """SentencePiece on a seeded sample (reservoir) of at most tokenizer.max_sentences lines
    per model; all lines, in corpus order (sources, then targets), when they fit."""
    limit, seed = config.tokenizer.max_sentences, config.train.seed

    def side_lines(side: int) -> Iterator[str]:
        for corpus in corpora:
            for pair in training_lines(corpus, held):
                if pair[side].strip():
                    yield pair[side]

    if config.tokenizer.joint:
        lines = reservoir(chain_sides(side_lines(0), side_lines(1)), limit, seed)
        return Tokenizer(train_sentencepiece(lines, config.tokenizer, seed))
    return Tokenizer(train_sentencepiece(reservoir(side_lines(0), limit, seed),
                                         config.tokenizer, seed),
                     train_sentencepiece(reservoir(side_lines(1), limit, seed),
                                         config.tokenizer, seed))


def chain_sides(first: Iterator[str], second: Iterator[str]) -> Iterator[str]:
    yield from first
    yield from second


def reservoir(lines: Iterator[str], limit: int, seed: int) -> list[str]:
    """At most ``limit`` lines, a uniform seeded sample; all of them, in order, when they fit."""
    rng = random.Random(seed)
    sample: list[str] = []
    for seen, line in enumerate(lines):
        if seen < limit:
            sample.append(line)
        else:
            slot = rng.randrange(seen + 1)
            if slot < limit:
                sample[slot] = line
    return sample


# ---- encoding with several processes ---------------------------------------------------------
def encode_corpora(config: Config, folder: Path, tokenizer: Tokenizer,
                   corpora: list[CorpusConfig], held: dict[str, list[tuple[str, str]]],
                   held_sources: set[str], workers: int | None) -> list[dict[str, Any]]:
    """Encode, filter and write every corpus; returns per-corpus statistics and checksums."""
    dtype = token_dtype(max(len(tokenizer.src), len(tokenizer.tgt)))
    workers = workers or config.data.prepare_workers
    models = tokenizer.model_bytes()
    results = []
    with encoder_pool(workers, models) as run:
        for corpus in corpora:
            rule = LengthFilter(corpus.max_len or config.data.max_len,
                                corpus.max_len_ratio or config.data.max_len_ratio)
            writers = {side: ShardWriter(folder, corpus.name, side, dtype) for side in SIDES}
            stats = FilterStats(held_out=len(held.get(corpus.name, ())))
            tasks = chunk_tasks(corpus, held, held_sources, rule, dtype.name, stats)
            for chunk in run(tasks):
                writers["src"].append(chunk.src_tokens, chunk.src_lengths)
                writers["tgt"].append(chunk.tgt_tokens, chunk.tgt_lengths)
                stats.add(chunk.stats)
            checksums = {k: v for side in SIDES for k, v in writers[side].close().items()}
            if not stats.kept:
                raise DataError(f"corpus {corpus.name}: no sentence pair is left after "
                                "filtering")
            results.append({"name": corpus.name, "weight": corpus.weight, **stats.as_dict(),
                            "checksums": checksums})
    return results


def chunk_tasks(corpus: CorpusConfig, held: dict[str, list[tuple[str, str]]],
                held_sources: set[str], rule: LengthFilter, dtype: str, stats: FilterStats
                ) -> Iterator[tuple[list[str], list[str], LengthFilter, str]]:
    """Chunks of CHUNK_PAIRS training pairs; pairs whose source was held out are dropped
    (counted in ``stats.holdout_duplicate``)."""
    src_lines: list[str] = []
    tgt_lines: list[str] = []
    for src, tgt in training_lines(corpus, held):
        if src in held_sources:
            stats.holdout_duplicate += 1
            continue
        src_lines.append(src)
        tgt_lines.append(tgt)
        if len(src_lines) == CHUNK_PAIRS:
            yield src_lines, tgt_lines, rule, dtype
            src_lines, tgt_lines = [], []
    if src_lines:
        yield src_lines, tgt_lines, rule, dtype


class encoder_pool:  # noqa: N801 (used as a context manager factory)
    """``with encoder_pool(workers, models) as run: for chunk in run(tasks)``: chunks encoded
    in order. Worker processes start only for a corpus of more than one chunk; then at most
    2 x workers chunks are in flight (bounded memory)."""

    def __init__(self, workers: int, models: tuple[bytes, bytes | None]):
        self.workers = workers
        self.models = models
        self.pool = None
        self.loaded_here = False

    def __enter__(self):
        return self.run

    def __exit__(self, *exc_info) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()

    def run(self, tasks: Iterator) -> Iterator[EncodedChunk]:
        tasks = iter(tasks)
        first = [task for task in (next(tasks, None), next(tasks, None)) if task is not None]
        if self.workers == 1 or len(first) < 2:
            if not self.loaded_here:
                load_processors(*self.models)
                self.loaded_here = True
            yield from map(encode_chunk, itertools.chain(first, tasks))
            return
        if self.pool is None:
            context = multiprocessing.get_context("spawn")
            self.pool = context.Pool(self.workers, load_processors, self.models)
        pending: deque = deque()
        for task in itertools.chain(first, tasks):
            pending.append(self.pool.apply_async(encode_chunk, (task,)))
            if len(pending) >= 2 * self.workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


# ---- shortlist and opening -------------------------------------------------------------------
def build_shortlist(config: Config, folder: Path, tokenizer: Tokenizer,
                    manifest: dict[str, Any]) -> Shortlist:
    """The shortlist from (at most SHORTLIST_SAMPLE_PAIRS, seeded) training pairs."""
    train = open_training_set(folder, manifest)
    count = len(train)
    chosen = None
    if count > SHORTLIST_SAMPLE_PAIRS:
        rng = np.random.default_rng(config.train.seed)
        chosen = np.sort(rng.choice(count, SHORTLIST_SAMPLE_PAIRS, replace=False))
    sides = [gather(train, side, chosen) for side in SIDES]
    cfg = config.train
    return Shortlist.from_arrays(*sides[0], *sides[1], len(tokenizer.src), len(tokenizer.tgt),
                                 cfg.shortlist_per_source, cfg.shortlist_frequent)


def gather(train: TrainingSet, side: str, chosen: np.ndarray | None
           ) -> tuple[np.ndarray, np.ndarray]:
    """(flat ids, lengths) of one side of the pairs ``chosen`` (global indices, sorted; None:
    all), gathered with array indexing, corpus by corpus."""
    flats, lengths = [], []
    for number, corpus in enumerate(train.corpora):
        shard = corpus.src if side == "src" else corpus.tgt
        if chosen is None:
            local = np.arange(len(shard))
        else:
            start, stop = train.starts[number], train.starts[number + 1]
            local = chosen[(chosen >= start) & (chosen < stop)] - start
        counts = np.asarray(shard.lengths, dtype=np.int64)[local]
        begins = np.asarray(shard.offsets)[local]
        starts = np.repeat(begins, counts) + positions_within(counts)
        flats.append(np.asarray(shard.tokens)[starts].astype(np.int64))
        lengths.append(counts)
    return np.concatenate(flats), np.concatenate(lengths)


def open_training_set(folder: Path, manifest: dict[str, Any]) -> TrainingSet:
    dtype = np.dtype(manifest["token_dtype"])
    return TrainingSet([
        CorpusShards(c["name"], TokenShard.open(folder, c["name"], "src", dtype),
                     TokenShard.open(folder, c["name"], "tgt", dtype), c["weight"])
        for c in manifest["corpora"]])


def open_prepared(config: Config, folder: Path) -> PreparedData:
    """Memory-map prepared data (no encoding, no per-pair objects for the training set)."""
    manifest = read_manifest(folder)
    if manifest is None:
        raise DataError(f"no prepared data in {folder} (run s2s-prepare)")
    tokenizer = load_tokenizer_files(folder)
    valid_src = read_lines(folder / "valid.src")
    valid_ref = read_lines(folder / "valid.tgt")
    src_limit = config.model.max_src_len
    valid = ParallelData([ids[:src_limit] for ids in tokenizer.src.encode(valid_src)],
                         tokenizer.tgt.encode(valid_ref))
    shortlist_file = folder / "shortlist.pt"
    shortlist = (Shortlist.from_state_dict(load_checkpoint(shortlist_file, SHORTLIST_FORMAT))
                 if shortlist_file.is_file() else None)
    return PreparedData(tokenizer, open_training_set(folder, manifest), valid, valid_src,
                        valid_ref, manifest, shortlist)
