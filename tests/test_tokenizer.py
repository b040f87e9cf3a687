"""SentencePiece tokenizer: the project's special ids, round trips, separate vocabularies."""

from __future__ import annotations

import pytest

from s2s.config import TokenizerConfig
from s2s.constants import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from s2s.tokenizer import LIST_CALL_MIN, Tokenizer, TokenizerError, Vocab


def test_special_ids_are_0_to_3():
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)


def test_trained_tokenizer_uses_the_special_ids(tokenizer):
    assert tokenizer.src.id_to_piece([PAD_ID, UNK_ID, BOS_ID, EOS_ID]) == [
        "<pad>", "<unk>", "<s>", "</s>"]
    assert tokenizer.src.encode(["\u4e2d"])[0][-1] == UNK_ID  # a character never seen


def test_encode_decode_round_trip_on_training_sentences(tokenizer, corpus):
    sentences = corpus[0] + corpus[1]
    encoded = tokenizer.src.encode(sentences)
    assert all(ids and min(ids) > EOS_ID for ids in encoded)  # real pieces, no specials
    assert tokenizer.src.decode(encoded) == sentences


def test_short_and_long_lists_encode_and_decode_alike(tokenizer, corpus):
    """Short lists go text by text, long ones in one SentencePiece call: same pieces, same text."""
    sentences = ((corpus[0] + corpus[1]) * LIST_CALL_MIN)[: 2 * LIST_CALL_MIN]
    one_call = tokenizer.src.encode(sentences)
    assert [tokenizer.src.encode([s])[0] for s in sentences] == one_call
    with_specials = [[BOS_ID, *ids, EOS_ID] for ids in one_call]
    assert [tokenizer.src.decode([ids])[0] for ids in with_specials] == sentences
    assert tokenizer.src.decode(with_specials) == sentences


def test_separate_vocabularies_give_two_different_models(corpus):
    src, tgt = corpus
    tokenizer = Tokenizer.train(src, tgt, TokenizerConfig(vocab_size=30, joint=False), seed=1)
    assert not tokenizer.joint
    assert tokenizer.src is not tokenizer.tgt
    assert tokenizer.src.model_bytes != tokenizer.tgt.model_bytes
    assert tokenizer.model_bytes()[1] is not None
    assert tokenizer.tgt.decode(tokenizer.tgt.encode(tgt)) == tgt


@pytest.mark.parametrize("blob", [b"", b"not a sentencepiece model", bytes(range(256))],
                         ids=["empty", "text", "bytes"])
def test_invalid_model_bytes_raise_tokenizer_error(blob):
    with pytest.raises(TokenizerError):
        Vocab(blob)
    with pytest.raises(TokenizerError):
        Tokenizer(blob)
