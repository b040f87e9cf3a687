"""The output layer: attentional vectors -> target logits, over the whole vocabulary or over an
output space that a decoding batch chose (what each sentence may emit).

An output space is the ``shared`` ids every sentence may emit (their rows scored in one product
for all rows) plus, optionally, each sentence's ``own`` ids (scored per sentence). Positions in
a sentence's space are the shared ids, then its own; search works on those positions and maps
them back to vocabulary ids with ``OutputSpace.vocab_ids``. The layer also keeps the unpacked
rows of an int8 (dynamically quantized) projection, which cost as much as several decoding
steps to unpack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from s2s import torch_compat


@dataclass
class SharedRows:
    """The ids every sentence may emit (C,) and the layer's rows for them: weight
    (C, dec_hidden), bias (C,); for an int8 layer ``packed`` holds the rows prepacked instead."""

    ids: torch.Tensor
    weight: torch.Tensor | None
    bias: torch.Tensor | None
    packed: object | None = None

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden: (rows, dec_hidden) -> logits (rows, C)."""
        if self.packed is not None:
            return torch_compat.int8_linear(hidden, self.packed)
        assert self.weight is not None, "rows that are not prepacked carry their weight"
        return F.linear(hidden, self.weight, self.bias)


CHUNK_OVERHEAD = 256   # a chunk's fixed cost, in (sentence x own piece) products


def plan_chunks(widths: list[int], overhead: int = CHUNK_OVERHEAD) -> list[tuple[int, int, int]]:
    """Split sentences 0..n-1 into consecutive chunks (start, end, width), scored chunk by
    chunk with each chunk padded to its widest sentence: the split that minimizes the padded
    work (sum of chunk sizes x widths) plus ``overhead`` per chunk (dynamic programming).
    Sentences come sorted by source length, so their own lists grow roughly in order and a
    few chunks remove most of the padding to the batch's widest list."""
    n = len(widths)
    best: list[float] = [0] + [math.inf] * n   # best[i]: cost of sentences 0..i-1
    cut = [0] * (n + 1)
    for end in range(1, n + 1):
        widest = 0
        for start in range(end - 1, -1, -1):
            widest = max(widest, widths[start])
            cost = best[start] + (end - start) * widest + overhead
            if cost < best[end]:
                best[end], cut[end] = cost, start
    chunks, end = [], n
    while end > 0:
        start = cut[end]
        chunks.append((start, end, max(widths[start:end])))
        end = start
    return chunks[::-1]


@dataclass
class OwnOutput:
    """Each sentence's own output pieces beyond the shared ids, for the ``stored`` sentences
    the batch started with: table (stored, S + P) vocabulary id of every position of a
    sentence's output space (the shared ids, then its own); ids (stored, P) its own vocabulary
    ids, each sentence's own first; valid (stored, P) bool, False on padding; layer_weight
    (V, dec_hidden) and layer_bias (V,) the whole output layer's, not copied; dtype: the
    product's; active (batch,) the stored row of each active sentence (None: all, in order);
    chunks: consecutive stored sentences scored together (``plan_chunks``), since scoring all
    of them padded to the widest list reads mostly padding; parts: each chunk's bias
    (n, 1, width) and weight (n, width, dec_hidden) rows, gathered from the layer once,
    contiguous (a strided slice is copied at every product in bf16). Finished sentences are
    dropped from the stored tensors (and the parts gathered again) only once a quarter of them
    is gone: gathering at every step where a sentence ends would cost more than scoring a few
    finished sentences."""

    table: torch.Tensor
    ids: torch.Tensor
    valid: torch.Tensor
    layer_weight: torch.Tensor
    layer_bias: torch.Tensor
    dtype: torch.dtype
    active: torch.Tensor | None = None
    chunks: list[tuple[int, int, int]] | None = None
    parts: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def __post_init__(self) -> None:
        if self.chunks is None:
            self.chunks = plan_chunks(self.valid.sum(1).tolist())
        if self.parts is None:
            self.parts = []
            for start, end, width in self.chunks:
                ids = self.ids[start:end, :width]
                self.parts.append((self.layer_bias[ids].to(self.dtype).unsqueeze(1),
                                   self.layer_weight[ids].to(self.dtype)))

    @property
    def sentences(self) -> int:
        """Active sentences."""
        return self.ids.size(0) if self.active is None else self.active.numel()

    def select(self, index: torch.Tensor) -> OwnOutput:
        """Keep/reorder sentences: index (new_batch,) of active sentence numbers."""
        active = index if self.active is None else self.active.index_select(0, index)
        if active.numel() > 0.75 * self.ids.size(0):
            return replace(self, active=active)
        table, ids, valid = (t.index_select(0, active) for t in (self.table, self.ids, self.valid))
        return OwnOutput(table, ids, valid, self.layer_weight, self.layer_bias, self.dtype)

    def stored(self, sentences: torch.Tensor | int) -> torch.Tensor | int:
        """Stored rows of active sentence numbers (any shape)."""
        return sentences if self.active is None else self.active[sentences]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden: (batch, group, dec_hidden) of the active sentences -> logits of their own
        pieces (batch, group, P), -inf on padding."""
        if self.active is not None:
            scattered = hidden.new_zeros(self.ids.size(0), *hidden.shape[1:])
            scattered[self.active] = hidden
            hidden = scattered
        scores = hidden.new_full((*hidden.shape[:2], self.ids.size(1)), float("-inf"))
        assert self.chunks is not None and self.parts is not None, "set by __post_init__"
        for (start, end, width), (bias, weight) in zip(self.chunks, self.parts):
            scores[start:end, :, :width] = torch.baddbmm(bias, hidden[start:end],
                                                         weight.transpose(1, 2))
        scores = scores.masked_fill(~self.valid.unsqueeze(1), float("-inf"))
        return scores if self.active is None else scores[self.active]


@dataclass
class OutputSpace:
    """What the active sentences of a decoding batch may emit: ``shared`` rows for all, and
    ``own`` rows for each sentence (None: none). Row r of a step belongs to sentence
    r // group, where group is the rows per sentence (beams)."""

    shared: SharedRows
    own: OwnOutput | None = None

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden: (rows, dec_hidden) -> logits (rows, S + P) in float32."""
        logits = self.shared.logits(hidden).float()
        if self.own is None:
            return logits
        grouped = hidden.view(self.own.sentences, -1, hidden.size(-1))
        mine = self.own.logits(grouped.to(self.own.dtype)).view(logits.size(0), -1)
        return torch.cat([logits, mine.float()], dim=1)

    def select(self, index: torch.Tensor) -> OutputSpace:
        """Keep/reorder sentences: index (new_batch,) of active sentence numbers."""
        return self if self.own is None else replace(self, own=self.own.select(index))

    def vocab_ids(self, positions: torch.Tensor, group: int) -> torch.Tensor:
        """positions (rows,) in each row's space -> vocabulary ids (rows,)."""
        if self.own is None:
            return self.shared.ids[positions]
        sentences = torch.arange(positions.size(0), device=positions.device) // group
        return self.own.table[self.own.stored(sentences), positions]

    def row_vocab_ids(self, row: int, positions: torch.Tensor, group: int) -> list[int]:
        """positions (t,) of one row -> its vocabulary ids."""
        table = (self.shared.ids if self.own is None
                 else self.own.table[self.own.stored(row // group)])
        return table[positions].tolist()


class OutputLayer(nn.Module):
    """Projection dec_hidden -> target vocabulary (``linear``, replaced by an int8 layer under
    dynamic quantization), scoring the full vocabulary or an ``OutputSpace``."""

    def __init__(self, dec_hidden: int, vocab_size: int):
        super().__init__()
        self.linear = nn.Linear(dec_hidden, vocab_size)
        self._int8_rows: tuple | None = None   # (handle, int8 weight, bias, dequantized)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden: (..., dec_hidden) -> logits over the whole vocabulary (..., V)."""
        return self.linear(hidden)

    def space(self, shared: torch.Tensor, own: torch.Tensor, own_valid: torch.Tensor,
              dtype: torch.dtype) -> OutputSpace:
        """An output space: shared (S,) sorted ids for every sentence; own (batch, P) each
        sentence's other ids, padding where own_valid (batch, P) is False (P may be 0); dtype:
        the decoder's. Scoring it gives log-probabilities over shared ids, then own ids."""
        if torch_compat.is_quantized_linear(self.linear):
            qweight, bias, weight = self._unpacked_int8_rows()
            packed = torch_compat.prepack_int8_rows(qweight.index_select(0, shared),
                                                    bias.index_select(0, shared))
            rows = SharedRows(shared, None, None, packed)
        else:
            weight, bias = self.linear.weight.detach(), self.linear.bias.detach()
            rows = SharedRows(shared, weight.index_select(0, shared).to(dtype),
                              bias.index_select(0, shared).to(dtype))
        if not own.size(1):
            return OutputSpace(rows)
        table = torch.cat([shared.expand(own.size(0), -1), own], dim=1)
        return OutputSpace(rows, OwnOutput(table, own, own_valid, weight, bias, dtype))

    def _unpacked_int8_rows(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The int8 layer's weight (V, dec_hidden), bias (V,) and dequantized weight, unpacked
        once per quantized layer."""
        handle = torch_compat.quantized_linear_handle(self.linear)
        if self._int8_rows is None or self._int8_rows[0] is not handle:
            qweight, bias = torch_compat.unpack_quantized_linear(self.linear)
            self._int8_rows = (handle, qweight, bias, qweight.dequantize())
        return self._int8_rows[1], self._int8_rows[2], self._int8_rows[3]
