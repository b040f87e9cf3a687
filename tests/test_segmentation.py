"""Subword regularization: sampled segmentations of training pairs, written by the prepare step
and drawn per epoch by the batch plan; off by default and then the same as before."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict

import pytest

from s2s.config import ConfigError, config_from_dict
from s2s.training import prepare as prepare_module
from s2s.training.data import BatchPlan
from s2s.training.demo_task import demo_splits
from s2s.training.prepare import config_fingerprint, open_prepared, prepare
from s2s.training.shards import CorpusShards, TokenShard, TrainingSet
from tests.test_data import make_data, make_plan


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    splits = demo_splits(300, 20, 1, seed=1)
    for split in ("train", "valid"):
        for side, lines in zip(("src", "tgt"), splits[split]):
            (folder / f"{split}.{side}").write_text("".join(f"{line}\n" for line in lines),
                                                    encoding="utf-8")
    return folder


def make_config(corpus, alpha=0.0, copies=0, seed=1, **data):
    return config_from_dict({
        "out_dir": str(corpus / "run"),
        "tokenizer": {"vocab_size": 60, "sampling_alpha": alpha, "sampled_copies": copies},
        "data": {"corpora": [{"name": "main", "src": str(corpus / "train.src"),
                              "tgt": str(corpus / "train.tgt")}],
                 "valid_src": str(corpus / "valid.src"), "valid_tgt": str(corpus / "valid.tgt"),
                 "max_len_ratio": 10, **data},
        "train": {"seed": seed, "batch_tokens": 300}})


def sampled_checksums(manifest) -> dict[str, str]:
    return {name: digest for name, digest in manifest["checksums"].items() if "sampled" in name}


def test_sampled_segmentations_differ_and_decode_to_the_same_text(corpus, tmp_path):
    config = make_config(corpus, alpha=0.1, copies=3)
    prepare(config, tmp_path / "prepared")
    data = open_prepared(config, tmp_path / "prepared")
    lines = [(corpus / f"train.{side}").read_text(encoding="utf-8").splitlines()
             for side in ("src", "tgt")]
    varied = 0
    for index in range(len(data.train)):
        segmentations = [data.train.pair(index, k) for k in range(4)]
        for side, vocab in enumerate((data.tokenizer.src, data.tokenizer.tgt)):
            texts = vocab.decode([ids.tolist() for ids in (seg[side] for seg in segmentations)])
            assert texts == [lines[side][index]] * 4
        varied += len({tuple(seg[0].tolist()) for seg in segmentations}) > 1
    assert varied > 0.8 * len(data.train)


def test_the_same_pair_is_read_in_different_segmentations_across_epochs(corpus, tmp_path):
    config = make_config(corpus, alpha=0.1, copies=3)
    prepare(config, tmp_path / "prepared")
    train = open_prepared(config, tmp_path / "prepared").train
    plan = BatchPlan(train, batch_tokens=300, bucket_size=3, seed=1)
    seen = defaultdict(set)
    for epoch in range(4):
        plan.epoch = epoch
        indices = [index for batch in plan.epoch_batches() for index in batch]
        assert sorted(index % len(train) for index in indices) == list(range(len(train)))
        for index in indices:
            seen[index % len(train)].add(tuple(train.segmented_pair(index)[0].tolist()))
    assert sum(len(sources) > 1 for sources in seen.values()) > 0.7 * len(train)


def test_batches_are_cut_by_the_drawn_segmentations_lengths():
    src = [[4 + i % 40, 4 + i // 40] for i in range(100)]
    long = [[5] * 30 for _ in range(100)]      # segmentation 1: every target 30 pieces
    train = TrainingSet([CorpusShards(
        "a", TokenShard.from_lists(src), TokenShard.from_lists([[6]] * 100), 1.0,
        [(TokenShard.from_lists(src), TokenShard.from_lists(long))])])
    plan = BatchPlan(train, batch_tokens=100, bucket_size=2, seed=1)
    for _ in range(len(plan)):
        batch = plan.next_batch()
        assert batch.tgt_out.numel() <= 100 or len(batch.tgt_out) == 1


def test_sampling_is_reproducible_with_the_seed(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(prepare_module, "CHUNK_PAIRS", 40)   # several chunks
    tokenizer = open_prepared_tokenizer(corpus, tmp_path)
    one = prepare(make_config(corpus, 0.1, 2), tmp_path / "one", tokenizer, workers=1)
    two = prepare(make_config(corpus, 0.1, 2), tmp_path / "two", tokenizer, workers=2)
    other = prepare(make_config(corpus, 0.1, 2, seed=2), tmp_path / "other", tokenizer)
    assert len(sampled_checksums(one)) == 12                  # 2 copies x 2 sides x 3 files
    assert one["checksums"] == two["checksums"]
    tokens = [name for name in sampled_checksums(one) if name.endswith(".tokens")]
    assert all(one["checksums"][name] != other["checksums"][name] for name in tokens)


def open_prepared_tokenizer(corpus, tmp_path):
    prepare(make_config(corpus), tmp_path / "plain")
    return open_prepared(make_config(corpus), tmp_path / "plain").tokenizer


def test_sampling_leaves_the_deterministic_shards_as_they_are(corpus, tmp_path):
    off = prepare(make_config(corpus), tmp_path / "off")
    on = prepare(make_config(corpus, 0.1, 2), tmp_path / "on")
    deterministic = {k: v for k, v in on["checksums"].items() if "sampled" not in k}
    assert deterministic == off["checksums"]
    assert not list((tmp_path / "off").glob("*sampled*"))


def test_a_sampled_segmentation_never_breaks_the_length_filter(corpus, tmp_path):
    config = make_config(corpus, alpha=0.1, copies=2, max_len=14)
    prepare(config, tmp_path / "prepared")
    train = open_prepared(config, tmp_path / "prepared").train
    assert train.segmentations == 3
    assert train.segmented_src_lens.max() <= 14 and train.segmented_tgt_lens.max() <= 15
    assert len(train.segmented_src_lens) == 3 * len(train)


def test_validation_pairs_are_not_sampled(corpus, tmp_path):
    config = make_config(corpus, alpha=0.5, copies=2)
    prepare(config, tmp_path / "prepared")
    data = open_prepared(config, tmp_path / "prepared")
    assert data.valid.src == data.tokenizer.src.encode(data.valid_src)
    assert data.valid.tgt == data.tokenizer.tgt.encode(data.valid_ref)
    assert data.valid.src == open_prepared(config, tmp_path / "prepared").valid.src


def test_changing_the_sampling_prepares_again(corpus, tmp_path):
    folder = tmp_path / "prepared"
    prepare(make_config(corpus, alpha=0.1, copies=3), folder)
    fewer = prepare(make_config(corpus, alpha=0.1, copies=2), folder)
    assert fewer["sampled_copies"] == 2 and not list(folder.glob("*.sampled3.*"))
    sharper = prepare(make_config(corpus, alpha=0.5, copies=2), folder)
    assert sampled_checksums(sharper) != sampled_checksums(fewer)
    off = prepare(make_config(corpus), folder)
    assert off["sampled_copies"] == 0 and not list(folder.glob("*sampled*"))
    assert open_prepared(make_config(corpus), folder).train.segmentations == 1


def test_sampling_off_keeps_the_config_hash_of_existing_prepared_folders():
    config = config_from_dict({
        "data": {"corpora": [{"name": "main", "src": "train.src", "tgt": "train.tgt"}],
                 "valid_src": "valid.src", "valid_tgt": "valid.tgt"},
        "tokenizer": {"vocab_size": 60}})
    # the hash before subword sampling existed: prepared folders stay current
    assert config_fingerprint(config) == (
        "b7dfdc33fd338e1fdc899fe4eda88927f7b8af00f756e8c5c0a138ca8e29cc7e")
    sampled = config.model_copy(update={"tokenizer": config.tokenizer.model_copy(
        update={"sampling_alpha": 0.1, "sampled_copies": 1})})
    assert config_fingerprint(sampled) != config_fingerprint(config)


def test_sampling_off_keeps_the_batch_plan():
    plan = make_plan(make_data(), seed=3)
    batches = []
    for epoch in range(2):
        plan.epoch = epoch
        batches.append(plan.epoch_batches())
    # the plan's batches before subword sampling existed
    assert hashlib.sha256(json.dumps(batches).encode()).hexdigest() == (
        "30f8c377e04f02a3feb04685dc95f0e22a2760d04e6175947a660ffbc4345fd2")


@pytest.mark.parametrize("tokenizer, message", [
    ({"sampling_alpha": 0.1}, "go together"),
    ({"sampled_copies": 2}, "go together"),
    ({"model_type": "bpe", "sampling_alpha": 1.0, "sampled_copies": 2}, "BPE-dropout"),
])
def test_inconsistent_sampling_settings_are_refused(tokenizer, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"tokenizer": tokenizer})
