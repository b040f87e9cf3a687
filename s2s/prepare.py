"""From a config to encoded training and validation data and a tokenizer.

The SentencePiece model(s) are trained once per run and kept in the run folder
(``spm.src.model`` and, for separate vocabularies, ``spm.tgt.model``), so a resumed run encodes
its data exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from s2s.config import Config
from s2s.data import ParallelData, filter_pairs, read_parallel
from s2s.demo_task import demo_splits
from s2s.tokenizer import Tokenizer


@dataclass
class PreparedData:
    tokenizer: Tokenizer
    train: ParallelData
    valid: ParallelData
    valid_src: list[str]
    valid_ref: list[str]


def raw_splits(config: Config) -> dict[str, tuple[list[str], list[str]]]:
    """{'train': (src_lines, tgt_lines), 'valid': ...} from files or the demo generator."""
    data = config.data
    if data.corpus == "demo":
        splits = demo_splits(data.demo_train_size, data.demo_valid_size, data.demo_test_size,
                             config.train.seed)
        return {"train": splits["train"], "valid": splits["valid"]}
    return {
        name: read_parallel(data.path(split, data.src_lang), data.path(split, data.tgt_lang))
        for name, split in (("train", data.train_split), ("valid", data.valid_split))
    }


def load_or_train_tokenizer(config: Config, run_dir: Path, train_src: list[str],
                            train_tgt: list[str]) -> Tokenizer:
    src_file, tgt_file = run_dir / "spm.src.model", run_dir / "spm.tgt.model"
    if src_file.is_file():
        tgt_bytes = tgt_file.read_bytes() if tgt_file.is_file() else None
        return Tokenizer(src_file.read_bytes(), tgt_bytes)
    tokenizer = Tokenizer.train(train_src, train_tgt, config.tokenizer, config.train.seed)
    src_bytes, tgt_bytes = tokenizer.model_bytes()
    run_dir.mkdir(parents=True, exist_ok=True)
    if tgt_bytes is not None:
        _write_atomic(tgt_file, tgt_bytes)
    _write_atomic(src_file, src_bytes)
    return tokenizer


def _write_atomic(path: Path, data: bytes) -> None:
    temp = path.with_suffix(".tmp")
    temp.write_bytes(data)
    temp.replace(path)


def prepare_data(config: Config, run_dir: Path, tokenizer: Tokenizer | None = None
                 ) -> PreparedData:
    """Read, tokenize and filter. ``tokenizer`` (e.g. from a training state) skips training."""
    splits = raw_splits(config)
    train_src, train_tgt = splits["train"]
    if tokenizer is None:
        tokenizer = load_or_train_tokenizer(config, run_dir, train_src, train_tgt)
    train = ParallelData(tokenizer.src.encode(train_src), tokenizer.tgt.encode(train_tgt))
    train = filter_pairs(train, config.data.max_len, config.data.max_len_ratio)
    valid_src, valid_ref = splits["valid"]
    if config.train.valid_max_sentences:
        valid_src = valid_src[: config.train.valid_max_sentences]
        valid_ref = valid_ref[: config.train.valid_max_sentences]
    src_limit = config.model.max_src_len
    valid = ParallelData([ids[:src_limit] for ids in tokenizer.src.encode(valid_src)],
                         tokenizer.tgt.encode(valid_ref))
    return PreparedData(tokenizer, train, valid, valid_src, valid_ref)
