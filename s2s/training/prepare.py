"""The prepare step: corpora -> SentencePiece model, memory-mapped token shards, validation
set and shortlist, in a folder described by a manifest.

    manifest.json          config hash, input files, tokenizer hash, per-corpus counts and
                           filtering statistics, checksums of every file written
    spm.src.model [spm.tgt.model]
    <corpus>.src|tgt.*     token shards (s2s.training.shards), and with
                           tokenizer.sampled_copies those of the sampled segmentations
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
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.pool import Pool
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
from s2s.config import MAX_SAMPLED_COPIES, Config, CorpusConfig, expand_env
from s2s.ragged import positions_within
from s2s.shortlist import Shortlist
from s2s.tokenizer import Tokenizer, train_sentencepiece
from s2s.training.corpus_files import (
    DataError,
    count_lines,
    file_identity,
    line_blocks,
    lines_at,
    read_lines,
    read_pairs,
    write_lines,
)
from s2s.training.data import ParallelData
from s2s.training.demo_task import demo_splits
from s2s.training.encoding import (
    ChunkTask,
    CorpusTextError,
    EncodedChunk,
    Exclusions,
    FileRange,
    FilterStats,
    LengthFilter,
    encode_chunk,
    load_processors,
)
from s2s.training.run_folder import load_tokenizer_files, save_tokenizer_files
from s2s.training.segmentation import SegmentSampling
from s2s.training.shards import (
    SIDES,
    CorpusShards,
    ShardWriter,
    TokenShard,
    TrainingSet,
    shard_files,
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
    # Without subword sampling the hash is the one of the code before it: prepared folders
    # stay current.
    off = set() if config.tokenizer.sampled_copies else {"sampling_alpha", "sampled_copies"}
    relevant = {"data": data, "tokenizer": config.tokenizer.model_dump(mode="json", exclude=off),
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
    return current_manifest(folder, config, tokenizer) is not None


def current_manifest(folder: Path, config: Config, tokenizer: Tokenizer | None
                     ) -> dict[str, Any] | None:
    """The folder's manifest if it matches the config, the input files and the tokenizer,
    else None."""
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("config_hash") != config_fingerprint(config):
        return None
    inputs = [file_identity(path) for path in input_files(config)]
    if manifest.get("inputs") != inputs:
        return None
    if tokenizer is None or manifest.get("tokenizer_sha256") == tokenizer.fingerprint():
        return manifest
    return None


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
    current = current_manifest(folder, config, tokenizer)
    if current is not None:
        return current
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
        "sampled_copies": config.tokenizer.sampled_copies,
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
        src_path, tgt_path = corpus.paths()
        total = count_lines(src_path)
        if corpus.holdout >= total:
            raise DataError(f"corpus {corpus.name}: holdout {corpus.holdout} >= its {total} pairs")
        rng = np.random.default_rng([seed, number])
        chosen = np.sort(rng.choice(total, corpus.holdout, replace=False))
        held[corpus.name] = list(zip(lines_at(src_path, chosen), lines_at(tgt_path, chosen)))
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


def train_tokenizer(config: Config, corpora: list[CorpusConfig],
                    held: dict[str, list[tuple[str, str]]]) -> Tokenizer:
    """SentencePiece on at most tokenizer.max_sentences lines per model (``sample_lines``)."""
    limit, seed = config.tokenizer.max_sentences, config.train.seed
    held_texts = [{pair[side] for pairs in held.values() for pair in pairs} for side in (0, 1)]
    files = [[(Path(corpus.paths()[side]), side) for corpus in corpora] for side in (0, 1)]
    if config.tokenizer.joint:
        lines = sample_lines(files[0] + files[1], held_texts, limit, seed)
        return Tokenizer(train_sentencepiece(lines, config.tokenizer, seed))
    return Tokenizer(*(train_sentencepiece(sample_lines(files[side], held_texts, limit, seed),
                                           config.tokenizer, seed) for side in (0, 1)))


def sample_lines(files: list[tuple[Path, int]], held_texts: list[set[str]], limit: int,
                 seed: int) -> list[str]:
    """Non-blank lines of ``files`` ((path, side) in order) for SentencePiece: all of them, in
    order, when they are at most ``limit``, else those at ``limit`` line numbers drawn with
    the seed. Lines equal to a held-out pair's side are left out. Files are read in binary
    blocks and only the chosen lines are decoded."""
    counts = [count_lines(path) for path, _ in files]
    total = sum(counts)
    chosen = (np.arange(total) if total <= limit else
              np.sort(np.random.default_rng(seed).choice(total, limit, replace=False)))
    lines: list[str] = []
    first = 0
    for (path, side), count in zip(files, counts):
        local = chosen[(chosen >= first) & (chosen < first + count)] - first
        lines.extend(line for line in lines_at(path, local)
                     if line.strip() and line not in held_texts[side])
        first += count
    return lines


# ---- encoding with several processes ---------------------------------------------------------
def encode_corpora(config: Config, folder: Path, tokenizer: Tokenizer,
                   corpora: list[CorpusConfig], held: dict[str, list[tuple[str, str]]],
                   held_sources: set[str], workers: int | None) -> list[dict[str, Any]]:
    """Encode, filter and write every corpus; returns per-corpus statistics and checksums."""
    dtype = token_dtype(max(len(tokenizer.src), len(tokenizer.tgt)))
    workers = workers or config.data.prepare_workers
    exclusions = Exclusions({name: frozenset(pairs) for name, pairs in held.items()},
                            frozenset(held_sources))
    sampling, copies = segment_sampling(config), config.tokenizer.sampled_copies
    results = []
    with encoder_pool(workers, (*tokenizer.model_bytes(), exclusions)) as run:
        for corpus in corpora:
            rule = LengthFilter(corpus.max_len or config.data.max_len,
                                corpus.max_len_ratio or config.data.max_len_ratio)
            remove_stale_segmentations(folder, corpus.name, copies)
            writers = [{side: ShardWriter(folder, corpus.name, side, dtype, segmentation)
                        for side in SIDES} for segmentation in range(1 + copies)]
            stats = FilterStats(held_out=len(held.get(corpus.name, ())))
            try:
                for chunk in run(chunk_tasks(corpus, rule, dtype.name, sampling)):
                    write_chunk(chunk, writers)
                    stats.add(chunk.stats)
            except CorpusTextError as error:
                raise DataError(str(error)) from None
            checksums = {k: v for sides in writers for side in SIDES
                         for k, v in sides[side].close().items()}
            if not stats.kept:
                raise DataError(f"corpus {corpus.name}: no sentence pair is left after "
                                "filtering")
            results.append({"name": corpus.name, "weight": corpus.weight, **stats.as_dict(),
                            "checksums": checksums})
    return results


def segment_sampling(config: Config) -> SegmentSampling | None:
    """The subword sampling the config asks for (None: none)."""
    tokenizer = config.tokenizer
    if not tokenizer.sampled_copies:
        return None
    return SegmentSampling(tokenizer.sampling_alpha, tokenizer.sampled_copies, config.train.seed)


def write_chunk(chunk: EncodedChunk, writers: list[dict[str, ShardWriter]]) -> None:
    """Append a chunk's kept pairs to the writers of each segmentation (0: deterministic)."""
    segmentations = [(chunk.src_tokens, chunk.src_lengths, chunk.tgt_tokens,
                      chunk.tgt_lengths), *chunk.sampled]
    for sides, (src_flat, src_lengths, tgt_flat, tgt_lengths) in zip(writers, segmentations):
        sides["src"].append(src_flat, src_lengths)
        sides["tgt"].append(tgt_flat, tgt_lengths)


def remove_stale_segmentations(folder: Path, corpus: str, copies: int) -> None:
    """Delete sampled segmentations beyond ``copies`` that an earlier prepare left."""
    for segmentation in range(copies + 1, MAX_SAMPLED_COPIES + 1):
        for side in SIDES:
            for path in shard_files(folder, corpus, side, segmentation).values():
                path.unlink(missing_ok=True)


def chunk_tasks(corpus: CorpusConfig, rule: LengthFilter, dtype: str,
                sampling: SegmentSampling | None = None) -> Iterator[ChunkTask]:
    """Chunks of CHUNK_PAIRS pairs, numbered: byte ranges of plain files (the workers read
    them), or lines read here from compressed files."""
    src_path, tgt_path = map(Path, corpus.paths())
    if src_path.suffix == ".gz" or tgt_path.suffix == ".gz":
        pairs = read_pairs(src_path, tgt_path)
        for number in itertools.count():
            if not (chunk := list(itertools.islice(pairs, CHUNK_PAIRS))):
                return
            lines = ([src for src, _ in chunk], [tgt for _, tgt in chunk])
            yield ChunkTask(corpus.name, rule, dtype, lines=lines, number=number,
                            sampling=sampling)
    (src_cuts, src_count), (tgt_cuts, tgt_count) = (chunk_cuts(path, CHUNK_PAIRS)
                                                    for path in (src_path, tgt_path))
    if src_count != tgt_count:
        raise DataError(f"{src_path} has {src_count} lines, {tgt_path} has {tgt_count}: "
                        "not line-aligned")
    ranges = zip(itertools.pairwise(src_cuts), itertools.pairwise(tgt_cuts))
    for number, (src_range, tgt_range) in enumerate(ranges):
        yield ChunkTask(corpus.name, rule, dtype, ranges=(FileRange(str(src_path), *src_range),
                                                          FileRange(str(tgt_path), *tgt_range)),
                        number=number, sampling=sampling)


def chunk_cuts(path: Path, lines_per_chunk: int) -> tuple[list[int], int]:
    """(byte offsets that cut the file into chunks of lines_per_chunk lines, first 0 and last
    past the end; the number of lines)."""
    cuts, count, offset = [0], 0, 0
    for _, ends in line_blocks(path):
        last_lines = np.arange((-count - 1) % lines_per_chunk, len(ends), lines_per_chunk)
        cuts.extend((offset + ends[last_lines] + 1).tolist())
        count += len(ends)
        offset += int(ends[-1]) + 1
    if count % lines_per_chunk:
        cuts.append(offset)
    return cuts, count


class encoder_pool:  # noqa: N801 (used as a context manager factory)
    """``with encoder_pool(workers, setup) as run: for chunk in run(tasks)``: chunks encoded
    in order. Worker processes start only for a corpus of more than one chunk; then at most
    2 x workers chunks are in flight (bounded memory)."""

    def __init__(self, workers: int, setup: tuple[bytes, bytes | None, Exclusions]):
        self.workers = workers
        self.setup = setup
        self.pool: Pool | None = None
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
                load_processors(*self.setup)
                self.loaded_here = True
            yield from map(encode_chunk, itertools.chain(first, tasks))
            return
        if self.pool is None:
            context = multiprocessing.get_context(worker_start_method())
            self.pool = context.Pool(self.workers, load_processors, self.setup)
        pending: deque = deque()
        for task in itertools.chain(first, tasks):
            pending.append(self.pool.apply_async(encode_chunk, (task,)))
            if len(pending) >= 2 * self.workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def worker_start_method() -> str:
    """Fork where the platform has it: a spawned worker imports the main module again (the
    training command imports torch: about 3 s per worker on 2 cores). The workers never call
    torch, so a fork after torch's threads started is safe for them."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


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
    copies = manifest.get("sampled_copies", 0)

    def sides(name: str, segmentation: int) -> tuple[TokenShard, TokenShard]:
        return (TokenShard.open(folder, name, "src", dtype, segmentation),
                TokenShard.open(folder, name, "tgt", dtype, segmentation))

    return TrainingSet([
        CorpusShards(c["name"], *sides(c["name"], 0), c["weight"],
                     [sides(c["name"], k) for k in range(1, copies + 1)])
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


def vocabulary_report(config: Config, tokenizer: Tokenizer, from_model_file: bool = False
                      ) -> tuple[str, str | None]:
    """A line with the effective vocabulary size(s), and a warning (None when there is none)
    when SentencePiece made fewer pieces than tokenizer.vocab_size asks for."""
    wanted = config.tokenizer.vocab_size
    sizes = {"joint": len(tokenizer.src)} if tokenizer.joint else {
        "source": len(tokenizer.src), "target": len(tokenizer.tgt)}
    line = "vocabulary: " + ", ".join(f"{size:,} {side} pieces" for side, size in sizes.items())
    if from_model_file:
        return line + " (the model file's SentencePiece models)", None
    short = {side: size for side, size in sizes.items() if size < wanted}
    if not short:
        return line, None
    got = ", ".join(f"{size:,} {side}" for side, size in short.items())
    return line, (
        f"tokenizer.vocab_size is {wanted:,} but SentencePiece made only {got} pieces: its "
        f"training text (at most tokenizer.max_sentences={config.tokenizer.max_sentences:,} "
        "sampled lines) has too few distinct characters and substrings for more (the limit is "
        "soft, hard_vocab_limit=false); lower tokenizer.vocab_size to silence this, or train on "
        "more text")
