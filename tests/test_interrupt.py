"""Stopping decoding from outside (s2s.inference.interrupt): unwanted inputs leave the batch,
a deadline stops it, and decoding advances one step per yield."""

from __future__ import annotations

import time

import pytest
import torch

from s2s.batching import BatchBudget
from s2s.inference.beam import beam_search, beam_steps
from s2s.inference.decode import decode_steps
from s2s.inference.interrupt import DecodingInterrupted, Interrupt, run_to_end
from s2s.inference.search import SearchOptions, greedy_search, greedy_steps

SOURCES = [[5, 6, 7], [8, 9], [10, 11, 12, 13]]


def batch():
    src = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0], [10, 11, 12, 13]])
    return src, torch.tensor([3, 2, 4])


def test_a_dropped_sentence_comes_back_empty_and_the_others_unchanged(make_model):
    model = make_model(seed=1).eval()
    options = SearchOptions(beam_size=3, n_best=2)
    plain = beam_search(model, *batch(), options)
    dropped = run_to_end(beam_steps(model, *batch(), options,
                                    interrupt=Interrupt(wanted=lambda i: i != 1)))
    assert dropped[1] == []
    for row in (0, 2):
        assert [h.tokens for h in dropped[row]] == [h.tokens for h in plain[row]]


def test_greedy_drops_unwanted_sentences_too(make_model):
    model = make_model(seed=1).eval()
    plain = greedy_search(model, *batch())
    dropped = run_to_end(greedy_steps(model, *batch(),
                                      interrupt=Interrupt(wanted=lambda i: i == 2)))
    assert dropped[0] is None and dropped[1] is None
    assert dropped[2].tokens == plain[2].tokens


def test_a_sentence_dropped_mid_way_stops_costing_steps(make_model):
    model = make_model(seed=1).eval()
    wanted = {0: True, 1: True, 2: True}
    steps = beam_steps(model, *batch(), SearchOptions(beam_size=2, max_len_a=0, max_len_b=50),
                       interrupt=Interrupt(wanted=wanted.__getitem__))
    next(steps)
    wanted.update({0: False, 1: False, 2: False})
    next(steps)                             # the step that notices drops every sentence
    with pytest.raises(StopIteration) as finished:
        next(steps)                         # nobody is left: the search ends
    assert finished.value.value == [[], [], []]


def test_past_the_deadline_decoding_stops():
    from tests.scripted_model import ScriptedModel, source

    model = ScriptedModel({})               # never prefers EOS: runs to the length limit
    interrupt = Interrupt(deadline=time.monotonic() - 1)
    with pytest.raises(DecodingInterrupted):
        run_to_end(beam_steps(model, *source(), SearchOptions(beam_size=2), interrupt=interrupt))


def test_a_batch_nobody_wants_is_never_decoded(make_model):
    model = make_model(seed=1).eval()
    calls = []
    model.encode_for_steps = lambda *args: calls.append(args)   # would fail if decoded
    results = run_to_end(decode_steps(model, SOURCES, SearchOptions(beam_size=2),
                                      BatchBudget(100), torch.device("cpu"),
                                      interrupt=Interrupt(wanted=lambda i: False)))
    assert results == [[], [], []] and calls == []


def test_decoding_yields_once_per_step(make_model):
    model = make_model(seed=1).eval()
    options = SearchOptions(beam_size=1, max_len_a=0, max_len_b=4)
    steps = greedy_steps(model, *batch(), options)
    count = 0
    with pytest.raises(StopIteration):
        while True:
            next(steps)
            count += 1
    assert 1 <= count <= 4
