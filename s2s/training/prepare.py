"""From a config to encoded training and validation data and a tokenizer.

The corpus comes from one of ``CORPUS_READERS`` (``data.corpus`` in the config). The
SentencePiece model(s) are trained once per run and kept in the run folder, so a resumed run
encodes its data exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from s2s.config import Config
from s2s.tokenizer import Tokenizer
from s2s.training.data import ParallelData, filter_pairs, read_parallel
from s2s.training.demo_task import demo_splits
from s2s.training.run_folder import RunFolder

Split = tuple[list[str], list[str]]


@dataclass
class PreparedData:
    tokenizer: Tokenizer
    train: ParallelData
    valid: ParallelData
    valid_src: list[str]
    valid_ref: list[str]


def read_file_corpus(config: Config) -> dict[str, Split]:
    """Line-aligned files ``<corpus_dir>/<split>.<lang>``."""
    data = config.data
    return {
        name: read_parallel(data.path(split, data.src_lang), data.path(split, data.tgt_lang))
        for name, split in (("train", data.train_split), ("valid", data.valid_split))
    }


def generate_demo_corpus(config: Config) -> dict[str, Split]:
    """The built-in demo task (s2s.training.demo_task), generated from the run's seed."""
    data = config.data
    splits = demo_splits(data.demo_train_size, data.demo_valid_size, data.demo_test_size,
                         config.train.seed)
    return {"train": splits["train"], "valid": splits["valid"]}


CORPUS_READERS: dict[str, Callable[[Config], dict[str, Split]]] = {
    "files": read_file_corpus,
    "demo": generate_demo_corpus,
}


def load_or_train_tokenizer(config: Config, run: RunFolder, train_src: list[str],
                            train_tgt: list[str]) -> Tokenizer:
    tokenizer = run.load_tokenizer()
    if tokenizer is None:
        tokenizer = Tokenizer.train(train_src, train_tgt, config.tokenizer, config.train.seed)
        run.save_tokenizer(tokenizer)
    return tokenizer


def prepare_data(config: Config, run: RunFolder, tokenizer: Tokenizer | None = None
                 ) -> PreparedData:
    """Read, tokenize and filter. ``tokenizer`` (e.g. from a training state) skips training."""
    splits = CORPUS_READERS[config.data.corpus](config)
    train_src, train_tgt = splits["train"]
    if tokenizer is None:
        tokenizer = load_or_train_tokenizer(config, run, train_src, train_tgt)
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
