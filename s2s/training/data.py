"""Parallel corpora: reading, length filtering, and token-budget batches with length bucketing.

The batch plan of an epoch is a pure function of (seed, epoch), so the data position that a
checkpoint stores is just ``(epoch, index of the next batch)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from s2s.constants import BOS_ID, EOS_ID, PAD_ID
from s2s.inference.batching import BatchBudget, cut_sorted, pad
from s2s.model import Seq2Seq


class DataError(ValueError):
    """A corpus that cannot be used: missing file, misaligned sides, nothing left to train on."""


def read_lines(path: str | Path) -> list[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return [line.rstrip("\n") for line in handle]
    except FileNotFoundError:
        raise DataError(f"corpus file not found: {path}") from None
    except UnicodeDecodeError as error:
        raise DataError(f"corpus file {path} is not UTF-8: {error}") from None


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> tuple[list[str], list[str]]:
    """Read two line-aligned files; a different number of lines is an error."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise DataError(
            f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: not line-aligned"
        )
    return src, tgt


@dataclass
class ParallelData:
    """Encoded sentence pairs (piece ids without BOS/EOS) with their lengths."""

    src: list[list[int]]
    tgt: list[list[int]]

    def __len__(self) -> int:
        return len(self.src)

    def target_tokens(self) -> int:
        """Target tokens the loss sees (pieces + EOS)."""
        return sum(len(t) + 1 for t in self.tgt)


def filter_pairs(data: ParallelData, max_len: int, max_ratio: float) -> ParallelData:
    """Drop pairs with an empty side, a side longer than ``max_len`` or a length ratio above
    ``max_ratio``."""
    keep_src, keep_tgt = [], []
    for s, t in zip(data.src, data.tgt):
        if not s or not t or len(s) > max_len or len(t) > max_len:
            continue
        if max(len(s), len(t)) / min(len(s), len(t)) > max_ratio:
            continue
        keep_src.append(s)
        keep_tgt.append(t)
    if not keep_src:
        raise DataError("no sentence pair is left after length filtering")
    return ParallelData(keep_src, keep_tgt)


@dataclass
class Batch:
    """A padded batch, sorted by decreasing source length.

    src: (batch, src_len); src_lens: (batch,); tgt_in: (batch, tgt_len) = BOS + target;
    tgt_out: (batch, tgt_len) = target + EOS; both padded with PAD_ID.
    """

    src: torch.Tensor
    src_lens: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor

    @property
    def n_tokens(self) -> int:
        return int((self.tgt_out != PAD_ID).sum())

    def to(self, device: torch.device) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in
                       (self.src, self.src_lens, self.tgt_in, self.tgt_out)))


def batch_loss(model: Seq2Seq | torch.nn.Module, batch: Batch, smoothing: float = 0.0,
               chunk_rows: int = 1024) -> torch.Tensor:
    """Summed label-smoothed loss of a batch (Seq2Seq.forward; ``model`` may be DDP-wrapped)."""
    return model(batch.src, batch.src_lens, batch.tgt_in, batch.tgt_out, smoothing, chunk_rows)


def collate(src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]]) -> Batch:
    order = sorted(range(len(src)), key=lambda i: -len(src[i]))
    src = [src[i] for i in order]
    tgt = [tgt[i] for i in order]
    return Batch(
        src=pad(src),
        src_lens=torch.tensor([len(s) for s in src], dtype=torch.long),
        tgt_in=pad([[BOS_ID, *t] for t in tgt]),
        tgt_out=pad([[*t, EOS_ID] for t in tgt]),
    )


class BatchPlan:
    """Reproducible token-budget batches with length bucketing, for one or several processes.

    Each epoch: shuffle all pairs (torch generator seeded by seed and epoch), cut the shuffled
    order into pools of ``bucket_size`` batches' worth of sentences, sort each pool by length,
    split it by the token budget, then shuffle the batch order. With ``world_size`` > 1 each
    rank takes every world_size-th batch, and all ranks get the same number of batches.
    """

    def __init__(self, data: ParallelData, batch_tokens: int, bucket_size: int, seed: int,
                 rank: int = 0, world_size: int = 1):
        self.data = data
        self.batch_tokens = batch_tokens
        self.bucket_size = bucket_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.tgt_lens = [len(t) + 1 for t in data.tgt]
        self.src_lens = [len(s) for s in data.src]
        self.epoch = 0
        self.next_index = 0
        self._plan_epoch: int | None = None
        self._plan: list[list[int]] = []

    def _make_plan(self, epoch: int) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.data), generator=generator).tolist()
        mean_len = sum(self.tgt_lens) / len(self.tgt_lens)
        pool_size = max(1, int(self.bucket_size * self.batch_tokens * self.world_size / mean_len))
        batches: list[list[int]] = []
        for start in range(0, len(order), pool_size):
            pool = sorted(order[start:start + pool_size],
                          key=lambda i: (self.tgt_lens[i], self.src_lens[i]))
            batches.extend(cut_sorted(pool, self.tgt_lens, BatchBudget(self.batch_tokens)))
        shuffled = torch.randperm(len(batches), generator=generator).tolist()
        usable = len(batches) - len(batches) % self.world_size
        return [batches[i] for i in shuffled[:usable]][self.rank::self.world_size]

    def epoch_batches(self) -> list[list[int]]:
        if self._plan_epoch != self.epoch:
            self._plan = self._make_plan(self.epoch)
            self._plan_epoch = self.epoch
        return self._plan

    def __len__(self) -> int:
        return len(self.epoch_batches())

    def next_batch(self) -> Batch:
        """The batch at the current position; advances the position (and the epoch at its end)."""
        plan = self.epoch_batches()
        if self.next_index >= len(plan):
            self.epoch += 1
            self.next_index = 0
            plan = self.epoch_batches()
            if not plan:
                raise DataError("the training data yields no batch for this number of processes")
        indices = plan[self.next_index]
        self.next_index += 1
        return collate([self.data.src[i] for i in indices], [self.data.tgt[i] for i in indices])

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "next_index": self.next_index, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.next_index = int(state["next_index"])
        self.seed = int(state["seed"])


def iterate_batches(data: ParallelData, batch_tokens: int) -> list[Batch]:
    """Deterministic length-sorted batches over all pairs (for validation), in sorted order.
    Returns the batches; ``Batch`` rows are sorted within each batch by source length."""
    order = sorted(range(len(data)), key=lambda i: (len(data.tgt[i]), len(data.src[i])))
    lengths = [len(t) + 1 for t in data.tgt]
    return [collate([data.src[i] for i in b], [data.tgt[i] for i in b])
            for b in cut_sorted(order, lengths, BatchBudget(batch_tokens))]
