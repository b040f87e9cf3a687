"""Translator: a model file -> translate(list of strings) -> results, in input order.

Sentences are encoded, sorted by length, cut into batches by a token budget, decoded (greedy for
beam size 1, else beam search), and put back in input order. Empty or whitespace-only input gives
empty output; input longer than the model's maximum source length raises InputTooLongError
(callers may split it at sentence boundaries first, see ``split_sentences``): nothing is silently
truncated or dropped.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from s2s.decode import decode_sources
from s2s.model_file import LoadedModel, load_model_file
from s2s.search import Hypothesis, SearchOptions
from s2s.tokenizer import UNK_ID

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "int8": None}


class InputTooLongError(ValueError):
    """A sentence has more subword pieces than the model accepts."""


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


@dataclass(frozen=True)
class TranslateOptions:
    search: SearchOptions = SearchOptions(beam_size=5)
    batch_tokens: int = 4000        # source tokens per batch (rows x longest)
    replace_unk: bool = False       # UNK -> the most attended source piece
    use_shortlist: bool = True      # score only shortlisted target pieces (if the file has one)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is
    emulated and slower than fp32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def prepare_model(model: nn.Module, device: torch.device, dtype: str) -> nn.Module:
    """Move/cast for inference: fp16 on CUDA only; bf16 on CUDA or on a CPU with native bf16
    (about 1.5x the fp32 speed of batched beam search there); int8 = dynamic quantization of
    the LSTM/GRU and linear layers, on CPU only."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPES)}")
    if dtype == "int8":
        if device.type != "cpu":
            raise ValueError("int8 (dynamic quantization) runs on the CPU only")
        with warnings.catch_warnings():  # eager-mode quantization is deprecated but works
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(
                model, {nn.LSTM, nn.GRU, nn.Linear}, dtype=torch.qint8)
    if dtype == "fp16" and device.type != "cuda":
        raise ValueError("fp16 inference needs CUDA; use fp32, bf16 or int8 on the CPU")
    if dtype == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        raise ValueError("bf16 on this CPU would be emulated (no AVX512-BF16 or AMX) and slower "
                         "than fp32; use fp32 or int8")
    return model.to(device=device, dtype=DTYPES[dtype])


class Translator:
    def __init__(self, loaded: LoadedModel, device: str = "cpu", dtype: str = "fp32"):
        self.device = resolve_device(device)
        self.dtype = dtype
        self.model = prepare_model(loaded.model.eval(), self.device, dtype)
        self.tokenizer = loaded.tokenizer
        self.meta = loaded.meta
        self.shortlist = loaded.shortlist
        self.max_src_len = loaded.model.config.max_src_len

    @classmethod
    def from_file(cls, path: str | Path, device: str = "cpu", dtype: str = "fp32") -> Translator:
        return cls(load_model_file(path), device, dtype)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Piece ids per text ([] for blank text); raises InputTooLongError naming the input."""
        ids = self.tokenizer.src.encode([t.strip() for t in texts])
        for number, seq in enumerate(ids):
            if len(seq) > self.max_src_len:
                raise InputTooLongError(
                    f"input {number} has {len(seq)} subword pieces; the model accepts at most "
                    f"{self.max_src_len} (split it into sentences)")
        return ids

    @torch.no_grad()
    def translate(self, texts: Sequence[str], options: TranslateOptions | None = None
                  ) -> list[Translation]:
        options = options or TranslateOptions()
        search = options.search
        if options.replace_unk and not search.return_attention:
            search = replace(search, return_attention=True)
        sources = self.encode(texts)
        shortlist = self.shortlist if options.use_shortlist else None
        nbests = decode_sources(self.model, sources, search, options.batch_tokens, self.device,
                                shortlist)
        return [self._result(source, nbest, options.replace_unk) if source
                else Translation("", 0.0, [])
                for source, nbest in zip(sources, nbests)]

    def _result(self, source: list[int], nbest: list[Hypothesis], replace_unk: bool
                ) -> Translation:
        source_pieces = self.tokenizer.src.id_to_piece(source)
        candidates = [self._candidate(hyp, source_pieces, replace_unk) for hyp in nbest]
        if not candidates:
            return Translation("", float("-inf"), [], source_pieces)
        best = candidates[0]
        return Translation(best.text, best.score, best.tokens, source_pieces, best.attention,
                           candidates)

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
        normalized = hyp.score if hyp.normalized_score is None else hyp.normalized_score
        return Candidate(text, hyp.score, normalized, pieces,
                         None if attention is None else attention.tolist())


_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")


def split_sentences(text: str) -> list[str]:
    """Split text at line breaks and after sentence-final punctuation followed by space.
    The pieces keep their order; joining them with spaces gives the text back (modulo spacing)."""
    return [part for part in _SENTENCE_END.split(text) if part.strip()]
