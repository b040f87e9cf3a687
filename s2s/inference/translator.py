"""Translator: a model file (or several, an ensemble) -> texts in, translations out, in order.

Two steps, so a caller that queues work (the service) tokenizes and checks each text once:
``prepare(texts)`` encodes them into ``Source``s, checking each length against the model's limit;
``translate_sources(sources, options)`` plans batches (s2s.batching), decodes (greedy
for beam size 1, else beam search) and puts the results back in input order. ``translate`` does
both. Empty or whitespace-only input gives empty output; input longer than the model's maximum
source length raises InputTooLongError (callers may split it at sentence boundaries first, see
s2s.inference.sentences): nothing is silently truncated or dropped.

Several model files with the same SentencePiece models decode as an ensemble
(s2s.inference.ensemble: the mean of the members' log-probabilities at every step); the first
file's tokenizer, shortlist and meta serve, and the source limit is the smallest member's.

Glossaries (s2s.inference.glossary): ``prepare(texts, glossary)`` gives each source the target
terms its text calls for (and the phrases to avoid) as lexical constraints, which beam search
enforces (s2s.inference.constraints; beam size 1 runs it with one beam); sources without any
decode exactly as without a glossary. ``Translation.constraints_met`` tells whether the output
meets them (it can miss only when no hypothesis could before the maximum length).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from s2s import torch_compat
from s2s.batching import BatchBudget
from s2s.constants import UNK_ID
from s2s.devices import cpu_has_native_bf16, resolve_device
from s2s.inference.constraints import Constraints, continuing_pieces
from s2s.inference.decode import decode_steps
from s2s.inference.ensemble import step_model
from s2s.inference.glossary import Glossary, GlossaryError, sentence_constraints
from s2s.inference.interrupt import NO_INTERRUPT, Interrupt, Steps, run_to_end
from s2s.inference.search import Hypothesis, SearchOptions
from s2s.model.model_file import (
    LoadedModel,
    VocabularyMismatchError,
    check_same_vocabulary,
    load_model_file,
    load_model_files,
)

__all__ = ["Candidate", "Constraints", "Glossary", "GlossaryError", "InputTooLongError", "Source",
           "TranslateOptions", "Translation", "Translator", "VocabularyMismatchError",
           "prepare_model"]

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "int8": None}


class InputTooLongError(ValueError):
    """A text has more subword pieces than the model accepts: ``index`` (its position in the
    input), ``pieces``, ``limit``."""

    def __init__(self, index: int, pieces: int, limit: int):
        super().__init__(f"input {index} has {pieces} subword pieces; the model accepts at "
                         f"most {limit} (split it into sentences)")
        self.index, self.pieces, self.limit = index, pieces, limit


@dataclass(frozen=True)
class Source:
    """A text ready to translate: its piece ids (empty for a blank text), within the model's
    length limit, and the target phrases its translation must or must not contain (target
    vocabulary ids; None: none)."""

    text: str
    ids: tuple[int, ...]
    constraints: Constraints | None = None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Candidate:
    text: str
    score: float                  # summed log-probability
    normalized_score: float       # score / length penalty (equals score for greedy)
    tokens: list[str]             # target subword pieces
    attention: list[list[float]] | None = None   # (len(tokens) + 1) x len(source_tokens)


@dataclass
class Translation:
    """The best candidate's fields, the source pieces, and all n-best candidates."""

    text: str
    score: float
    tokens: list[str]
    source_tokens: list[str] = field(default_factory=list)
    attention: list[list[float]] | None = None
    alternatives: list[Candidate] = field(default_factory=list)
    constraints_met: bool | None = None   # None: the source had no constraints


@dataclass(frozen=True)
class TranslateOptions:
    search: SearchOptions = SearchOptions()
    budget: BatchBudget = BatchBudget()   # each batch's rows x longest source (and rows)
    replace_unk: bool = False       # UNK -> the most attended source piece
    use_shortlist: bool = True      # score only shortlisted target pieces (if the file has one)


ModelT = TypeVar("ModelT", bound=nn.Module)


def prepare_model(model: ModelT, device: torch.device, dtype: str) -> ModelT:
    """Move/cast for inference: fp16 on CUDA only; bf16 on CUDA or on a CPU with native bf16
    (about 1.5x the fp32 speed of batched beam search there); int8 = dynamic quantization of
    the LSTM/GRU and linear layers, on CPU only."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPES)}")
    if dtype == "int8":
        if device.type != "cpu":
            raise ValueError("int8 (dynamic quantization) runs on the CPU only")
        return torch_compat.quantize_int8(model)
    if dtype == "fp16" and device.type != "cuda":
        raise ValueError("fp16 inference needs CUDA; use fp32, bf16 or int8 on the CPU")
    if dtype == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        raise ValueError("bf16 on this CPU would be emulated (no AVX512-BF16 or AMX) and slower "
                         "than fp32; use fp32 or int8")
    return model.to(device=device, dtype=DTYPES[dtype])


class Translator:
    """Translates with one loaded model or an ensemble of several (same SentencePiece models,
    else ValueError). ``members``: the prepared models; ``model``: what search drives (the
    model itself for one, their Ensemble for several); ``tokenizer``, ``shortlist`` and
    ``meta`` are the first member's (``meta`` gains ``ensemble_members`` for several);
    ``max_src_len`` is the smallest member's."""

    def __init__(self, loaded: LoadedModel | Sequence[LoadedModel], device: str = "cpu",
                 dtype: str = "fp32"):
        models = [loaded] if isinstance(loaded, LoadedModel) else list(loaded)
        check_same_vocabulary(models)
        self.device = resolve_device(device)
        self.dtype = dtype
        self.members = [prepare_model(m.model.eval(), self.device, dtype) for m in models]
        self.model = step_model(self.members)
        first = models[0]
        self.tokenizer = first.tokenizer
        self.meta = first.meta if len(models) == 1 else {**first.meta,
                                                         "ensemble_members": len(models)}
        self.shortlist = first.shortlist
        self.max_src_len = min(m.model.config.max_src_len for m in models)

    @classmethod
    def from_file(cls, path: str | Path, device: str = "cpu", dtype: str = "fp32") -> Translator:
        return cls(load_model_file(path), device, dtype)

    @classmethod
    def from_files(cls, paths: Sequence[str | Path], device: str = "cpu", dtype: str = "fp32"
                   ) -> Translator:
        """An ensemble of the model files, in order (one file: as from_file)."""
        return cls(load_model_files(paths), device, dtype)

    def prepare(self, texts: Sequence[str], glossary: Glossary | None = None) -> list[Source]:
        """Encode texts once (stripped; a blank text gives no ids), with the constraints the
        glossary sets each (``sentence_constraints``); raises InputTooLongError naming the
        first text over the model's limit, GlossaryError for a text the glossary cannot
        serve."""
        stripped = [text.strip() for text in texts]
        constraints: list[Constraints | None] = [None] * len(stripped)
        if glossary:
            constraints = sentence_constraints(glossary, stripped, self.tokenizer.tgt)
        sources = [Source(text, tuple(ids), held) for text, ids, held
                   in zip(stripped, self.tokenizer.src.encode(stripped), constraints)]
        for index, source in enumerate(sources):
            if len(source) > self.max_src_len:
                raise InputTooLongError(index, len(source), self.max_src_len)
        return sources

    def translate_sources(self, sources: Sequence[Source], options: TranslateOptions | None = None
                          ) -> list[Translation]:
        """Translations of prepared sources, in order (``translation_steps`` run to its end)."""
        return run_to_end(self.translation_steps(sources, options))

    def translation_steps(self, sources: Sequence[Source], options: TranslateOptions | None = None,
                          interrupt: Interrupt = NO_INTERRUPT,
                          n_bests: Sequence[int] | None = None) -> Steps[list[Translation]]:
        """Translate prepared sources, yielding after every decoding step; returns their
        translations in order. Batches fit ``options.budget``, so sources planned with the same
        budget (the service's batcher) form one batch. A source the interrupt dropped gets an
        empty translation. n_bests: each source's own n-best size (at most the options'), so
        sources wanting different numbers of candidates share a batch and each stops and
        translates as it would alone."""
        options = options or TranslateOptions()
        search = options.search
        if options.replace_unk and not search.return_attention:
            search = replace(search, return_attention=True)
        shortlist = self.shortlist if options.use_shortlist else None
        budget = options.budget
        constraints = [s.constraints or None for s in sources]
        held = constraints if any(constraints) else None
        nbests = yield from decode_steps(self.model, [s.ids for s in sources], search, budget,
                                         self.device, shortlist, interrupt, held,
                                         None if held is None else self.continuing_pieces,
                                         n_bests)
        return [self._result(source, nbest, options.replace_unk) if len(source)
                else Translation("", 0.0, [])
                for source, nbest in zip(sources, nbests)]

    @cached_property
    def continuing_pieces(self) -> torch.Tensor:
        """(V,) bool: target pieces that continue a word, kept from following a glossary term
        (s2s.inference.constraints.continuing_pieces)."""
        vocab = self.tokenizer.tgt
        return continuing_pieces(vocab.id_to_piece(range(len(vocab))))

    def translate(self, texts: Sequence[str], options: TranslateOptions | None = None,
                  glossary: Glossary | None = None) -> list[Translation]:
        """prepare() then translate_sources()."""
        return self.translate_sources(self.prepare(texts, glossary), options)

    def _result(self, source: Source, nbest: list[Hypothesis], replace_unk: bool
                ) -> Translation:
        source_pieces = self.tokenizer.src.id_to_piece(list(source.ids))
        candidates = [self._candidate(hyp, source_pieces, replace_unk) for hyp in nbest]
        met = None
        if source.constraints:
            met = bool(nbest) and source.constraints.satisfied(nbest[0].tokens,
                                                               self.continuing_pieces)
        if not candidates:
            return Translation("", float("-inf"), [], source_pieces, constraints_met=met)
        best = candidates[0]
        return Translation(best.text, best.score, best.tokens, source_pieces, best.attention,
                           candidates, met)

    def _candidate(self, hyp: Hypothesis, source_pieces: list[str], replace_unk: bool
                   ) -> Candidate:
        pieces = self.tokenizer.tgt.id_to_piece(hyp.tokens)
        attention = None
        if hyp.attention is not None:
            attention = hyp.attention[:, : len(source_pieces)].float()
        if replace_unk and attention is not None:
            pieces = [source_pieces[int(attention[i].argmax())] if token == UNK_ID else piece
                      for i, (token, piece) in enumerate(zip(hyp.tokens, pieces))]
            text = "".join(pieces).replace("\u2581", " ").strip()
        else:
            text = self.tokenizer.tgt.decode([hyp.tokens])[0]
        return Candidate(text, hyp.score, hyp.rank_score, pieces,
                         None if attention is None else attention.tolist())
