"""The prepare step: memory-mapped shards equal to direct encoding, workers give the same files,
reuse while current, weighted corpora, gzip, seeded holdouts, fine-tuning from a model file."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import torch

from s2s.config import config_from_dict
from s2s.training import prepare as prepare_module
from s2s.training.corpus_files import DataError
from s2s.training.demo_task import demo_splits
from s2s.training.prepare import open_prepared, prepare
from s2s.training.trainer import Trainer, fine_tuning_config
from tests.helpers import tiny_demo_config


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    splits = demo_splits(300, 20, 1, seed=1)
    for split in ("train", "valid"):
        src, tgt = splits[split]
        (folder / f"{split}.src").write_text("".join(f"{s}\n" for s in src), encoding="utf-8")
        (folder / f"{split}.tgt").write_text("".join(f"{t}\n" for t in tgt), encoding="utf-8")
    src, tgt = splits["train"]
    with gzip.open(folder / "small.src.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(f"{s}\n" for s in src[:60])
    with gzip.open(folder / "small.tgt.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(f"{t}\n" for t in tgt[:60])
    return folder


def make_config(corpus, out, **data):
    corpora = data.pop("corpora", [{"name": "main", "src": str(corpus / "train.src"),
                                     "tgt": str(corpus / "train.tgt")}])
    return config_from_dict({
        "out_dir": str(out), "tokenizer": {"vocab_size": 60},
        "data": {"corpora": corpora, "valid_src": str(corpus / "valid.src"),
                 "valid_tgt": str(corpus / "valid.tgt"), "max_len_ratio": 10, **data},
        "model": {"emb_dim": 16, "enc_hidden": 32, "dec_hidden": 32},
        "train": {"threads": 1, "batch_tokens": 300}})


def test_prepared_pairs_equal_direct_encoding(corpus, tmp_path):
    config = make_config(corpus, tmp_path / "run")
    prepare(config, tmp_path / "prepared")
    data = open_prepared(config, tmp_path / "prepared")
    src_lines = (corpus / "train.src").read_text(encoding="utf-8").splitlines()
    expected = data.tokenizer.src.encode(src_lines)
    kept = [ids for ids in expected if ids]
    assert len(data.train) == len(kept) == 300
    for index in (0, 17, 299):
        assert data.train.pair(index)[0].tolist() == kept[index]
    assert data.train.corpora[0].src.tokens.dtype == np.uint16


def test_one_and_two_workers_write_the_same_files(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(prepare_module, "CHUNK_PAIRS", 40)   # several chunks
    config = make_config(corpus, tmp_path / "run")
    one = prepare(config, tmp_path / "one", workers=1)
    two = prepare(config, tmp_path / "two", workers=2)
    assert one["checksums"] == two["checksums"]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_corpus_line_that_is_not_utf8_is_a_data_error(corpus, tmp_path, monkeypatch, workers):
    monkeypatch.setattr(prepare_module, "CHUNK_PAIRS", 40)
    lines = (corpus / "train.tgt").read_bytes().splitlines(keepends=True)
    (tmp_path / "bad.tgt").write_bytes(b"".join(lines[:250]) + b"caf\xe9\n" + b"".join(lines[251:]))
    config = make_config(corpus, tmp_path / "run", corpora=[
        {"name": "bad", "src": str(corpus / "train.src"), "tgt": str(tmp_path / "bad.tgt")}])
    with pytest.raises(DataError, match="bad.tgt is not UTF-8"):
        prepare(config, tmp_path / "prepared", tokenizer=open_prepared_tokenizer(corpus, tmp_path),
                workers=workers)


def test_sides_with_different_line_counts_are_a_data_error(corpus, tmp_path):
    (tmp_path / "short.tgt").write_text("one line\n", encoding="utf-8")
    config = make_config(corpus, tmp_path / "run", corpora=[
        {"name": "short", "src": str(corpus / "train.src"), "tgt": str(tmp_path / "short.tgt")}])
    with pytest.raises(DataError, match="not line-aligned"):
        prepare(config, tmp_path / "prepared", tokenizer=open_prepared_tokenizer(corpus, tmp_path))


def open_prepared_tokenizer(corpus, tmp_path):
    """A tokenizer trained by preparing the clean corpus (so the bad file is only encoded)."""
    config = make_config(corpus, tmp_path / "clean_run")
    prepare(config, tmp_path / "clean")
    return open_prepared(config, tmp_path / "clean").tokenizer


def test_current_prepared_data_is_not_written_again(corpus, tmp_path):
    config = make_config(corpus, tmp_path / "run")
    prepare(config, tmp_path / "prepared")
    shard = tmp_path / "prepared" / "main.src.tokens"
    before = shard.stat().st_mtime_ns
    prepare(config, tmp_path / "prepared")
    assert shard.stat().st_mtime_ns == before


def test_a_changed_config_prepares_again(corpus, tmp_path):
    prepare(make_config(corpus, tmp_path / "run"), tmp_path / "prepared")
    manifest = prepare(make_config(corpus, tmp_path / "run", max_len=12), tmp_path / "prepared")
    assert manifest["corpora"][0]["too_long"] > 0


def test_weighted_gzip_corpora_are_counted_apart(corpus, tmp_path):
    corpora = [{"name": "main", "src": str(corpus / "train.src"),
                "tgt": str(corpus / "train.tgt"), "weight": 1},
               {"name": "small", "src": str(corpus / "small.src.gz"),
                "tgt": str(corpus / "small.tgt.gz"), "weight": 2}]
    config = make_config(corpus, tmp_path / "run", corpora=corpora)
    manifest = prepare(config, tmp_path / "prepared")
    counts = {c["name"]: (c["kept"], c["weight"]) for c in manifest["corpora"]}
    assert counts == {"main": (300, 1), "small": (60, 2)}
    data = open_prepared(config, tmp_path / "prepared")
    assert data.train.counts() == {"main": 300, "small": 60}


def test_holdout_is_seeded_and_kept_out_of_training(corpus, tmp_path):
    corpora = [{"name": "main", "src": str(corpus / "train.src"),
                "tgt": str(corpus / "train.tgt"), "holdout": 25}]
    config = make_config(corpus, tmp_path / "run", corpora=corpora)
    prepare(config, tmp_path / "a")
    prepare(config, tmp_path / "b")
    valid_a = (tmp_path / "a" / "valid.src").read_text()
    assert valid_a == (tmp_path / "b" / "valid.src").read_text()
    held = set(valid_a.splitlines()[20:])           # after the 20 validation-file pairs
    assert len(held) == 25
    data = open_prepared(config, tmp_path / "a")
    training = {data.tokenizer.src.decode([data.train.pair(i)[0].tolist()])[0]
                for i in range(len(data.train))}
    assert not held & training
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["corpora"][0]["held_out"] == 25


def test_fine_tuning_starts_from_the_model_file(tmp_path):
    base = Trainer.build(tiny_demo_config(tmp_path / "base", max_steps=3))
    base.train()
    from s2s.model.model_file import load_model_file

    loaded = load_model_file(tmp_path / "base" / "model.pt")
    config = fine_tuning_config(tiny_demo_config(tmp_path / "tuned", max_steps=1, lr=1e-4),
                                loaded)
    tuned = Trainer.build(config, init_from=loaded)
    for name, tensor in loaded.model.state_dict().items():
        assert torch.equal(tuned.model.state_dict()[name], tensor)
    assert tuned.data.tokenizer.src.model_bytes == loaded.tokenizer.src.model_bytes
    assert tuned.progress.step == 0 and not tuned.optimizer.state
