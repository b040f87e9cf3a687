"""Lexical shortlist (as in Marian): decode with only the target pieces a batch can need.

Built from the training data: for each source piece, the ``per_source`` target pieces most
associated with it (Dice coefficient of sentence co-occurrence), plus the ``frequent`` most
frequent target pieces and the special ids. At decoding time each sentence scores only its own
candidates (a few hundred of the full vocabulary): the shared part (specials and frequent pieces)
in one matrix product for all rows, the pieces listed for its source pieces apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from s2s.constants import PAD_ID, SHORTLIST_FREQUENT, SHORTLIST_PER_SOURCE, SPECIAL_IDS
from s2s.ragged import flatten, positions_within


@dataclass
class Restriction:
    """Which target ids each sentence of a batch may emit: ``shared`` (S,), sorted, for every
    sentence, starting with the special ids (so they keep their positions), plus ``own``
    (batch, P) ids for each sentence alone, PAD_ID where ``own_valid`` (batch, P) is False.
    Search works on positions in a sentence's output space: shared ids, then its own."""

    shared: torch.Tensor
    own: torch.Tensor
    own_valid: torch.Tensor


class Shortlist:
    def __init__(self, table: torch.Tensor, frequent: torch.Tensor, tgt_vocab_size: int):
        """table: (src_vocab, per_source) target ids, -1 where unused; frequent: (n,) ids."""
        self.table = table.long()
        self.frequent = frequent.long()
        self.tgt_vocab_size = tgt_vocab_size
        self.shared = torch.zeros(tgt_vocab_size, dtype=torch.bool)   # every sentence's
        self.shared[list(SPECIAL_IDS)] = True
        self.shared[self.frequent] = True
        self.shared_ids = self.shared.nonzero().squeeze(1)             # sorted, specials first

    @classmethod
    def build(cls, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]],
              src_vocab_size: int, tgt_vocab_size: int,
              per_source: int = SHORTLIST_PER_SOURCE,
              frequent: int = SHORTLIST_FREQUENT) -> Shortlist:
        src_flat, src_lengths = flatten(src)
        tgt_flat, tgt_lengths = flatten(tgt)
        return cls.from_arrays(src_flat, src_lengths, tgt_flat, tgt_lengths, src_vocab_size,
                               tgt_vocab_size, per_source, frequent)

    @classmethod
    def from_arrays(cls, src_flat: np.ndarray, src_lengths: np.ndarray, tgt_flat: np.ndarray,
                    tgt_lengths: np.ndarray, src_vocab_size: int, tgt_vocab_size: int,
                    per_source: int = SHORTLIST_PER_SOURCE,
                    frequent: int = SHORTLIST_FREQUENT) -> Shortlist:
        """``build`` from flat id arrays and per-pair lengths (prepared data)."""
        keys, src_counts, tgt_counts = _cooccurrences(src_flat, src_lengths, tgt_flat,
                                                      tgt_lengths, src_vocab_size, tgt_vocab_size)
        pair_keys, pair_counts = torch.unique(keys, return_counts=True)
        s, t = pair_keys // tgt_vocab_size, pair_keys % tgt_vocab_size
        dice = 2.0 * pair_counts / (src_counts[s] + tgt_counts[t])
        order = torch.sort(dice, descending=True, stable=True).indices
        order = order[torch.sort(s[order], stable=True).indices]   # by source, best first
        s_sorted, t_sorted = s[order], t[order]
        group_start = torch.searchsorted(s_sorted, s_sorted, side="left")
        rank = torch.arange(len(s_sorted)) - group_start
        keep = rank < per_source
        table = torch.full((src_vocab_size, per_source), -1, dtype=torch.long)
        table[s_sorted[keep], rank[keep]] = t_sorted[keep]
        top = torch.topk(tgt_counts, min(frequent, tgt_vocab_size)).indices
        return cls(table, top, tgt_vocab_size)

    def allowed(self, src: torch.Tensor) -> torch.Tensor:
        """src: (batch, src_len) ids (padding included) -> (batch, tgt_vocab) bool: each
        sentence's own candidates (specials, frequent pieces, pieces listed for its source
        pieces), which do not depend on the other sentences, so neither does its translation."""
        src = src.cpu()
        allowed = self.shared.repeat(src.size(0), 1)
        listed = self.table[src].flatten(1)                 # (batch, src_len * per_source)
        allowed.scatter_(1, listed.clamp(min=0), True)      # -1 (unused) -> PAD, a special
        return allowed

    def restriction(self, src: torch.Tensor) -> Restriction:
        """The batch's candidates on src's device: the pieces every sentence may use (specials
        and frequent pieces) once, and each sentence's own listed pieces apart, so the output
        layer scores about as many pieces per sentence as it has candidates, whatever the
        batch (a union over the batch grows to thousands of pieces)."""
        return self.restriction_of(self.allowed(src), src.device)

    def restriction_of(self, allowed: torch.Tensor, device: torch.device) -> Restriction:
        """The Restriction of an ``allowed`` mask (batch, V) bool, such as ``allowed`` gives
        (possibly widened by the caller), on ``device``."""
        own = allowed & ~self.shared
        width = int(own.sum(1).max()) if own.numel() else 0
        # per row: its own ids first, in id order, then the rest (padding)
        order = torch.sort(own.to(torch.uint8), dim=1, descending=True, stable=True).indices
        own_ids = order[:, :width]
        own_valid = own.gather(1, own_ids)
        own_ids = own_ids.masked_fill(~own_valid, PAD_ID)
        return Restriction(self.shared_ids.to(device), own_ids.to(device), own_valid.to(device))

    def state_dict(self) -> dict[str, torch.Tensor | int]:
        return {"table": self.table.to(torch.int32), "frequent": self.frequent.to(torch.int32),
                "tgt_vocab_size": self.tgt_vocab_size}

    @classmethod
    def from_state_dict(cls, state: dict) -> Shortlist:
        return cls(state["table"], state["frequent"], int(state["tgt_vocab_size"]))


def _unique_per_pair(flat: np.ndarray, lengths: np.ndarray, vocab: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Each pair's distinct ids: (pair numbers, ids), sorted by pair then id."""
    pairs = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    keys = np.sort(pairs * vocab + flat.astype(np.int64))
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys
    return keys // vocab, keys % vocab


def _cooccurrences(src_flat: np.ndarray, src_lengths: np.ndarray, tgt_flat: np.ndarray,
                   tgt_lengths: np.ndarray, src_vocab_size: int, tgt_vocab_size: int
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pair keys (s * tgt_vocab + t, once per sentence pair) and per-piece sentence counts,
    over the pairs with two non-empty sides; vectorized (no loop over pairs)."""
    both = (np.asarray(src_lengths) > 0) & (np.asarray(tgt_lengths) > 0)
    src_pair, src_ids = _unique_per_pair(src_flat, src_lengths, src_vocab_size)
    tgt_pair, tgt_ids = _unique_per_pair(tgt_flat, tgt_lengths, tgt_vocab_size)
    src_keep, tgt_keep = both[src_pair], both[tgt_pair]
    src_pair, src_ids = src_pair[src_keep], src_ids[src_keep]
    tgt_pair, tgt_ids = tgt_pair[tgt_keep], tgt_ids[tgt_keep]
    if not len(src_ids):
        raise ValueError("no sentence pair to build a shortlist from")
    per_pair = np.bincount(tgt_pair, minlength=len(both))
    tgt_start = np.concatenate([[0], np.cumsum(per_pair)[:-1]])
    repeats = per_pair[src_pair]                      # each source id meets its pair's targets
    targets = tgt_ids[np.repeat(tgt_start[src_pair], repeats) + positions_within(repeats)]
    keys = np.repeat(src_ids, repeats) * tgt_vocab_size + targets
    src_counts = np.bincount(src_ids, minlength=src_vocab_size).astype(np.float32)
    tgt_counts = np.bincount(tgt_ids, minlength=tgt_vocab_size).astype(np.float32)
    return torch.from_numpy(keys), torch.from_numpy(src_counts), torch.from_numpy(tgt_counts)
