"""Subword regularization (Kudo 2018): sampled SentencePiece segmentations of training pairs.

With ``tokenizer.sampled_copies`` K > 0 the prepare step writes, next to each corpus's
deterministic encoding (segmentation 0), K sampled encodings of every kept pair (segmentations
1..K: SentencePiece sampling, ``tokenizer.sampling_alpha``), seeded per corpus, chunk,
segmentation and side, so the files do not depend on the number of workers. Each epoch of
training draws its pairs as before (corpus weights keep their meaning) and, for every draw, one
of the 1 + K segmentations, uniformly (``choose_segmentations``): the deterministic one stays
in the mix, as it is the one validation and decoding see. Validation pairs, decoding and the
model file are never sampled.

numpy and SentencePiece only: the prepare step's workers import it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import sentencepiece as spm

# SentencePiece treats seed 2**32 - 1 as "not set" (its default seed).
_SPM_SEEDS = 2**32 - 1
_PLAN_STREAM = 0x5E6


@dataclass(frozen=True)
class SegmentSampling:
    """``copies`` sampled segmentations per pair, with smoothing (bpe: dropout) ``alpha``."""

    alpha: float
    copies: int
    seed: int


def sampling_seed(seed: int, corpus: str, chunk: int, segmentation: int, side: int) -> int:
    """SentencePiece's seed for one side of one chunk's sampled segmentation."""
    key = f"{seed}/{corpus}/{chunk}/{segmentation}/{side}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") % _SPM_SEEDS


def sample_encode(processor: spm.SentencePieceProcessor, lines: list[str], alpha: float,
                  seed: int) -> list[list[int]]:
    """A sampled segmentation of each line (from the whole lattice, nbest_size -1), the same
    for the same lines and seed: SentencePiece's generator is reseeded and one thread encodes
    (its thread pool hands lines to threads in no fixed order)."""
    spm.set_random_generator_seed(seed)
    return processor.encode(lines, out_type=int, enable_sampling=True, alpha=alpha,
                            nbest_size=-1, num_threads=1)


def choose_segmentations(draws: int, segmentations: int, seed: int, epoch: int) -> np.ndarray:
    """(draws,) int64: the segmentation of each of an epoch's draws, uniform over
    ``segmentations``, from a generator of its own (seed, epoch): the batch plan's other
    random streams stay the ones it has without sampling."""
    rng = np.random.default_rng([seed % 2**64, epoch, _PLAN_STREAM])
    return rng.integers(segmentations, size=draws, dtype=np.int64)
