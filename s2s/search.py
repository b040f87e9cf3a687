"""Decoding driven by the model's one-step decoder.

Maximum output length is computed per sentence (``a * src_len + b``), never from the longest
sentence of the batch, so a sentence decodes the same alone or in any batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from s2s.model import Seq2Seq
from s2s.tokenizer import BOS_ID, EOS_ID


@dataclass
class Hypothesis:
    tokens: list[int]          # without BOS and EOS
    score: float               # summed log-probability (EOS included when reached)
    attention: torch.Tensor | None = None   # (len(tokens) + 1, src_len) when requested


def max_output_lengths(src_lens: torch.Tensor, a: float, b: int) -> torch.Tensor:
    """Per-sentence output budget in tokens (EOS included): (batch,) long."""
    return (src_lens.float() * a).floor().long() + b


@torch.no_grad()
def greedy_search(model: Seq2Seq, src: torch.Tensor, src_lens: torch.Tensor,
                  max_len_a: float = 1.5, max_len_b: int = 10,
                  return_attention: bool = False) -> list[Hypothesis]:
    """src: (batch, src_len); src_lens: (batch,). Returns one hypothesis per row, in row order.
    Finished sentences leave the active batch."""
    encoded, state = model.encode(src, src_lens)
    batch = src.size(0)
    limits = max_output_lengths(src_lens, max_len_a, max_len_b).tolist()
    tokens: list[list[int]] = [[] for _ in range(batch)]
    scores = [0.0] * batch
    attention: list[list[torch.Tensor]] = [[] for _ in range(batch)]
    active = torch.arange(batch, device=src.device)
    prev = torch.full((batch,), BOS_ID, dtype=torch.long, device=src.device)
    step = 0
    while active.numel() > 0:
        log_probs, state, weights = model.decode_step(prev, encoded, state)
        best_scores, best = log_probs.max(dim=-1)
        keep = []
        for row, (sent, token, score) in enumerate(
                zip(active.tolist(), best.tolist(), best_scores.tolist())):
            scores[sent] += score
            if return_attention:
                attention[sent].append(weights[row].cpu())
            if token == EOS_ID:
                continue
            tokens[sent].append(token)
            if step + 1 < limits[sent]:
                keep.append(row)
        step += 1
        if len(keep) < active.numel():
            index = torch.tensor(keep, dtype=torch.long, device=src.device)
            active, best = active[index], best[index]
            encoded, state = encoded.select(index), state.select(index)
        prev = best
    return [Hypothesis(tokens[i], scores[i],
                       torch.stack(attention[i]) if return_attention else None)
            for i in range(batch)]
