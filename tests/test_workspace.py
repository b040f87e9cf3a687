"""Scratch buffers reused between calls, per thread."""

from __future__ import annotations

import threading

import torch

from s2s.model.workspace import Workspace

CPU = torch.device("cpu")


def test_a_second_request_of_the_same_size_reuses_the_buffer():
    workspace = Workspace()
    first = workspace.get("logits", (4, 6), torch.float32, CPU)
    second = workspace.get("logits", (4, 6), torch.float32, CPU)
    assert second.data_ptr() == first.data_ptr()


def test_a_smaller_request_is_a_contiguous_view_of_the_same_buffer():
    workspace = Workspace()
    first = workspace.get("logits", (4, 6), torch.float32, CPU)
    smaller = workspace.get("logits", (3, 5), torch.float32, CPU)
    assert smaller.shape == (3, 5) and smaller.is_contiguous()
    assert smaller.data_ptr() == first.data_ptr()


def test_a_larger_request_grows_the_buffer():
    workspace = Workspace()
    workspace.get("logits", (2, 2), torch.float32, CPU)
    larger = workspace.get("logits", (8, 8), torch.float32, CPU)
    larger.fill_(1.0)
    assert larger.shape == (8, 8) and float(larger.sum()) == 64.0


def test_names_and_dtypes_have_separate_buffers():
    workspace = Workspace()
    logits = workspace.get("logits", (4,), torch.float32, CPU)
    probs = workspace.get("probs", (4,), torch.float32, CPU)
    low = workspace.get("logits", (4,), torch.bfloat16, CPU)
    assert len({logits.data_ptr(), probs.data_ptr(), low.data_ptr()}) == 3


def test_threads_get_their_own_buffers():
    workspace = Workspace()
    mine = workspace.get("logits", (16,), torch.float32, CPU)
    pointers = []
    thread = threading.Thread(
        target=lambda: pointers.append(workspace.get("logits", (16,), torch.float32,
                                                     CPU).data_ptr()))
    thread.start()
    thread.join()
    assert pointers and pointers[0] != mine.data_ptr()
