"""Training batches: token-budget batches with length bucketing over prepared corpora (and
in-memory pairs for validation).

The batch plan of an epoch is a pure function of (seed, epoch), so the data position that a
checkpoint stores is just ``(epoch, index of the next batch)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from s2s.batching import BatchBudget, cut_sorted
from s2s.constants import BOS_ID, EOS_ID, PAD_ID
from s2s.model import Seq2Seq
from s2s.training.corpus_files import DataError
from s2s.training.segmentation import choose_segmentations
from s2s.training.shards import TrainingSet


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
    """Pad a batch of id lists (``collate_arrays`` on them)."""
    return collate_arrays([np.asarray(s, dtype=np.int64) for s in src],
                          [np.asarray(t, dtype=np.int64) for t in tgt])


def collate_arrays(src: Sequence[np.ndarray], tgt: Sequence[np.ndarray]) -> Batch:
    """Pad a batch, rows sorted by decreasing source length (stable); src/tgt are id
    arrays (pairs read from the memory map)."""
    order = np.argsort(-np.array([len(s) for s in src]), kind="stable")
    rows = len(order)
    src_lens = np.array([len(src[i]) for i in order], dtype=np.int64)
    tgt_lens = np.array([len(tgt[i]) for i in order], dtype=np.int64)
    src_out = np.full((rows, int(src_lens.max())), PAD_ID, dtype=np.int64)
    tgt_in = np.full((rows, int(tgt_lens.max()) + 1), PAD_ID, dtype=np.int64)
    tgt_out = np.full_like(tgt_in, PAD_ID)
    tgt_in[:, 0] = BOS_ID
    for row, index in enumerate(order):
        src_out[row, : src_lens[row]] = src[index]
        tgt_in[row, 1: tgt_lens[row] + 1] = tgt[index]
        tgt_out[row, : tgt_lens[row]] = tgt[index]
        tgt_out[row, tgt_lens[row]] = EOS_ID
    return Batch(torch.from_numpy(src_out), torch.from_numpy(src_lens), torch.from_numpy(tgt_in),
                 torch.from_numpy(tgt_out))


def epoch_draws(data: TrainingSet, generator: torch.Generator) -> np.ndarray:
    """Global pair indices one epoch uses, corpus after corpus: every pair of the corpus with
    the largest size/weight once; from each other corpus weight/that weight times as many
    (whole passes, then a random part of one more pass)."""
    sizes = [len(c) for c in data.corpora]
    scale = max(size / c.weight for size, c in zip(sizes, data.corpora))
    parts = []
    for start, size, corpus in zip(data.starts, sizes, data.corpora):
        wanted = size if size / corpus.weight == scale else round(corpus.weight * scale)
        passes, rest = divmod(wanted, size) if size else (0, 0)
        local = [np.tile(np.arange(size, dtype=np.int64), passes)]
        if rest:
            local.append(torch.randperm(size, generator=generator)[:rest].numpy())
        parts.append(start + np.concatenate(local))
    return np.concatenate(parts)


def cut_pools(lengths: np.ndarray, starts: np.ndarray, ends: np.ndarray,
              budget: BatchBudget) -> np.ndarray:
    """``take_batch``'s batches of every pool at once. lengths: (n,) ascending within each
    pool [starts[p], ends[p]) -> (batches, 2) start/end positions, pool after pool, each batch
    the most rows from its start that ``budget.fits`` (at least one row).

    The batch of each pool is found by a binary search over its row count (count x the last
    row's length only grows with the count), all pools in one array operation."""
    lengths = np.maximum(lengths.astype(np.int64), 1)
    position, ends = starts.astype(np.int64), ends.astype(np.int64)
    found = []
    while True:
        open_pools = np.flatnonzero(position < ends)
        if not len(open_pools):
            break
        start = position[open_pools]
        low = np.ones_like(start)
        high = np.minimum(ends[open_pools] - start, np.maximum(1, budget.tokens // lengths[start]))
        while True:
            searching = low < high
            if not searching.any():
                break
            middle = (low + high + 1) // 2
            fits = budget.fits_array(middle, lengths[start + middle - 1])
            low = np.where(searching & fits, middle, low)
            high = np.where(searching & ~fits, middle - 1, high)
        found.append(np.stack([start, start + low], axis=1))
        position[open_pools] = start + low
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    bounds = np.concatenate(found)
    return bounds[np.argsort(bounds[:, 0], kind="stable")]


def length_keys(tgt_lens: np.ndarray, src_lens: np.ndarray) -> np.ndarray:
    """(pairs,) sort keys ordering pairs by target length, then source length: uint16 while
    they fit (numpy sorts those with a stable radix sort), else int64."""
    width = int(src_lens.max(initial=0)) + 1
    if (int(tgt_lens.max(initial=0)) + 1) * width <= 1 << 16:
        return (tgt_lens.astype(np.int32) * width + src_lens).astype(np.uint16)
    return tgt_lens.astype(np.int64) * width + src_lens


def sort_within_pools(order: np.ndarray, pool_size: int, keys: np.ndarray) -> np.ndarray:
    """order: (n,) pair indices cut into consecutive pools of pool_size -> the same pools,
    each sorted by ``keys`` (per pair, ``length_keys``), ties kept in order."""
    order_keys = keys[order]
    sorted_order = np.empty_like(order)
    for start in range(0, len(order), pool_size):
        pool = slice(start, start + pool_size)
        sorted_order[pool] = order[pool][np.argsort(order_keys[pool], kind="stable")]
    return sorted_order


class BatchPlan:
    """Reproducible token-budget batches with length bucketing, for one or several processes.

    Each epoch (torch generator seeded by seed and epoch): draw the epoch's pairs
    (``epoch_draws``: corpus weights), shuffle them, cut the order into pools of
    ``bucket_size`` batches' worth of sentences, sort each pool by length, split it by the
    token budget, then shuffle the batch order. With ``world_size`` > 1 each rank takes every
    world_size-th batch (disjoint), and all ranks get the same number of batches. The plan is
    a few integer arrays (the epoch's pair order and batch bounds): no per-pair objects. With
    sampled segmentations (s2s.training.segmentation) each draw first gets its segmentation,
    and pools are sorted and cut by that segmentation's lengths.
    """

    def __init__(self, data: TrainingSet, batch_tokens: int, bucket_size: int, seed: int,
                 rank: int = 0, world_size: int = 1):
        self.data = data
        self.batch_tokens = batch_tokens
        self.bucket_size = bucket_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.next_index = 0
        self._plan_epoch: int | None = None
        self._order = np.zeros(0, dtype=np.int64)
        self._bounds = np.zeros((0, 2), dtype=np.int64)
        self._keys: np.ndarray | None = None

    def _make_plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(pair order, (batches, 2) start/end positions in it) of this rank for ``epoch``."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        draws = epoch_draws(self.data, generator)
        order = self._segmented(draws[torch.randperm(len(draws), generator=generator).numpy()],
                                epoch)
        tgt_lens = self.data.segmented_tgt_lens
        mean_len = int(tgt_lens.sum()) / len(tgt_lens)
        pool_size = max(1, int(self.bucket_size * self.batch_tokens * self.world_size / mean_len))
        if self._keys is None:
            self._keys = length_keys(tgt_lens, self.data.segmented_src_lens)
        order = sort_within_pools(order, pool_size, self._keys)
        starts = np.arange(0, len(order), pool_size)
        bounds = cut_pools(tgt_lens[order], starts, np.minimum(starts + pool_size, len(order)),
                           BatchBudget(self.batch_tokens))
        shuffled = torch.randperm(len(bounds), generator=generator).numpy()
        usable = len(bounds) - len(bounds) % self.world_size
        return order, bounds[shuffled[:usable]][self.rank::self.world_size]

    def _segmented(self, order: np.ndarray, epoch: int) -> np.ndarray:
        """Pair indices -> segmented indices (``TrainingSet.segmented_pair``): each draw in one
        of the data's segmentations; unchanged without sampled ones."""
        segmentations = self.data.segmentations
        if segmentations == 1:
            return order
        chosen = choose_segmentations(len(order), segmentations, self.seed, epoch)
        return order + len(self.data) * chosen

    def _epoch_bounds(self) -> np.ndarray:
        if self._plan_epoch != self.epoch:
            self._order, self._bounds = self._make_plan(self.epoch)
            self._plan_epoch = self.epoch
        return self._bounds

    def epoch_batches(self) -> list[list[int]]:
        """This rank's batches of the current epoch as (segmented) index lists (for tests
        and checks)."""
        bounds = self._epoch_bounds()
        return [self._order[start:end].tolist() for start, end in bounds]

    def __len__(self) -> int:
        return len(self._epoch_bounds())

    def next_batch(self) -> Batch:
        """The batch at the current position; advances the position (and the epoch at its end)."""
        bounds = self._epoch_bounds()
        if self.next_index >= len(bounds):
            self.epoch += 1
            self.next_index = 0
            bounds = self._epoch_bounds()
            if not len(bounds):
                raise DataError("the training data yields no batch for this number of processes")
        start, end = bounds[self.next_index]
        self.next_index += 1
        pairs = [self.data.segmented_pair(int(i)) for i in self._order[start:end]]
        return collate_arrays([p[0] for p in pairs], [p[1] for p in pairs])

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
