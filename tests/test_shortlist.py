"""Lexical shortlist: construction, candidates, and decoding restricted to it."""

from __future__ import annotations

import torch

from s2s.beam import beam_search
from s2s.search import SearchOptions, greedy_search
from s2s.shortlist import Shortlist
from s2s.tokenizer import SPECIAL_IDS

# source piece 5 always comes with target 9, source 6 with target 10; target 4 is everywhere
SRC = [[5, 7], [5, 8], [6, 7], [6, 8], [5, 6]]
TGT = [[9, 4], [9, 4], [10, 4], [10, 4], [9, 10, 4]]


def test_each_source_piece_lists_its_translation_first():
    shortlist = Shortlist.build(SRC, TGT, src_vocab_size=12, tgt_vocab_size=12, per_source=1,
                                frequent=0)
    assert shortlist.table[5, 0] == 9
    assert shortlist.table[6, 0] == 10
    assert shortlist.table[11, 0] == -1  # never seen


def test_candidates_hold_specials_frequent_and_listed_pieces():
    shortlist = Shortlist.build(SRC, TGT, 12, 12, per_source=1, frequent=1)
    ids = shortlist.candidates(torch.tensor([[5, 7, 0]])).tolist()
    assert ids == sorted(ids)
    assert set(SPECIAL_IDS) <= set(ids)
    assert 4 in ids and 9 in ids      # most frequent, and listed for source piece 5
    assert 10 not in ids              # listed only for source piece 6, absent here


def test_state_dict_round_trip():
    shortlist = Shortlist.build(SRC, TGT, 12, 12, per_source=2, frequent=1)
    restored = Shortlist.from_state_dict(shortlist.state_dict())
    src = torch.tensor([[5, 6, 8]])
    assert torch.equal(restored.candidates(src), shortlist.candidates(src))


def test_decoding_with_the_whole_vocabulary_as_subset_matches_unrestricted(make_model):
    model = make_model(seed=2, vocab=40).eval()
    src = torch.randint(4, 40, (3, 6))
    src[2, 4:] = 0
    lens = torch.tensor([6, 6, 4])
    everything = torch.arange(40)
    options = SearchOptions(beam_size=3, n_best=2)
    full = beam_search(model, src, lens, options)
    restricted = beam_search(model, src, lens, options, everything)
    assert [[h.tokens for h in n] for n in full] == [[h.tokens for h in n] for n in restricted]
    greedy_full = greedy_search(model, src, lens)
    greedy_restricted = greedy_search(model, src, lens, vocab_subset=everything)
    assert [h.tokens for h in greedy_full] == [h.tokens for h in greedy_restricted]


def test_decoding_never_leaves_the_subset(make_model):
    model = make_model(seed=3, vocab=40).eval()
    src = torch.randint(4, 40, (4, 5))
    lens = torch.full((4,), 5)
    subset = torch.tensor([*SPECIAL_IDS, 11, 17, 23, 31])
    allowed = set(subset.tolist())
    for nbest in beam_search(model, src, lens, SearchOptions(beam_size=3, n_best=3), subset):
        for hyp in nbest:
            assert set(hyp.tokens) <= allowed
    for hyp in greedy_search(model, src, lens, vocab_subset=subset):
        assert set(hyp.tokens) <= allowed


def test_a_sentence_allowed_pieces_do_not_depend_on_the_batch():
    shortlist = Shortlist.build(SRC, TGT, 12, 12, per_source=1, frequent=0)
    batch = torch.tensor([[5, 7], [6, 8]])
    ids = shortlist.candidates(batch)
    in_batch = set(ids[shortlist.row_mask(batch, ids)[0]].tolist())
    alone_ids = shortlist.candidates(batch[:1])
    alone = set(alone_ids[shortlist.row_mask(batch[:1], alone_ids)[0]].tolist())
    assert in_batch == alone
    assert 10 in ids.tolist() and 10 not in in_batch   # the other sentence's piece


def test_row_mask_keeps_decoding_batch_invariant(make_model):
    model = make_model(seed=5, vocab=12).eval()
    shortlist = Shortlist.build(SRC, TGT, 12, 12, per_source=1, frequent=0)
    src = torch.tensor([[5, 7], [6, 8]])
    lens = torch.tensor([2, 2])
    ids = shortlist.candidates(src)
    together = greedy_search(model, src, lens, vocab_subset=ids,
                             row_mask=shortlist.row_mask(src, ids))
    alone_ids = shortlist.candidates(src[:1])
    alone = greedy_search(model, src[:1], lens[:1], vocab_subset=alone_ids,
                          row_mask=shortlist.row_mask(src[:1], alone_ids))
    assert together[0].tokens == alone[0].tokens
    assert together[0].score == alone[0].score
