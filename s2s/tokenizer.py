"""SentencePiece subwords: training, encoding and decoding, with the project's special ids
(s2s.constants)."""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Iterable, Sequence

import sentencepiece as spm

from s2s.config import TokenizerConfig
from s2s.constants import BOS_ID, EOS_ID, PAD_ID, SPECIAL_IDS, UNK_ID


class TokenizerError(ValueError):
    """A SentencePiece model that cannot be used by this project."""


def train_sentencepiece(
    sentences: Iterable[str], config: TokenizerConfig, seed: int = 1
) -> bytes:
    """Train a SentencePiece model on ``sentences`` and return its serialized bytes."""
    corpus = [line for line in sentences if line.strip()]
    if len(corpus) > config.max_sentences:
        corpus = random.Random(seed).sample(corpus, config.max_sentences)
    if not corpus:
        raise TokenizerError("no non-empty sentence to train SentencePiece on")
    model = io.BytesIO()
    try:
        _train_spm(corpus, model, config)
    except RuntimeError as error:
        raise TokenizerError(f"SentencePiece training failed: {error}") from None
    return model.getvalue()


def _train_spm(corpus: list[str], model: io.BytesIO, config: TokenizerConfig) -> None:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=model,
        model_type=config.model_type,
        vocab_size=config.vocab_size,
        character_coverage=config.character_coverage,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        hard_vocab_limit=False,
        num_threads=2,
        minloglevel=2,
    )


# SentencePiece's list calls cost about 80 us once (they go through a thread pool), one text at a
# time about 3 us more per text than a list call: a service translating single sentences called
# the list form for every request and every hypothesis.
LIST_CALL_MIN = 32


class Vocab:
    """One SentencePiece model: text <-> piece ids (without BOS/EOS)."""

    def __init__(self, model_bytes: bytes):
        self.model_bytes = bytes(model_bytes)
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.LoadFromSerializedProto(self.model_bytes)
        except (RuntimeError, OSError) as error:
            raise TokenizerError(f"not a SentencePiece model: {error}") from None
        ids = (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
        if ids != SPECIAL_IDS:
            raise TokenizerError(f"special ids {ids} differ from the project's {SPECIAL_IDS}")

    def __len__(self) -> int:
        return self._sp.get_piece_size()

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        texts = list(texts)
        if len(texts) < LIST_CALL_MIN:
            return [self._sp.encode(text, out_type=int) for text in texts]
        return self._sp.encode(texts, out_type=int)

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        pieces = [[i for i in seq if i not in SPECIAL_IDS] for seq in ids]
        if len(pieces) < LIST_CALL_MIN:
            return [self._sp.decode(seq) for seq in pieces]
        return self._sp.decode(pieces)

    def id_to_piece(self, ids: Sequence[int]) -> list[str]:
        return [self._sp.id_to_piece(i) for i in ids]


class Tokenizer:
    """Source and target vocabularies (the same object when the vocabulary is joint)."""

    def __init__(self, src_model: bytes, tgt_model: bytes | None = None):
        self.src = Vocab(src_model)
        self.tgt = self.src if tgt_model is None else Vocab(tgt_model)

    @property
    def joint(self) -> bool:
        return self.src is self.tgt

    @classmethod
    def train(
        cls, src_lines: Sequence[str], tgt_lines: Sequence[str], config: TokenizerConfig, seed: int
    ) -> Tokenizer:
        if config.joint:
            return cls(train_sentencepiece([*src_lines, *tgt_lines], config, seed))
        return cls(
            train_sentencepiece(src_lines, config, seed),
            train_sentencepiece(tgt_lines, config, seed),
        )

    def model_bytes(self) -> tuple[bytes, bytes | None]:
        return self.src.model_bytes, None if self.joint else self.tgt.model_bytes

    def fingerprint(self) -> str:
        """SHA-256 over the SentencePiece model(s): equal fingerprints, equal vocabularies."""
        digest = hashlib.sha256()
        for part in self.model_bytes():
            digest.update(part or b"-")
        return digest.hexdigest()
