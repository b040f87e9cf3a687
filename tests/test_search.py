"""Greedy and beam search: stopping, length limits, ranking, blocking (scripted model)."""

from __future__ import annotations

import math

import pytest
import torch

from s2s.inference.beam import beam_search
from s2s.inference.search import SearchOptions, gnmt_length_penalty, greedy_search
from tests.scripted_model import BOS_ID, EOS_ID, ScriptedModel, source

# BOS -> 4 -> EOS is by far the likeliest sentence.
SHORT = ScriptedModel({BOS_ID: {4: 5.0}, 4: {EOS_ID: 5.0, 5: 0.0}, 5: {EOS_ID: 5.0}})
# 4 4 4 ... forever: EOS is never likely.
LOOP = ScriptedModel({BOS_ID: {4: 5.0}, 4: {4: 5.0}})


@pytest.mark.parametrize("beam", [1, 3])
def test_eos_stops_the_hypothesis(beam):
    src, lens = source()
    hyps = beam_search(SHORT, src, lens, SearchOptions(beam_size=beam)) if beam > 1 else \
        [[h] for h in greedy_search(SHORT, src, lens, SearchOptions(beam_size=1))]
    assert hyps[0][0].tokens == [4]


@pytest.mark.parametrize("beam", [1, 3])
def test_max_length_is_per_sentence_and_counts_eos(beam):
    src, _ = source(batch=2, length=6)
    lens = torch.tensor([6, 2])
    options = SearchOptions(beam_size=beam, max_len_a=1.0, max_len_b=1)
    if beam == 1:
        hyps = greedy_search(LOOP, src, lens, options)
    else:
        hyps = [nbest[0] for nbest in beam_search(LOOP, src, lens, options)]
    # limits 1 * 6 + 1 = 7 and 1 * 2 + 1 = 3 tokens including the forced EOS
    assert [len(h.tokens) for h in hyps] == [6, 2]


@pytest.mark.parametrize("beam", [1, 3])
def test_min_length_forbids_early_eos(beam):
    src, lens = source(length=4)
    options = SearchOptions(beam_size=beam, min_len_a=1.0, min_len_b=0)
    if beam == 1:
        hyp = greedy_search(SHORT, src, lens, options)[0]
    else:
        hyp = beam_search(SHORT, src, lens, options)[0][0]
    assert len(hyp.tokens) + 1 >= 4


def test_n_best_is_sorted_by_normalized_score():
    model = ScriptedModel({BOS_ID: {4: 2.0, 5: 1.5, 6: 1.0}, 4: {EOS_ID: 3.0},
                           5: {EOS_ID: 3.0}, 6: {EOS_ID: 3.0}})
    src, lens = source()
    nbest = beam_search(model, src, lens, SearchOptions(beam_size=3, n_best=3))[0]
    assert [h.tokens for h in nbest] == [[4], [5], [6]]
    scores = [h.normalized_score for h in nbest]
    assert scores == sorted(scores, reverse=True)


def test_length_penalty_changes_the_ranking():
    # "4" EOS scores better raw (-0.83) than "5 6 7" EOS (-0.91); dividing by the GNMT
    # penalty with alpha 2 flips that (-0.61 vs -0.41).
    model = ScriptedModel({BOS_ID: {4: 0.0, 5: -0.4}, 4: {EOS_ID: 0.0, 7: -1.0},
                           5: {6: 0.0}, 6: {7: 0.0}, 7: {EOS_ID: 0.0}})
    src, lens = source(length=6)
    raw = beam_search(model, src, lens, SearchOptions(beam_size=4, n_best=2,
                                                      length_penalty=0.0))[0]
    normalized = beam_search(model, src, lens, SearchOptions(beam_size=4, n_best=2,
                                                             length_penalty=2.0))[0]
    assert raw[0].tokens == [4]
    assert normalized[0].tokens == [5, 6, 7]
    best = normalized[0]
    assert math.isclose(best.normalized_score,
                        best.score / gnmt_length_penalty(len(best.tokens) + 1, 2.0))


def test_repeated_ngrams_are_blocked():
    # 4 5 4 5 4 5 ... unless blocked; 6 is the fallback.
    model = ScriptedModel({BOS_ID: {4: 5.0}, 4: {5: 5.0, 6: 1.0}, 5: {4: 5.0, 6: 1.0},
                           6: {4: 2.0, 5: 2.0, EOS_ID: 3.0}})
    src, lens = source(length=8)
    options = SearchOptions(beam_size=1, no_repeat_ngram=2, max_len_a=0.0, max_len_b=10)
    tokens = greedy_search(model, src, lens, options)[0].tokens
    bigrams = list(zip(tokens, tokens[1:]))
    assert len(bigrams) == len(set(bigrams))
    unblocked = greedy_search(model, src, lens, SearchOptions(beam_size=1, max_len_a=0.0,
                                                              max_len_b=10))[0].tokens
    assert len(set(zip(unblocked, unblocked[1:]))) < len(unblocked) - 1


def test_forbid_unk_never_outputs_unk():
    model = ScriptedModel({BOS_ID: {1: 9.0, 4: 1.0}, 4: {EOS_ID: 5.0}, 1: {EOS_ID: 5.0}})
    src, lens = source()
    assert greedy_search(model, src, lens, SearchOptions(beam_size=1))[0].tokens == [1]
    assert greedy_search(model, src, lens, SearchOptions(beam_size=1, forbid_unk=True)
                         )[0].tokens == [4]


def test_beam_1_equals_greedy_on_a_real_model(make_model):
    model = make_model(seed=4, vocab=40).eval()
    torch.manual_seed(0)
    src = torch.randint(4, 40, (6, 7))
    lens = torch.tensor([7, 7, 6, 5, 3, 2])
    for row, length in enumerate(lens.tolist()):
        src[row, length:] = 0
    greedy = greedy_search(model, src, lens, SearchOptions(beam_size=1))
    beam = beam_search(model, src, lens, SearchOptions(beam_size=1))
    assert [h.tokens for h in greedy] == [b[0].tokens for b in beam]
    for g, b in zip(greedy, beam):
        assert math.isclose(g.score, b[0].score, rel_tol=1e-5, abs_tol=1e-5)


def test_beam_search_attention_rows_sum_to_one(make_model):
    model = make_model(seed=4, vocab=40).eval()
    src = torch.randint(4, 40, (2, 5))
    src[1, 3:] = 0
    lens = torch.tensor([5, 3])
    nbest = beam_search(model, src, lens, SearchOptions(beam_size=3, return_attention=True))
    for row, hyps in enumerate(nbest):
        attention = hyps[0].attention
        assert attention.shape == (len(hyps[0].tokens) + 1, 5)
        torch.testing.assert_close(attention.sum(1), torch.ones(attention.size(0)))
        assert float(attention[:, lens[row]:].abs().sum()) == 0.0


def test_invalid_options_are_refused():
    with pytest.raises(ValueError, match="n_best"):
        SearchOptions(beam_size=2, n_best=3)
    with pytest.raises(ValueError, match="beam_size"):
        SearchOptions(beam_size=0)


def test_beam_search_decodes_one_row_per_sentence_at_the_first_step():
    model = ScriptedModel({BOS_ID: {5: 2.0, 6: 1.0, 7: 0.5}, 5: {EOS_ID: 3.0},
                           6: {EOS_ID: 3.0}, 7: {EOS_ID: 3.0}})
    rows_per_step = []
    decode_step = model.decode_step

    def counting_step(prev, encoded, state, space=None):
        rows_per_step.append(prev.numel())
        return decode_step(prev, encoded, state, space)

    model.decode_step = counting_step
    hyps = beam_search(model, *source(batch=2),
                       SearchOptions(beam_size=3, n_best=3, length_penalty=0.0))
    assert rows_per_step[:2] == [2, 6]
    assert [h.tokens for h in hyps[1]] == [[5], [6], [7]]


def test_search_maps_output_space_positions_back_to_vocabulary_ids():
    """With a restriction, a step scores positions in the output space; the hypotheses hold
    the vocabulary ids those positions stand for."""
    from s2s.shortlist import Restriction

    model = ScriptedModel({BOS_ID: {6: 2.0}, 6: {EOS_ID: 3.0}})
    shared = torch.tensor([0, 1, 2, 3, 6])          # position 4 is vocabulary id 6
    empty = shared.new_zeros((1, 0))
    restriction = Restriction(shared, empty, empty.bool())
    greedy = greedy_search(model, *source(), restriction=restriction)
    beam = beam_search(model, *source(), SearchOptions(beam_size=2), restriction)
    assert greedy[0].tokens == [6] and beam[0][0].tokens == [6]


def test_search_limits_name_the_first_option_above_its_limit():
    from s2s.inference.search import SearchLimitError, SearchLimits

    limits = SearchLimits(beam_size=4, n_best=2)
    limits.check(SearchOptions(beam_size=4, n_best=2))                  # at the limits: fine
    with pytest.raises(SearchLimitError) as refused:
        limits.check(SearchOptions(beam_size=5))
    assert (refused.value.option, refused.value.value, refused.value.limit) == ("beam_size", 5, 4)


def test_each_sentence_stops_by_its_own_n_best_in_a_shared_batch():
    """A sentence asking for one candidate translates the same beside one asking for more,
    and each gets its own number of candidates."""
    src, lens = source(batch=2)
    options = SearchOptions(beam_size=3, n_best=1)
    alone = beam_search(SHORT, src[:1], lens[:1], options)[0]
    shared = beam_search(SHORT, src, lens, SearchOptions(beam_size=3, n_best=2), n_bests=[1, 2])
    assert [(h.tokens, h.score) for h in shared[0]] == [(h.tokens, h.score) for h in alone]
    assert len(shared[0]) == 1 and len(shared[1]) == 2
