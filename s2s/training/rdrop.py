"""R-Drop (Liang et al. 2021, "R-Drop: Regularized Dropout for Neural Networks"): the training
loss when ``train.rdrop_alpha`` > 0.

Each batch goes through the model twice in one forward pass, concatenated with itself along
the batch dimension, so its two copies draw independent dropout masks. With p1 and p2 the
copies' output distributions at each of the batch's N real (non-pad) target positions, the loss
per target token of the doubled batch (2N tokens, as the single loss is normalized per token) is

    (CE_1 + CE_2) / 2 + alpha / 2 * (KL(p1 || p2) + KL(p2 || p1)) / 2

the paper's (and fairseq's) objective NLL_1 + NLL_2 + alpha * (KL(p1||p2) + KL(p2||p1)) / 2
divided by the doubled batch's tokens, so the paper's alpha values carry over. Both copies
receive the KL's gradient (neither is detached). The output layer, both cross-entropies and
the KL are computed together in row chunks (s2s.training.paired_loss): no N x V tensor is kept,
and the KL costs no output-layer products of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from s2s.constants import PAD_ID
from s2s.training.data import Batch
from s2s.training.paired_loss import fused_paired_loss


@dataclass
class RDropLoss:
    """One batch's R-Drop loss, each a sum: ``objective`` (ce_sum + alpha * kl_sum) / 2, on the
    scale of the single batch loss (a sum over the batch's N tokens, which the trainer divides
    by N), the only one with a gradient; ``ce_sum`` the label-smoothed cross-entropy of both
    copies (2N tokens); ``kl_sum`` the symmetric KL (KL(p1||p2) + KL(p2||p1)) / 2 over the N
    positions."""

    objective: torch.Tensor
    ce_sum: torch.Tensor
    kl_sum: torch.Tensor

    def copy_ce_sum(self) -> torch.Tensor:
        """The cross-entropy summed over N tokens, averaged over the two copies (comparable
        with the single batch loss)."""
        return self.ce_sum / 2


def doubled(batch: Batch) -> Batch:
    """The batch concatenated with itself: rows 0..B-1, then rows 0..B-1 again."""
    return Batch(*(torch.cat([t, t]) for t in
                   (batch.src, batch.src_lens, batch.tgt_in, batch.tgt_out)))


def rdrop_loss(model: nn.Module, output: nn.Linear, batch: Batch, alpha: float,
               smoothing: float = 0.0, chunk_rows: int = 1024) -> RDropLoss:
    """The R-Drop loss of ``batch``. ``model``: a Seq2Seq, maybe DDP-wrapped (called for its
    attentional vectors, Seq2Seq.forward with tgt_out None); ``output``: its output projection
    (Seq2Seq.output.linear), weight (V, H) and bias (V,)."""
    twice = doubled(batch)
    hidden = model(twice.src, twice.src_lens, twice.tgt_in, None)   # (2B, tgt_len, H)
    rows, real = batch.tgt_out.size(0), batch.tgt_out != PAD_ID
    objective, ce_sum, kl_sum = fused_paired_loss(
        hidden[:rows][real], hidden[rows:][real], output.weight, output.bias,
        batch.tgt_out[real], smoothing, alpha, chunk_rows)
    return RDropLoss(objective, ce_sum, kl_sum)
