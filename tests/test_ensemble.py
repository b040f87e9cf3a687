"""Ensemble decoding (s2s.inference.ensemble): several models with the same vocabularies decode
as one, the mean of their log-probabilities at every step; in the Translator, the commands and
the service (a pair folder of model files)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
import torch

from s2s.config import TokenizerConfig
from s2s.constants import EOS_ID
from s2s.inference.beam import beam_search
from s2s.inference.ensemble import Ensemble
from s2s.inference.search import SearchOptions, greedy_search
from s2s.inference.translator import TranslateOptions, Translator
from s2s.model.model_file import LoadedModel, load_model_files, save_model_file
from s2s.shortlist import Shortlist
from s2s.tokenizer import Tokenizer
from scripts import evaluate as evaluate_script
from scripts import translate as translate_script
from service.serving.registry import find_model_files, member_files
from tests.scripted_model import BOS_ID, ScriptedModel, source
from tests.service_fixtures import ADMIN, serve, settings_for

# Alone, A says 4 and B says 5; both like 6 second best, so the ensemble says 6.
MEMBER_A = ScriptedModel({BOS_ID: {4: 3.0, 6: 2.5, 5: -5.0}, 4: {EOS_ID: 3.0},
                          6: {EOS_ID: 3.0, 4: 1.0}})
MEMBER_B = ScriptedModel({BOS_ID: {5: 3.0, 6: 2.5, 4: -5.0}, 5: {EOS_ID: 3.0},
                          6: {EOS_ID: 1.0, 4: 0.5}})


def mean_log_probs(models: list[ScriptedModel], prev: int) -> torch.Tensor:
    """By hand: the mean over members of log_softmax(table[prev]), (VOCAB,)."""
    return torch.stack([torch.log_softmax(m.table[prev], dim=-1) for m in models]).mean(0)


def hand_score(models: list[ScriptedModel], tokens: list[int]) -> float:
    """The summed mean log-probability of ``tokens`` then EOS."""
    path = [BOS_ID, *tokens, EOS_ID]
    return sum(float(mean_log_probs(models, prev)[nxt]) for prev, nxt in zip(path, path[1:]))


def hand_greedy(models: list[ScriptedModel]) -> list[int]:
    """By hand: follow the argmax of the mean log-probabilities to EOS."""
    tokens, prev = [], BOS_ID
    while True:
        prev = int(mean_log_probs(models, prev).argmax())
        if prev == EOS_ID:
            return tokens
        tokens.append(prev)


@pytest.fixture
def two_models(make_model, tokenizer) -> list[LoadedModel]:
    """Two tiny members of different shapes sharing ``tokenizer`` (40 pieces)."""
    first = make_model(seed=1, vocab=40).eval()
    second = make_model(seed=2, vocab=40, cell="gru", enc_hidden=24, dec_hidden=20,
                        input_feeding=True, attention="bahdanau").eval()
    return [LoadedModel(first, tokenizer, {"name": "first"}),
            LoadedModel(second, tokenizer, {"name": "second"})]


@pytest.fixture
def two_files(two_models, tmp_path) -> list[Path]:
    paths = [tmp_path / "a.pt", tmp_path / "b.pt"]
    for path, loaded in zip(paths, two_models):
        save_model_file(path, loaded.model, loaded.tokenizer, loaded.meta)
    return paths


@pytest.fixture
def other_file(make_model, corpus, tmp_path) -> Path:
    """A model file whose SentencePiece model differs from ``tokenizer``'s (also 40 pieces)."""
    src, tgt = corpus
    other = Tokenizer.train(tgt, src, TokenizerConfig(vocab_size=40), seed=1)
    path = tmp_path / "odd.pt"
    save_model_file(path, make_model(seed=3, vocab=40), other)
    return path


@pytest.mark.parametrize("beam", [1, 3])
def test_an_ensemble_of_one_decodes_exactly_as_its_model(make_model, beam):
    model = make_model(seed=4, vocab=40).eval()
    src = torch.randint(4, 40, (3, 6))
    src[1, 3:] = 0
    lens = torch.tensor([6, 3, 6])
    options = SearchOptions(beam_size=beam, n_best=min(beam, 2), return_attention=True)

    def run(step_model):
        if beam == 1:
            return [[h] for h in greedy_search(step_model, src, lens, options)]
        return beam_search(step_model, src, lens, options)

    plain, ensemble = run(model), run(Ensemble([model]))
    assert [[h.tokens for h in n] for n in ensemble] == [[h.tokens for h in n] for n in plain]
    assert [[h.score for h in n] for n in ensemble] == [[h.score for h in n] for n in plain]
    for got, want in zip(ensemble, plain):
        assert all(torch.equal(g.attention, w.attention) for g, w in zip(got, want))


@pytest.mark.parametrize("beam", [1, 3])
def test_ensemble_scores_are_the_mean_of_the_members_log_probabilities(beam):
    members = [MEMBER_A, MEMBER_B]
    src, lens = source()
    ensemble = Ensemble(members)
    if beam == 1:
        best = greedy_search(ensemble, src, lens, SearchOptions(beam_size=1))[0]
    else:
        best = beam_search(ensemble, src, lens, SearchOptions(beam_size=beam))[0][0]
    assert greedy_search(MEMBER_A, src, lens, SearchOptions(beam_size=1))[0].tokens == [4]
    assert greedy_search(MEMBER_B, src, lens, SearchOptions(beam_size=1))[0].tokens == [5]
    assert best.tokens == hand_greedy(members) == [6]
    assert best.score == pytest.approx(hand_score(members, [6]), abs=1e-5)


@pytest.mark.parametrize("beam", [1, 4])
def test_an_ensemble_translates_a_sentence_the_same_alone_and_in_a_batch(two_models, corpus,
                                                                         beam):
    translator = Translator(two_models)
    texts = corpus[0][:8]
    options = TranslateOptions(search=SearchOptions(beam_size=beam, max_len_b=4))
    together = translator.translate(texts, options)
    for text, result in zip(texts, together):
        alone = translator.translate([text], options)[0]
        assert alone.text == result.text
        assert alone.score == pytest.approx(result.score, abs=1e-4)


def corpus_shortlist(tokenizer: Tokenizer, corpus: tuple[list[str], list[str]]) -> Shortlist:
    """A small shortlist of ``corpus``: 2 pieces per source piece, 3 frequent ones."""
    src, tgt = tokenizer.src.encode(corpus[0]), tokenizer.tgt.encode(corpus[1])
    return Shortlist.build(src, tgt, 40, 40, per_source=2, frequent=3)


def test_the_first_members_shortlist_restricts_every_sentence(two_models, corpus):
    shortlist = corpus_shortlist(two_models[0].tokenizer, corpus)
    two_models[0].shortlist = shortlist
    translator = Translator(two_models)
    assert translator.shortlist is shortlist
    texts = corpus[0][:6]
    options = TranslateOptions(search=SearchOptions(beam_size=3, max_len_b=4))
    pieces = translator.tokenizer.tgt.id_to_piece(list(range(40)))
    for prepared, result in zip(translator.prepare(texts), translator.translate(texts, options)):
        allowed = shortlist.allowed(torch.tensor([prepared.ids]))[0].nonzero().squeeze(1)
        assert set(result.tokens) <= {pieces[i] for i in allowed.tolist()}


def test_an_int8_ensemble_translates(two_models, corpus):
    two_models[0].shortlist = corpus_shortlist(two_models[0].tokenizer, corpus)
    translator = Translator(two_models, dtype="int8")
    assert len(translator.members) == 2
    for member in translator.members:
        assert any(type(m).__module__.startswith("torch.ao.nn.quantized")
                   for m in member.modules())
    options = TranslateOptions(search=SearchOptions(beam_size=2, max_len_b=4))
    results = translator.translate(corpus[0][:4], options)
    assert len(results) == 4 and all(r.tokens for r in results)


def test_a_bf16_ensemble_translates_with_the_mean_attention(two_models, corpus, monkeypatch):
    monkeypatch.setattr("s2s.inference.translator.cpu_has_native_bf16", lambda: True)
    translator = Translator(two_models, dtype="bf16")    # emulated here: slow, but tiny
    assert all(p.dtype == torch.bfloat16 for p in translator.model.parameters())
    options = TranslateOptions(search=SearchOptions(beam_size=2, max_len_b=4), replace_unk=True)
    for result in translator.translate(corpus[0][:3], options):
        assert len(result.attention) == len(result.tokens) + 1
        assert all(sum(row) == pytest.approx(1.0, abs=1e-2) for row in result.attention)


def test_files_with_other_sentencepiece_models_are_refused(two_files, other_file):
    with pytest.raises(ValueError, match="odd.pt has other SentencePiece models than .*a.pt"):
        load_model_files([two_files[0], other_file])
    with pytest.raises(ValueError, match="odd.pt"):
        Translator.from_files([*two_files, other_file])


def test_translate_command_with_two_models_translates_with_the_ensemble(two_files, corpus,
                                                                        capsys):
    texts = corpus[0][:3]
    models = [arg for path in two_files for arg in ("--model", str(path))]
    assert translate_script.main([*models, "--beam", "2", "--max-len-b", "4", *texts]) == 0
    expected = Translator.from_files(two_files).translate(
        texts, TranslateOptions(search=SearchOptions(beam_size=2, max_len_b=4)))
    assert capsys.readouterr().out.splitlines() == [r.text for r in expected]


def test_evaluate_command_with_two_models_records_both(two_files, corpus, tmp_path, capsys):
    src, ref, out = tmp_path / "src.txt", tmp_path / "ref.txt", tmp_path / "scores.json"
    src.write_text("\n".join(corpus[0][:3]) + "\n")
    ref.write_text("\n".join(corpus[1][:3]) + "\n")
    models = [arg for path in two_files for arg in ("--model", str(path))]
    assert evaluate_script.main([*models, "--src", str(src), "--ref", str(ref), "--beam", "2",
                                 "--max-len-b", "4", "--json", str(out)]) == 0
    assert "BLEU" in capsys.readouterr().out
    assert json.loads(out.read_text())["model"] == [str(p) for p in two_files]


def test_the_service_serves_a_pair_folder_as_an_ensemble(two_files, tmp_path):
    models_dir = tmp_path / "models"
    (models_dir / "en-xx").mkdir(parents=True)
    for path in two_files:
        shutil.copy(path, models_dir / "en-xx" / path.name)

    async def main():
        async with serve(settings_for(models_dir, default_beam_size=1)) as client:
            registry = client.app.state.service.registry
            translator = registry.slots["en-xx"].translator
            ready = await client.get("/ready")
            listed = await client.get("/v1/models")
            shutil.copy(two_files[0], models_dir / "en-xx" / "c.pt")
            report = await client.post("/admin/reload", headers=ADMIN)
            return translator, ready.json(), listed.json(), report.json(), registry

    translator, ready, listed, report, registry = asyncio.run(main())
    assert len(translator.members) == 2 and translator.meta["ensemble_members"] == 2
    assert ready["models"]["en-xx"] == {"state": "ready", "members": 2}
    assert [(m["pair"], m["file"], m["members"]) for m in listed] == [("en-xx", "en-xx", 2)]
    assert report["loaded"] == ["en-xx"] and registry.slots["en-xx"].members == 3


def test_the_service_reports_a_pair_folder_of_other_vocabularies_as_failed(two_files,
                                                                          other_file, tmp_path):
    folder = tmp_path / "models" / "en-xx"
    folder.mkdir(parents=True)
    shutil.copy(two_files[0], folder / "a.pt")
    shutil.copy(other_file, folder / "b.pt")

    async def main():
        async with serve(settings_for(folder.parent)) as client:
            return (await client.get("/ready")).json()

    state = asyncio.run(main())["models"]["en-xx"]
    assert state == {"state": "failed", "reason": "the ensemble's model files do not share "
                                                  "their SentencePiece models"}


def test_model_discovery_takes_a_pair_folder_with_model_files(tmp_path):
    for name in ["de-en.pt", "en-xx/b.pt", "en-xx/a.pt", "en-xx/notes.txt", "en-xx.pt",
                 "fr-en/readme.txt", "misc/a.pt"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x")
    found = find_model_files(tmp_path)
    assert found == {"de-en": tmp_path / "de-en.pt", "en-xx": tmp_path / "en-xx"}
    assert member_files(found["en-xx"]) == [tmp_path / "en-xx/a.pt", tmp_path / "en-xx/b.pt"]
