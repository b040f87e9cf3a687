"""Glossaries and lexical constraints: term matching, constrained beam search (scripted and
tiny real models), the shortlist, batch invariance, and the Translator's glossary API."""

from __future__ import annotations

import pytest
import torch

from s2s.batching import BatchBudget
from s2s.inference.beam import beam_search
from s2s.inference.constraints import (
    Constraints,
    Phrases,
    Progress,
    constrained_beam_search,
    continuing_pieces,
    extend,
    fulfilled,
    met_tokens,
    restriction_with,
)
from s2s.inference.decode import decode_sources, plan_decoding
from s2s.inference.glossary import (
    MAX_SENTENCE_TERMS,
    MAX_TERMS,
    Glossary,
    GlossaryError,
    Term,
    sentence_constraints,
)
from s2s.inference.search import SearchOptions
from s2s.inference.translator import TranslateOptions, Translator
from s2s.shortlist import Shortlist
from s2s.training.demo_task import generate_pairs
from tests.scripted_model import BOS_ID, EOS_ID, ScriptedModel, source

# BOS 4 EOS is by far the likeliest; 6 7 is a possible detour, 5 only follows 4.
MODEL = ScriptedModel({BOS_ID: {4: 5.0, 6: 0.0}, 4: {EOS_ID: 5.0, 5: 0.0, 6: 1.0},
                       5: {EOS_ID: 5.0}, 6: {EOS_ID: 3.0, 7: 2.0}, 7: {EOS_ID: 5.0}})


def glossary(*pairs: tuple[str, str], avoid: tuple[str, ...] = ()) -> Glossary:
    return Glossary(tuple(Term(s, t) for s, t in pairs), avoid)


# -- matching and validation ------------------------------------------------------------------

def test_terms_match_whole_words_case_sensitively():
    terms = glossary(("Mann", "guy"), ("alte Frau", "old lady"), ("U.S.", "US"))
    assert [t.target for t in terms.matches("Der Mann lacht.")] == ["guy"]
    assert terms.matches("(Mann)") and terms.matches("Mann")
    for text in ("Die Mannschaft", "Männer", "ein mann", "Hausmann"):
        assert terms.matches(text) == []
    assert [t.target for t in terms.matches("Eine alte\tFrau und ein Mann")] == ["guy",
                                                                               "old lady"]
    assert terms.matches("Die alte Frauen") == []
    assert [t.target for t in terms.matches("in die U.S. reisen")] == ["US"]


def test_glossary_json_forms_and_errors():
    plain = Glossary.from_json([{"source": "Mann", "target": "guy"}])
    full = Glossary.from_json({"terms": [{"source": " Mann ", "target": "guy"}],
                               "avoid": ["bloke"]})
    assert plain.terms == full.terms == (Term("Mann", "guy"),)
    assert full.avoid == ("bloke",)
    for bad in ({"terms": [{"source": "Mann"}]}, {"terms": "x"}, {"other": []}, "Mann",
                [{"source": "", "target": "guy"}], [{"source": "?!", "target": "x"}],
                [{"source": "Mann", "target": "a"}, {"source": "Mann", "target": "b"}],
                [{"source": "x" * 101, "target": "y"}]):
        with pytest.raises(GlossaryError):
            Glossary.from_json(bad)
    with pytest.raises(GlossaryError, match="at most"):
        glossary(*[(f"w{i}", "t") for i in range(MAX_TERMS + 1)])


def test_a_sentence_matching_too_many_terms_is_an_error_naming_it(tokenizer):
    terms = glossary(*[(f"w{i}", f"t{i}") for i in range(MAX_SENTENCE_TERMS + 1)])
    text = " ".join(f"w{i}" for i in range(MAX_SENTENCE_TERMS + 1))
    with pytest.raises(GlossaryError, match="input 1") as error:
        sentence_constraints(terms, ["w1", text], tokenizer.tgt)
    assert error.value.index == 1


def test_sentence_constraints_encode_matched_targets_once(tokenizer):
    terms = glossary(("cat", "chat"), ("dog", "chat"), ("red", "rouge"), avoid=("grand",))
    found = sentence_constraints(terms, ["the cat and the dog", "a hat"], tokenizer.tgt)
    chat, grand = (tuple(tokenizer.tgt.encode([w])[0]) for w in ("chat", "grand"))
    assert found[0] == Constraints((chat,), (grand,))
    assert found[1] == Constraints((), (grand,))
    assert sentence_constraints(glossary(("cat", "chat")), ["a hat"], tokenizer.tgt) == [None]


# -- progress through phrases -----------------------------------------------------------------

def test_progress_keeps_overlapping_starts():
    """Phrase 4 4 5 after 4 4 4 5: a reset-on-mismatch matcher would miss it."""
    phrases = Phrases(torch.tensor([[[4, 4, 5]]]), torch.tensor([[3]]), torch.tensor([[False]]))
    progress = Progress.start(phrases)
    counts = []
    for token in [4, 4, 4, 5]:
        progress = extend(progress, phrases, torch.tensor([token]))
        counts.append(int(met_tokens(progress, phrases)))
    assert counts == [1, 2, 2, 3]
    assert bool(fulfilled(progress, phrases).all()) and not bool(progress.met.any())
    progress = extend(progress, phrases, torch.tensor([6]), glued=torch.tensor([True]))
    assert not bool(progress.met.any())                 # "4 4 5" glued into a longer word


# -- constrained beam search (scripted model) ---------------------------------------------------

@pytest.mark.parametrize("beam", [1, 3])
def test_include_phrases_appear(beam):
    constraints = [Constraints(((6, 7),)), Constraints(((5,),)), Constraints(((7,), (5,)))]
    src, lens = source(batch=3)
    nbest = constrained_beam_search(MODEL, src, lens, SearchOptions(beam_size=beam),
                                    constraints)
    for sentence, hyps in zip(constraints, nbest):
        assert sentence.satisfied(hyps[0].tokens), hyps[0].tokens


def test_avoid_phrases_never_appear():
    src, lens = source()
    plain = beam_search(MODEL, src, lens, SearchOptions(beam_size=3))[0][0]
    assert plain.tokens == [4]
    avoided = constrained_beam_search(MODEL, src, lens, SearchOptions(beam_size=3),
                                      [Constraints(avoid=((4,),))])[0][0]
    assert 4 not in avoided.tokens
    # a two-piece phrase blocks only its second piece after its first
    model = ScriptedModel({BOS_ID: {4: 5.0}, 4: {5: 5.0, 6: 1.0}, 5: {EOS_ID: 5.0},
                           6: {5: 5.0}})
    hyp = constrained_beam_search(model, src, lens, SearchOptions(beam_size=3),
                                  [Constraints(avoid=((4, 5),))])[0][0]
    assert hyp.tokens == [4, 6, 5]


def test_no_piece_continues_the_word_of_a_phrase():
    """5 continues a word (as "y" after "lad"): it may not follow the phrase 4."""
    model = ScriptedModel({BOS_ID: {4: 5.0}, 4: {5: 5.0, 6: 1.0}, 5: {EOS_ID: 5.0},
                           6: {EOS_ID: 5.0}})
    continuing = continuing_pieces(["<pad>", "<unk>", "<s>", "</s>", "\u2581lad", "y",
                                    "\u2581x", ","])
    assert continuing.tolist() == [False] * 5 + [True, False, False]
    src, lens = source()
    loose = constrained_beam_search(model, src, lens, SearchOptions(beam_size=2),
                                    [Constraints(((4,),))])[0][0]
    whole = constrained_beam_search(model, src, lens, SearchOptions(beam_size=2),
                                    [Constraints(((4,),))], continuing=continuing)[0][0]
    assert loose.tokens == [4, 5] and whole.tokens == [4, 6]


def test_a_phrase_may_continue_into_a_longer_phrase():
    """Terms "hound" (4) and "hounds" (4 5, 5 continuing a word): both whole words."""
    model = ScriptedModel({BOS_ID: {4: 5.0}, 4: {5: 3.0, 6: 3.0, EOS_ID: 1.0},
                           5: {EOS_ID: 5.0, 4: 2.0}, 6: {4: 3.0, EOS_ID: 2.0}})
    continuing = torch.zeros(8, dtype=torch.bool)
    continuing[5] = True
    both = Constraints(((4,), (4, 5)))
    src, lens = source()
    for beam in (1, 3):
        hyp = constrained_beam_search(model, src, lens, SearchOptions(beam_size=beam), [both],
                                      continuing=continuing)[0][0]
        assert both.satisfied(hyp.tokens, continuing), hyp.tokens
    assert not both.satisfied([4, 5], continuing) and both.satisfied([4, 5])


def test_an_unreachable_phrase_ends_at_the_maximum_length_ranked_last():
    src, lens = source(length=2)
    options = SearchOptions(beam_size=2, n_best=2, max_len_a=0.0, max_len_b=2)
    nbest = constrained_beam_search(MODEL, src, lens, options, [Constraints(((6, 7, 5),))])[0]
    assert nbest and all(len(h.tokens) <= 1 for h in nbest)
    assert not Constraints(((6, 7, 5),)).satisfied(nbest[0].tokens)


def test_without_phrases_constrained_search_is_plain_beam_search(make_model):
    model = make_model(seed=4, vocab=40).eval()
    torch.manual_seed(0)
    src = torch.randint(4, 40, (5, 7))
    lens = torch.tensor([7, 6, 5, 3, 2])
    for row, length in enumerate(lens.tolist()):
        src[row, length:] = 0
    options = SearchOptions(beam_size=4, n_best=3)
    plain = beam_search(model, src, lens, options)
    constrained = constrained_beam_search(model, src, lens, options, [Constraints()] * 5)
    for a, b in zip(plain, constrained):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        assert [h.score for h in a] == [h.score for h in b]


def real_batch(make_model):
    model = make_model(seed=7, vocab=40).eval()
    torch.manual_seed(1)
    sources = [torch.randint(4, 40, (n,)).tolist() for n in (7, 3, 6, 5, 2, 7)]
    constraints = [Constraints(((9, 10),)), None, Constraints(((20,), (31,)), ((12,),)),
                   Constraints(avoid=((5, 6),)), Constraints(((33,),)), None]
    return model, sources, constraints


def small_shortlist() -> Shortlist:
    """Each source piece lists two target pieces; 4 and 5 are frequent."""
    table = torch.stack([torch.arange(40) % 36 + 4, (torch.arange(40) * 7) % 36 + 4], 1)
    return Shortlist(table, torch.tensor([4, 5]), 40)


@pytest.mark.parametrize("beam", [1, 4])
@pytest.mark.parametrize("with_shortlist", [False, True])
def test_a_sentence_decodes_the_same_alone_and_in_a_batch(make_model, beam, with_shortlist):
    model, sources, constraints = real_batch(make_model)
    shortlist = small_shortlist() if with_shortlist else None
    options = SearchOptions(beam_size=beam, n_best=1)
    budget, device = BatchBudget(10_000), torch.device("cpu")
    together = decode_sources(model, sources, options, budget, device, shortlist, constraints)
    for index, (ids, held) in enumerate(zip(sources, constraints)):
        alone = decode_sources(model, [ids], options, budget, device, shortlist, [held])[0]
        assert alone[0].tokens == together[index][0].tokens, index
        assert alone[0].score == pytest.approx(together[index][0].score, abs=1e-5)
        if held:
            assert held.satisfied(alone[0].tokens)
    plain = decode_sources(model, sources, options, budget, device, shortlist)
    assert together[1][0].tokens == plain[1][0].tokens   # no constraints: untouched
    assert together[5][0].tokens == plain[5][0].tokens
    # the same up to float rounding: the batch's other rows change the kernels' shapes
    assert together[5][0].score == pytest.approx(plain[5][0].score, abs=1e-5)


def test_the_shortlist_is_widened_to_the_include_pieces(make_model):
    shortlist = small_shortlist()
    src = torch.tensor([[4, 4], [5, 0]])
    assert not shortlist.allowed(src)[0, 9]
    restriction = restriction_with(shortlist, src, [Constraints(((9, 38),)), Constraints()])
    own0 = restriction.own[0][restriction.own_valid[0]].tolist()
    own1 = restriction.own[1][restriction.own_valid[1]].tolist()
    assert {9, 38} <= set(own0) and own0 == sorted(own0)
    assert own1 == sorted(set(shortlist.allowed(src)[1].nonzero().squeeze(1).tolist())
                          - set(shortlist.shared_ids.tolist()))
    model = make_model(seed=7, vocab=40).eval()
    hyps = decode_sources(model, [[4, 4]], SearchOptions(beam_size=3), BatchBudget(),
                          torch.device("cpu"), shortlist, [Constraints(((9, 38),))])
    assert Constraints(((9, 38),)).satisfied(hyps[0][0].tokens)


def test_constrained_sources_are_batched_apart():
    plan = plan_decoding([3, 4, 5, 0], BatchBudget(100), [None, Constraints(((9,),)), None,
                                                         Constraints(((9,),))])
    assert plan == [([0, 2], False), ([1], True)]
    assert plan_decoding([3, 4], BatchBudget(100)) == [([0, 1], False)]


# -- the Translator's API -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def translator(trained_demo_run) -> Translator:
    return Translator.from_file(trained_demo_run / "model.pt")


def test_translator_enforces_a_glossary(translator):
    sources, _ = generate_pairs(12, seed=5)
    word, wanted = "twenty", "77"      # the targets are dates such as 24.05.2059
    terms = glossary((word, wanted))
    options = TranslateOptions(search=SearchOptions(beam_size=4))
    plain = translator.translate(sources, options)
    results = translator.translate(sources, options, glossary=terms)
    prepared = translator.prepare(sources, terms)
    for text, held, result, before in zip(sources, prepared, results, plain):
        if terms.matches(text):
            assert held.constraints and result.constraints_met
            assert wanted in result.text
        else:
            assert held.constraints is None and result.constraints_met is None
            assert result.text == before.text
    for text, result in zip(sources, results):
        alone = translator.translate([text], options, glossary=terms)[0]
        assert alone.text == result.text


def test_translator_greedy_with_a_glossary_meets_it(translator):
    sources, _ = generate_pairs(4, seed=6)
    terms = glossary((sources[0].split()[0], "77"))
    result = translator.translate(sources[:1], TranslateOptions(
        search=SearchOptions(beam_size=1)), glossary=terms)[0]
    assert result.constraints_met and "77" in result.text


def test_constrained_search_drops_unwanted_inputs(make_model):
    from s2s.inference.decode import decode_steps
    from s2s.inference.interrupt import Interrupt, run_to_end

    model, sources, constraints = real_batch(make_model)
    wanted = Interrupt(wanted=lambda i: i != 2)
    results = run_to_end(decode_steps(model, sources, SearchOptions(beam_size=3),
                                      BatchBudget(10_000), torch.device("cpu"),
                                      interrupt=wanted, constraints=constraints))
    assert results[2] == [] and all(results[i] for i in range(len(sources)) if i != 2)
