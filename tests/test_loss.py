"""The fused, chunked output loss equals the plain linear + cross-entropy route."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from s2s.model.loss import fused_output_loss


def reference_output_loss(hidden, weight, bias, targets, smoothing: float) -> torch.Tensor:
    """The unfused route (summed): linear layer, then cross-entropy in at least float32."""
    logits = F.linear(hidden, weight, bias)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return F.cross_entropy(logits, targets, label_smoothing=smoothing, reduction="sum")

ROWS, HIDDEN, VOCAB = 13, 8, 11
CASES = [(smoothing, chunk) for smoothing in (0.0, 0.1) for chunk in (4, ROWS, 50)]
IDS = [f"smoothing{s}-chunk{c}" for s, c in CASES]


def inputs(dtype: torch.dtype = torch.float64):
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(ROWS, HIDDEN, generator=generator, dtype=dtype).requires_grad_()
    weight = torch.randn(VOCAB, HIDDEN, generator=generator, dtype=dtype).requires_grad_()
    bias = torch.randn(VOCAB, generator=generator, dtype=dtype).requires_grad_()
    targets = torch.randint(0, VOCAB, (ROWS,), generator=generator)
    return hidden, weight, bias, targets


@pytest.mark.parametrize(("smoothing", "chunk_rows"), CASES, ids=IDS)
def test_fused_loss_value_matches_reference(smoothing, chunk_rows):
    hidden, weight, bias, targets = inputs()
    fused = fused_output_loss(hidden, weight, bias, targets, smoothing, chunk_rows)
    reference = reference_output_loss(hidden, weight, bias, targets, smoothing)
    assert fused.shape == () and reference.item() > 1.0  # a non-trivial loss
    torch.testing.assert_close(fused.double(), reference.double(), atol=1e-8, rtol=0)


@pytest.mark.parametrize(("smoothing", "chunk_rows"), CASES, ids=IDS)
def test_fused_loss_gradients_match_reference(smoothing, chunk_rows):
    hidden, weight, bias, targets = inputs()
    fused = fused_output_loss(hidden, weight, bias, targets, smoothing, chunk_rows)
    fused_grads = torch.autograd.grad(3.0 * fused, (hidden, weight, bias))
    reference = reference_output_loss(hidden, weight, bias, targets, smoothing)
    reference_grads = torch.autograd.grad(3.0 * reference, (hidden, weight, bias))
    for name, got, expected in zip(("hidden", "weight", "bias"), fused_grads, reference_grads):
        assert got.shape == expected.shape, name
        assert expected.abs().max() > 1e-3, name
        torch.testing.assert_close(got.double(), expected.double(), atol=1e-8, rtol=0,
                                   msg=lambda text, name=name: f"{name}: {text}")


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_fused_loss_matches_reference_in_float32(smoothing):
    hidden, weight, bias, targets = inputs(torch.float32)
    fused = fused_output_loss(hidden, weight, bias, targets, smoothing, 4)
    reference = reference_output_loss(hidden, weight, bias, targets, smoothing)
    torch.testing.assert_close(fused.double(), reference.double(), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_fused_loss_without_grad_gives_the_same_value(smoothing):
    hidden, weight, bias, targets = inputs()
    with_grad = fused_output_loss(hidden, weight, bias, targets, smoothing, 4)
    with torch.no_grad():
        without_grad = fused_output_loss(hidden, weight, bias, targets, smoothing, 4)
    assert with_grad.requires_grad and not without_grad.requires_grad
    torch.testing.assert_close(without_grad.double(), with_grad.detach().double(),
                               atol=1e-12, rtol=0)


def test_fused_loss_after_a_larger_call_reuses_no_stale_values():
    """The chunk buffers are reused between calls: a smaller call after a larger one (fewer
    rows, another vocabulary size) must still equal the reference."""
    large = [t.detach() for t in inputs()]
    fused_output_loss(*large, 0.1, 50)
    generator = torch.Generator().manual_seed(1)
    hidden = torch.randn(5, HIDDEN, generator=generator, dtype=torch.float64)
    weight = torch.randn(7, HIDDEN, generator=generator, dtype=torch.float64)
    bias = torch.randn(7, generator=generator, dtype=torch.float64)
    targets = torch.randint(0, 7, (5,), generator=generator)
    fused = fused_output_loss(hidden, weight, bias, targets, 0.1, 50)
    torch.testing.assert_close(fused, reference_output_loss(hidden, weight, bias, targets, 0.1),
                               atol=1e-10, rtol=0)


def test_fused_loss_backward_twice_is_refused():
    hidden, weight, bias, targets = inputs()
    fused = fused_output_loss(hidden, weight, bias, targets, 0.1, 4)
    fused.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward ran twice"):
        fused.backward()
