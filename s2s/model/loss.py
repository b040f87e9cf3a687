"""Output layer + label-smoothed cross-entropy, fused and computed in row chunks.

For N target positions and a V-way vocabulary the plain route materializes logits, log-probs and
their gradients: several N x V buffers that are far larger than the CPU cache. The fused loss
computes, per chunk of rows, logits -> log-sum-exp -> loss and, when gradients are needed, the
gradient of the logits in place -> gradients of hidden, weight and bias, reusing one chunk-sized
buffer. Backward then only scales the stored gradients. Only real (non-pad) positions are passed in.
The chunk-sized buffers live in a per-thread workspace (s2s.model.workspace) and are reused from
one step to the next.
"""

from __future__ import annotations

import torch

from s2s import torch_compat
from s2s.model.workspace import Workspace

_WORKSPACE = Workspace()


class _FusedOutputLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, smoothing, chunk_rows, with_grad,
                matmul_dtype):
        products = _ChunkProducts(hidden, weight, bias, matmul_dtype)
        total = hidden.new_zeros(())
        grads = None
        if with_grad:
            grads = (torch.empty_like(hidden), torch.zeros_like(weight), torch.zeros_like(bias))
        for start in range(0, hidden.size(0), chunk_rows):
            stop = min(start + chunk_rows, hidden.size(0))
            chunk_targets = targets[start:stop]
            logits = products.logits(start, stop)
            work = _WORKSPACE.get("probs", logits.shape, logits.dtype, logits.device)
            torch_compat.log_softmax_into(logits, work)
            total += _chunk_loss(work, chunk_targets, smoothing)
            if grads is not None:
                torch_compat.softmax_into(logits, work)
                _probs_to_grad_(work, chunk_targets, smoothing)
                products.add_grads(work, start, stop, grads)
        ctx.grads = grads
        return total

    @staticmethod
    def backward(ctx, grad_total):
        """Scales the gradients stored by forward in place (a fresh weight-sized product per
        step costs a round of page faults); so backward can run once per forward."""
        if ctx.grads is None:
            raise RuntimeError("the fused output loss's backward ran twice (retain_graph)")
        grads, ctx.grads = ctx.grads, None
        return (*(grad.mul_(grad_total) for grad in grads), None, None, None, None, None)


class _ChunkProducts:
    """The output layer's products for row chunks of hidden (N, H) with weight (V, H) and bias
    (V,): in the weights' dtype, or with the operands in ``matmul_dtype`` (bf16 under autocast)
    and the logits and gradients returned in the weights' dtype. Scratch tensors come from the
    workspace, so a training step allocates none of its chunk-sized buffers afresh."""

    def __init__(self, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                 matmul_dtype: torch.dtype):
        self.hidden, self.weight, self.bias = hidden, weight, bias
        self.matmul_dtype = matmul_dtype
        self.low = None
        if matmul_dtype != weight.dtype:
            self.low = tuple(
                _WORKSPACE.get(f"{name}_low", tensor.shape, matmul_dtype,
                               tensor.device).copy_(tensor)
                for name, tensor in (("hidden", hidden), ("weight", weight), ("bias", bias)))

    def _scratch(self, name: str, shape: tuple[int, ...], low: bool = False) -> torch.Tensor:
        dtype = self.matmul_dtype if low else self.weight.dtype
        return _WORKSPACE.get(name, shape, dtype, self.weight.device)

    def logits(self, start: int, stop: int) -> torch.Tensor:
        """Logits of rows start..stop-1: (n, V) in the weights' dtype (a workspace view)."""
        out = self._scratch("logits", (stop - start, self.weight.size(0)))
        if self.low is None:
            return torch.addmm(self.bias, self.hidden[start:stop], self.weight.t(), out=out)
        hidden_low, weight_low, bias_low = self.low
        out_low = self._scratch("logits_low", out.shape, low=True)
        torch.addmm(bias_low, hidden_low[start:stop], weight_low.t(), out=out_low)
        return out.copy_(out_low)

    def add_grads(self, grad_logits: torch.Tensor, start: int, stop: int,
                  grads: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
        """From grad_logits (n, V) of rows start..stop-1: write those rows of grad_hidden
        (N, H), add to grad_weight (V, H) and grad_bias (V,), all in the weights' dtype."""
        grad_hidden, grad_weight, grad_bias = grads
        if self.low is None:
            torch.mm(grad_logits, self.weight, out=grad_hidden[start:stop])
            grad_weight.addmm_(grad_logits.t(), self.hidden[start:stop])
        else:
            hidden_low, weight_low, _ = self.low
            grad_low = self._scratch("grad_logits_low", grad_logits.shape, low=True)
            grad_low.copy_(grad_logits)
            grad_hidden[start:stop] = torch.mm(grad_low, weight_low)
            part_low = self._scratch("grad_weight_low", grad_weight.shape, low=True)
            torch.mm(grad_low.t(), hidden_low[start:stop], out=part_low)
            # add_ of a bf16 tensor to an fp32 one would convert it into a fresh temporary
            part = self._scratch("grad_weight_part", grad_weight.shape)
            grad_weight.add_(part.copy_(part_low))
        grad_bias.add_(grad_logits.sum(0))


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
