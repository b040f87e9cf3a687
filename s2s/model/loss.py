"""Output layer + label-smoothed cross-entropy, fused and computed in row chunks.

For N target positions and a V-way vocabulary the plain route materializes logits, log-probs and
their gradients: several N x V buffers that are far larger than the CPU cache. The fused loss
computes, per chunk of rows, logits -> log-sum-exp -> loss and, when gradients are needed, the
gradient of the logits in place -> gradients of hidden, weight and bias, reusing one chunk-sized
buffer. Backward then only scales the stored gradients. Only real (non-pad) positions are passed in.
"""

from __future__ import annotations

import torch

from s2s import torch_compat


class _FusedOutputLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, smoothing, chunk_rows, with_grad,
                matmul_dtype):
        rows, vocab = hidden.size(0), weight.size(0)
        total = hidden.new_zeros(())
        grads = None
        if with_grad:
            grads = (torch.empty_like(hidden), torch.zeros_like(weight), torch.zeros_like(bias))
        logits_buffer = hidden.new_empty(min(chunk_rows, rows), vocab)
        probs_buffer = torch.empty_like(logits_buffer)
        low = None if matmul_dtype == weight.dtype else (
            hidden.to(matmul_dtype), weight.to(matmul_dtype), bias.to(matmul_dtype))
        for start in range(0, rows, chunk_rows):
            stop = min(start + chunk_rows, rows)
            chunk_hidden, chunk_targets = hidden[start:stop], targets[start:stop]
            logits = logits_buffer[: stop - start]
            if low is None:
                torch.addmm(bias, chunk_hidden, weight.t(), out=logits)
            else:
                logits.copy_(torch.addmm(low[2], low[0][start:stop], low[1].t()))
            work = probs_buffer[: stop - start]
            torch_compat.log_softmax_into(logits, work)
            total += _chunk_loss(work, chunk_targets, smoothing)
            if grads is not None:
                torch_compat.softmax_into(logits, work)
                _probs_to_grad_(work, chunk_targets, smoothing)
                if low is None:
                    torch.mm(work, weight, out=grads[0][start:stop])
                    grads[1].addmm_(work.t(), chunk_hidden)
                else:
                    work_low = work.to(matmul_dtype)
                    grads[0][start:stop] = torch.mm(work_low, low[1])
                    grads[1].add_(torch.mm(work_low.t(), low[0][start:stop]))
                grads[2].add_(work.sum(0))
        if grads is not None:
            ctx.save_for_backward(*grads)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        return (grad_hidden * grad_total, grad_weight * grad_total, grad_bias * grad_total,
                None, None, None, None, None)


def _chunk_loss(log_probs: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Summed smoothed NLL of one chunk: log_probs (n, V), targets (n,)."""
    nll = -log_probs.gather(1, targets.unsqueeze(1)).sum()
    if smoothing == 0:
        return nll
    uniform = -log_probs.mean(dim=1).sum()
    return (1 - smoothing) * nll + smoothing * uniform


def _probs_to_grad_(probs: torch.Tensor, targets: torch.Tensor, smoothing: float) -> None:
    """Turn probs (n, V) in place into d loss / d logits = probs - smoothed one-hot."""
    if smoothing:
        probs.sub_(smoothing / probs.size(1))
    rows = torch.arange(probs.size(0), device=probs.device)
    probs[rows, targets] -= 1 - smoothing


def fused_output_loss(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                      targets: torch.Tensor, smoothing: float = 0.0,
                      chunk_rows: int = 1024) -> torch.Tensor:
    """Summed label-smoothed cross-entropy of ``hidden @ weight.T + bias`` against ``targets``.

    hidden: (N, H); weight: (V, H); bias: (V,); targets: (N,) -> scalar in weight's dtype.
    Same value and gradients as F.cross_entropy(F.linear(hidden, weight, bias), targets,
    label_smoothing=smoothing, reduction="sum"), without N x V intermediates. Under bf16
    autocast the matrix products run in bf16 while log-softmax, the loss and the gradient
    sums stay in the weights' dtype (fp32).
    """
    with_grad = torch.is_grad_enabled() and (
        hidden.requires_grad or weight.requires_grad or bias.requires_grad)
    if hidden.dtype != weight.dtype:
        hidden = hidden.to(weight.dtype)
    device = hidden.device.type
    matmul_dtype = weight.dtype
    if torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.bfloat16:
        matmul_dtype = torch.bfloat16
    with torch.autocast(device, enabled=False):
        return _FusedOutputLoss.apply(hidden, weight, bias, targets, smoothing, chunk_rows,
                                      with_grad, matmul_dtype)
