"""Output layer + label-smoothed cross-entropy, fused and computed in row chunks.

For N target positions and a V-way vocabulary the plain route materializes logits, log-probs and
their gradients: several N x V buffers that are far larger than the CPU cache. The fused loss
computes, per chunk of rows, logits -> log-sum-exp -> loss and, when gradients are needed, the
gradient of the logits in place -> gradients of hidden, weight and bias, reusing one chunk-sized
buffer. Backward then only scales the stored gradients. Only real (non-pad) positions are passed in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reference_output_loss(hidden, weight, bias, targets, smoothing: float) -> torch.Tensor:
    """Unfused equivalent (summed): hidden (N, H), weight (V, H), bias (V,), targets (N,)."""
    logits = F.linear(hidden, weight, bias).float()
    return F.cross_entropy(logits, targets, label_smoothing=smoothing, reduction="sum")


class _FusedOutputLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, smoothing, chunk_rows, with_grad):
        rows, vocab = hidden.size(0), weight.size(0)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grads = None
        if with_grad:
            grads = (torch.empty_like(hidden, dtype=torch.float32),
                     torch.zeros_like(weight, dtype=torch.float32),
                     torch.zeros_like(bias, dtype=torch.float32))
        buffer = torch.empty(min(chunk_rows, rows), vocab, dtype=torch.float32,
                             device=hidden.device)
        for start in range(0, rows, chunk_rows):
            stop = min(start + chunk_rows, rows)
            chunk_hidden, chunk_targets = hidden[start:stop], targets[start:stop]
            logits = torch.addmm(bias, chunk_hidden, weight.t(), out=buffer[: stop - start])
            total += _chunk_loss(logits, chunk_targets, smoothing)
            if grads is not None:
                _logits_to_grad_(logits, chunk_targets, smoothing)
                torch.mm(logits, weight, out=grads[0][start:stop])
                grads[1].addmm_(logits.t(), chunk_hidden)
                grads[2].add_(logits.sum(0))
        if grads is not None:
            ctx.save_for_backward(*grads)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        return (grad_hidden * grad_total, grad_weight * grad_total, grad_bias * grad_total,
                None, None, None, None)


def _chunk_loss(logits: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Summed smoothed NLL of one chunk: logits (n, V), targets (n,)."""
    log_norm = torch.logsumexp(logits, dim=1)
    nll = log_norm - logits.gather(1, targets.unsqueeze(1)).squeeze(1)
    if smoothing == 0:
        return nll.sum()
    uniform = log_norm - logits.mean(dim=1)
    return ((1 - smoothing) * nll + smoothing * uniform).sum()


def _logits_to_grad_(logits: torch.Tensor, targets: torch.Tensor, smoothing: float) -> None:
    """Overwrite logits (n, V) with d loss / d logits = softmax - smoothed one-hot."""
    _softmax_(logits)
    if smoothing:
        logits.sub_(smoothing / logits.size(1))
    rows = torch.arange(logits.size(0), device=logits.device)
    logits[rows, targets] -= 1 - smoothing


def _softmax_(logits: torch.Tensor) -> None:
    logits.sub_(logits.max(dim=1, keepdim=True).values).exp_()
    logits.div_(logits.sum(dim=1, keepdim=True))


def fused_output_loss(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                      targets: torch.Tensor, smoothing: float = 0.0,
                      chunk_rows: int = 1024) -> torch.Tensor:
    """Summed label-smoothed cross-entropy of ``hidden @ weight.T + bias`` against ``targets``.

    hidden: (N, H); weight: (V, H); bias: (V,); targets: (N,) -> scalar (float32).
    Same value and gradients as ``reference_output_loss``, without N x V intermediates.
    """
    with_grad = torch.is_grad_enabled() and (
        hidden.requires_grad or weight.requires_grad or bias.requires_grad)
    if hidden.dtype != weight.dtype:
        hidden = hidden.to(weight.dtype)
    with torch.autocast(hidden.device.type, enabled=False):
        return _FusedOutputLoss.apply(hidden, weight, bias, targets, smoothing, chunk_rows,
                                      with_grad)
