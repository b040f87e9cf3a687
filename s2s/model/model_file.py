"""The self-contained model file: weights, model config, SentencePiece model(s), format version."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from s2s.checkpoint import (
    FORMAT_VERSION,
    MODEL_FORMAT,
    CheckpointError,
    atomic_save,
    bytes_to_tensor,
    load_checkpoint,
    tensor_to_bytes,
)
from s2s.config import ModelConfig
from s2s.model import Seq2Seq, upgrade_state_dict
from s2s.shortlist import Shortlist
from s2s.tokenizer import Tokenizer, TokenizerError


@dataclass
class LoadedModel:
    model: Seq2Seq
    tokenizer: Tokenizer
    meta: dict[str, Any]
    shortlist: Shortlist | None = None
    source: str = ""          # where it was loaded from (the file's path), for messages


def tokenizer_payload(tokenizer: Tokenizer) -> dict[str, torch.Tensor | None]:
    """The SentencePiece model(s) as storable tensors (model files and training states)."""
    src_bytes, tgt_bytes = tokenizer.model_bytes()
    return {"src_spm": bytes_to_tensor(src_bytes),
            "tgt_spm": None if tgt_bytes is None else bytes_to_tensor(tgt_bytes)}


def model_payload(model: Seq2Seq, tokenizer: Tokenizer, meta: dict[str, Any] | None = None,
                  state_dict: dict[str, torch.Tensor] | None = None,
                  shortlist: Shortlist | None = None) -> dict[str, Any]:
    """The model file's content; ``state_dict`` overrides the model's own (e.g. an average)."""
    weights = state_dict if state_dict is not None else model.state_dict()
    return {
        "format": MODEL_FORMAT,
        "version": FORMAT_VERSION,
        "model_config": model.config.model_dump(mode="json"),
        "src_vocab_size": len(tokenizer.src),
        "tgt_vocab_size": len(tokenizer.tgt),
        "state_dict": {k: v.detach().cpu() for k, v in weights.items()},
        **tokenizer_payload(tokenizer),
        "meta": dict(meta or {}),
        "shortlist": None if shortlist is None else shortlist.state_dict(),
    }


def save_model_file(path: str | Path, model: Seq2Seq, tokenizer: Tokenizer,
                    meta: dict[str, Any] | None = None,
                    state_dict: dict[str, torch.Tensor] | None = None,
                    shortlist: Shortlist | None = None) -> None:
    atomic_save(model_payload(model, tokenizer, meta, state_dict, shortlist), path)


def tokenizer_from_payload(payload: dict[str, Any]) -> Tokenizer:
    """The SentencePiece model(s) stored in a model file or training state."""
    tgt_spm = payload["tgt_spm"]
    return Tokenizer(tensor_to_bytes(payload["src_spm"]),
                     None if tgt_spm is None else tensor_to_bytes(tgt_spm))


def shortlist_from_payload(payload: dict[str, Any]) -> Shortlist | None:
    listed = payload.get("shortlist")
    return None if listed is None else Shortlist.from_state_dict(listed)


def model_from_payload(payload: dict[str, Any], source: str) -> LoadedModel:
    """Build the model and tokenizer from a loaded model-file dict (on CPU, eval mode)."""
    try:
        config = ModelConfig.model_validate(payload["model_config"])
        tokenizer = tokenizer_from_payload(payload)
        model = Seq2Seq(config, payload["src_vocab_size"], payload["tgt_vocab_size"])
        model.load_state_dict(upgrade_state_dict(payload["state_dict"], payload["version"]))
        shortlist = shortlist_from_payload(payload)
    except (KeyError, TypeError, ValidationError, TokenizerError, RuntimeError) as error:
        raise CheckpointError(f"{source} is an inconsistent model file: {error}") from None
    model.eval()
    return LoadedModel(model, tokenizer, payload.get("meta", {}), shortlist, source)


def load_model_file(path: str | Path) -> LoadedModel:
    return model_from_payload(load_checkpoint(path, MODEL_FORMAT), str(path))


class VocabularyMismatchError(ValueError):
    """The model files of an ensemble do not share their SentencePiece models."""


def check_same_vocabulary(models: Sequence[LoadedModel]) -> None:
    """Raise VocabularyMismatchError (a ValueError) naming the first model whose SentencePiece
    model(s) differ from the first model's (an ensemble's members must share their source and
    target vocabularies)."""
    if not models:
        raise ValueError("no model file given")
    first = models[0].tokenizer.fingerprint()
    for index, loaded in enumerate(models[1:], start=2):
        if loaded.tokenizer.fingerprint() != first:
            name = loaded.source or f"model {index}"
            reference = models[0].source or "model 1"
            raise VocabularyMismatchError(
                f"{name} has other SentencePiece models than {reference}: the models of an "
                f"ensemble must share their vocabularies")


def load_model_files(paths: Sequence[str | Path]) -> list[LoadedModel]:
    """Load an ensemble's model files, in order; raises VocabularyMismatchError as soon as
    one's SentencePiece models differ from the first's."""
    models: list[LoadedModel] = []
    for path in paths:
        models.append(load_model_file(path))
        check_same_vocabulary(models)
    if not models:
        raise ValueError("no model file given")
    return models
