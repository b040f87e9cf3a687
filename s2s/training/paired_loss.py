"""R-Drop's loss on the output layer (s2s.training.rdrop): two copies' label-smoothed
cross-entropies and their symmetric KL, fused and computed in row chunks.

The two copies' attentional vectors at the same N target positions, first and second (N, H),
go through the output layer (weight (V, H), bias (V,)). Computed by autograd, the KL alone would
keep several N x V buffers per copy for backward, or recompute them. Here each chunk of rows
computes both copies' logits, log-softmax, cross-entropies and symmetric KL and, when gradients
are needed, the gradient of the whole loss with respect to both copies' logits, and from it the
gradients of first, second, weight and bias (as s2s.model.loss does for the single loss): one
output-layer product per copy and chunk, plus the two gradient products; the KL adds none.

At one position, with log-probabilities l1, l2, probabilities p1, p2 and d = l1 - l2:
KL(p1||p2) + KL(p2||p1) = sum (p1 - p2) d, whose gradient with respect to the first copy's logits
is p1 (d - <p1, d>) + p1 - p2 and to the second's -p2 (d - <p2, d>) + p2 - p1.
"""

from __future__ import annotations

import torch

from s2s import torch_compat
from s2s.model.workspace import Workspace

_WORKSPACE = Workspace()


class _OutputProducts:
    """The output layer's products, with the operands in ``matmul_dtype`` (bf16 under
    autocast) and logits and gradients in the weights' dtype."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, matmul_dtype: torch.dtype):
        self.weight, self.bias, self.dtype = weight, bias, matmul_dtype
        self.low = matmul_dtype != weight.dtype
        self.weight_low = weight.to(matmul_dtype)

    def logits(self, hidden: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """hidden (n, H) -> logits written into out (n, V)."""
        if not self.low:
            return torch.addmm(self.bias, hidden, self.weight.t(), out=out)
        low = torch.mm(hidden.to(self.dtype), self.weight_low.t())
        return torch.add(low, self.bias, out=out)

    def add_grads(self, grad_logits: torch.Tensor, hidden: torch.Tensor,
                  grad_hidden: torch.Tensor, grad_weight: torch.Tensor,
                  grad_bias: torch.Tensor) -> None:
        """From grad_logits (n, V) of hidden (n, H): write grad_hidden (n, H), add to
        grad_weight (V, H) and grad_bias (V,)."""
        if not self.low:
            torch.mm(grad_logits, self.weight, out=grad_hidden)
            grad_weight.addmm_(grad_logits.t(), hidden)
        else:
            grad_low = grad_logits.to(self.dtype)
            grad_hidden.copy_(torch.mm(grad_low, self.weight_low))
            grad_weight.add_(torch.mm(grad_low.t(), hidden.to(self.dtype)))
        grad_bias.add_(grad_logits.sum(0))


class _FusedPairedLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, first, second, weight, bias, targets, smoothing, alpha, chunk_rows,
                with_grad, matmul_dtype):
        products = _OutputProducts(weight, bias, matmul_dtype)
        ce, kl = weight.new_zeros(()), weight.new_zeros(())
        grads = None
        if with_grad:
            grads = (torch.empty_like(first), torch.empty_like(second), torch.zeros_like(weight),
                     torch.zeros_like(bias))
        for start in range(0, first.size(0), chunk_rows):
            rows = slice(start, min(start + chunk_rows, first.size(0)))
            chunk_ce, chunk_kl = _chunk(products, first[rows], second[rows], targets[rows],
                                        smoothing, alpha, rows, grads)
            ce += chunk_ce
            kl += chunk_kl
        ctx.grads = grads
        ctx.mark_non_differentiable(ce, kl)
        return (ce + alpha * kl) / 2, ce, kl

    @staticmethod
    def backward(ctx, grad_objective, _grad_ce, _grad_kl):
        """Scales the gradients that forward stored (of ce + alpha * kl, so by half the
        objective's gradient); backward can run once per forward."""
        if ctx.grads is None:
            raise RuntimeError("the fused R-Drop loss's backward ran twice (retain_graph)")
        grads, ctx.grads = ctx.grads, None
        scale = grad_objective / 2
        return (*(grad.mul_(scale) for grad in grads), None, None, None, None, None, None)


def _chunk(products: _OutputProducts, first: torch.Tensor, second: torch.Tensor,
           targets: torch.Tensor, smoothing: float, alpha: float, rows: slice,
           grads: tuple[torch.Tensor, ...] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One chunk: first, second (n, H), targets (n,) -> (summed CE of both copies, summed
    symmetric KL); with ``grads`` (grad first, grad second, grad weight, grad bias) fills
    their ``rows`` / adds to them the gradients of ce + alpha * kl. Scratch from the
    workspace: five (n, V) buffers."""
    shape, device = (first.size(0), products.weight.size(0)), first.device

    def scratch(name: str) -> torch.Tensor:
        return _WORKSPACE.get(name, shape, products.weight.dtype, device)

    log_p = _log_probs(products, first, scratch("logits_p"), scratch("log_p"))
    log_q = _log_probs(products, second, scratch("logits_q"), scratch("log_q"))
    ce = _smoothed_nll(log_p, targets, smoothing) + _smoothed_nll(log_q, targets, smoothing)
    probs_p = torch.exp(log_p, out=scratch("logits_p"))
    probs_q = torch.exp(log_q, out=scratch("logits_q"))
    diff = log_p.sub_(log_q)                                   # d = l1 - l2
    gap = torch.sub(probs_p, probs_q, out=scratch("log_q"))    # p1 - p2
    kl = torch.dot(gap.view(-1), diff.view(-1)) / 2
    if grads is not None:
        grad_first, grad_second, grad_weight, grad_bias = grads
        work = scratch("work")
        _grad_logits_(probs_p, diff, gap, targets, smoothing, alpha / 2, 1.0, work)
        products.add_grads(probs_p, first, grad_first[rows], grad_weight, grad_bias)
        _grad_logits_(probs_q, diff, gap, targets, smoothing, alpha / 2, -1.0, work)
        products.add_grads(probs_q, second, grad_second[rows], grad_weight, grad_bias)
    return ce, kl


def _log_probs(products: _OutputProducts, hidden: torch.Tensor, logits: torch.Tensor,
               out: torch.Tensor) -> torch.Tensor:
    """hidden (n, H) -> log-softmax of its logits (n, V), in ``out`` (``logits``: scratch)."""
    return torch_compat.log_softmax_into(products.logits(hidden, logits), out)


def _smoothed_nll(log_probs: torch.Tensor, targets: torch.Tensor,
                  smoothing: float) -> torch.Tensor:
    """Summed label-smoothed NLL (as s2s.model.loss): log_probs (n, V), targets (n,)."""
    nll = -log_probs.gather(1, targets.unsqueeze(1)).sum()
    if smoothing == 0:
        return nll
    return (1 - smoothing) * nll - smoothing * log_probs.mean(dim=1).sum()


def _grad_logits_(probs: torch.Tensor, diff: torch.Tensor, gap: torch.Tensor,
                  targets: torch.Tensor, smoothing: float, kl_weight: float, sign: float,
                  work: torch.Tensor) -> None:
    """Turn one copy's probs (n, V) in place into the gradient of its CE + kl_weight *
    (KL(p1||p2) + KL(p2||p1)) with respect to its logits: probs - smoothed one-hot +
    kl_weight * sign * (probs (diff - <probs, diff>) + gap). diff: (n, V) l1 - l2; gap: (n, V)
    p1 - p2; sign: 1 for the first copy, -1 for the second; work: (n, V) scratch."""
    expected = torch.mul(probs, diff, out=work).sum(1, keepdim=True)    # <probs, diff>
    term = torch.sub(diff, expected, out=work).mul_(probs).add_(gap)
    probs.add_(term, alpha=sign * kl_weight)
    if smoothing:
        probs.sub_(smoothing / probs.size(1))
    probs[torch.arange(probs.size(0), device=probs.device), targets] -= 1 - smoothing


def fused_paired_loss(first: torch.Tensor, second: torch.Tensor, weight: torch.Tensor,
                      bias: torch.Tensor, targets: torch.Tensor, smoothing: float = 0.0,
                      alpha: float = 0.0, chunk_rows: int = 1024
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """R-Drop's loss of two copies' attentional vectors at the same positions.

    first, second: (N, H); weight: (V, H); bias: (V,); targets: (N,) -> (objective, ce, kl),
    scalars in the weights' dtype: ce the label-smoothed cross-entropy of both copies summed
    (2N terms, as F.cross_entropy(..., label_smoothing=smoothing, reduction="sum") of each);
    kl the sum over positions of (KL(p1||p2) + KL(p2||p1)) / 2; objective = (ce + alpha * kl)
    / 2, the only one with a gradient. Under bf16 autocast the products run in bf16, the rest
    in the weights' dtype (fp32).
    """
    with_grad = torch.is_grad_enabled() and any(
        t.requires_grad for t in (first, second, weight, bias))
    first, second = first.to(weight.dtype), second.to(weight.dtype)
    device = first.device.type
    matmul_dtype = weight.dtype
    if torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.bfloat16:
        matmul_dtype = torch.bfloat16
    with torch.autocast(device, enabled=False):
        return _FusedPairedLoss.apply(first, second, weight, bias, targets, smoothing, alpha,
                                      chunk_rows, with_grad, matmul_dtype)
