"""Lexical shortlist: construction, candidates, and decoding restricted to it."""

from __future__ import annotations

import pytest
import torch

from s2s.constants import SPECIAL_IDS
from s2s.inference.beam import beam_search
from s2s.inference.search import SearchOptions, greedy_search
from s2s.shortlist import Restriction, Shortlist

# source piece 5 always comes with target 9, source 6 with target 10; target 4 is everywhere
SRC = [[5, 7], [5, 8], [6, 7], [6, 8], [5, 6]]
TGT = [[9, 4], [9, 4], [10, 4], [10, 4], [9, 10, 4]]


def same_for_all(ids: torch.Tensor, batch: int) -> Restriction:
    """Every sentence may emit exactly ``ids`` (sorted, the special ids first)."""
    empty = ids.new_zeros((batch, 0))
    return Restriction(ids, empty, empty.bool())


def candidates(shortlist: Shortlist, src: torch.Tensor) -> list[int]:
    """Sorted target ids any sentence of ``src`` may use."""
    return shortlist.allowed(src).any(0).nonzero().squeeze(1).tolist()


def test_each_source_piece_lists_its_translation_first():
    shortlist = Shortlist.build(SRC, TGT, src_vocab_size=12, tgt_vocab_size=12, per_source=1,
                                frequent=0)
    assert shortlist.table[5, 0] == 9
    assert shortlist.table[6, 0] == 10
    assert shortlist.table[11, 0] == -1  # never seen


def test_candidates_hold_specials_frequent_and_listed_pieces():
    shortlist = Shortlist.build(SRC, TGT, 12, 12, per_source=1, frequent=1)
    ids = candidates(shortlist, torch.tensor([[5, 7, 0]]))
    assert ids == sorted(ids)
    assert set(SPECIAL_IDS) <= set(ids)
    assert 4 in ids and 9 in ids      # most frequent, and listed for source piece 5
    assert 10 not in ids              # listed only for source piece 6, absent here


def test_state_dict_round_trip():
    shortlist = Shortlist.build(SRC, TGT, 12, 12, per_source=2, frequent=1)
    restored = Shortlist.from_state_dict(shortlist.state_dict())
    src = torch.tensor([[5, 6, 8]])
    assert candidates(restored, src) == candidates(shortlist, src)


def test_decoding_with_the_whole_vocabulary_as_subset_matches_unrestricted(make_model):
    model = make_model(seed=2, vocab=40).eval()
    src = torch.randint(4, 40, (3, 6))
    src[2, 4:] = 0
    lens = torch.tensor([6, 6, 4])
    everything = torch.arange(40)
    options = SearchOptions(beam_size=3, n_best=2)
    restriction = same_for_all(everything, 3)
    full = beam_search(model, src, lens, options)
    restricted = beam_search(model, src, lens, options, restriction)
    assert [[h.tokens for h in n] for n in full] == [[h.tokens for h in n] for n in restricted]
    greedy_full = greedy_search(model, src, lens)
    greedy_restricted = greedy_search(model, src, lens, restriction=restriction)
    assert [h.tokens for h in greedy_full] == [h.tokens for h in greedy_restricted]


def test_decoding_never_leaves_the_subset(make_model):
    model = make_model(seed=3, vocab=40).eval()
    src = torch.randint(4, 40, (4, 5))
    lens = torch.full((4,), 5)
    subset = torch.tensor([*SPECIAL_IDS, 11, 17, 23, 31])
    allowed = set(subset.tolist())
    restriction = same_for_all(subset, 4)
    for nbest in beam_search(model, src, lens, SearchOptions(beam_size=3, n_best=3),
                             restriction):
        for hyp in nbest:
            assert set(hyp.tokens) <= allowed
    for hyp in greedy_search(model, src, lens, restriction=restriction):
        assert set(hyp.tokens) <= allowed


def allowed_ids(restriction: Restriction, sentence: int) -> set[int]:
    own = restriction.own[sentence][restriction.own_valid[sentence]]
    return set(restriction.shared.tolist()) | set(own.tolist())


def test_a_sentence_allowed_pieces_do_not_depend_on_the_batch():
    shortlist = Shortlist.build(SRC, TGT, 12, 12, per_source=1, frequent=1)
    batch = torch.tensor([[5, 7], [6, 8]])
    in_batch = allowed_ids(shortlist.restriction(batch), 0)
    assert in_batch == allowed_ids(shortlist.restriction(batch[:1]), 0)
    assert 9 in in_batch and 10 not in in_batch   # its own piece, not the other sentence's


def test_shared_pieces_are_not_repeated_among_a_sentence_own():
    shortlist = Shortlist.build(SRC, TGT, 12, 12, per_source=2, frequent=1)
    restriction = shortlist.restriction(torch.tensor([[5, 6, 7], [8, 0, 0]]))
    shared = set(restriction.shared.tolist())
    assert restriction.shared[:len(SPECIAL_IDS)].tolist() == list(SPECIAL_IDS)
    for row in range(2):
        own = restriction.own[row][restriction.own_valid[row]].tolist()
        assert own == sorted(own) and not shared & set(own)


def test_own_output_spaces_decode_as_each_sentence_restricted_alone(make_model):
    """Decoding a batch whose sentences have different candidates gives each sentence what
    decoding it alone with exactly its candidates gives."""
    model = make_model(seed=5, vocab=12).eval()
    shortlist = Shortlist.build(SRC, TGT, 12, 12, per_source=2, frequent=1)
    src = torch.tensor([[5, 7], [6, 8], [5, 6]])
    lens = torch.tensor([2, 2, 2])
    options = SearchOptions(beam_size=3, n_best=2)
    restriction = shortlist.restriction(src)
    together = beam_search(model, src, lens, options, restriction)
    greedy_together = greedy_search(model, src, lens, restriction=restriction)
    for row in range(3):
        ids = torch.tensor(sorted(allowed_ids(restriction, row)))
        alone = same_for_all(ids, 1)
        single = beam_search(model, src[row:row + 1], lens[:1], options, alone)[0]
        assert [h.tokens for h in together[row]] == [h.tokens for h in single]
        assert [h.score for h in together[row]] == pytest.approx([h.score for h in single])
        greedy = greedy_search(model, src[row:row + 1], lens[:1], restriction=alone)[0]
        assert greedy_together[row].tokens == greedy.tokens
