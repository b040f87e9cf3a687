"""Typed configuration: every default lives here, unknown keys are errors.

A config file is YAML with the sections ``data``, ``tokenizer``, ``model`` and ``train``.
``load_config(path, overrides)`` applies ``key.sub=value`` overrides before validation, so an
override is checked exactly like a value in the file.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from s2s.constants import (
    DECODE_BATCH_TOKENS,
    MAX_LEN_A,
    MAX_LEN_B,
    SHORTLIST_FREQUENT,
    SHORTLIST_PER_SOURCE,
)


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (plain YAML keeps the last
    value silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if first is not None:
                raise ConfigError(f"duplicate key {key!r} at line {line} of "
                                  f"{key_node.start_mark.name} (first given at line {first})")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, name: str = "<string>") -> Any:
    """``yaml.safe_load`` that makes a duplicate mapping key a ConfigError naming the key and
    its line; YAML syntax errors stay ``yaml.YAMLError``. Every config or settings file of the
    project is read with it."""
    loader = _UniqueKeyLoader(text)
    loader.name = name
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_yaml_file(path: str | Path) -> Any:
    """``load_yaml`` on a file's text (the messages name the file)."""
    return load_yaml(Path(path).read_text(encoding="utf-8"), str(path))


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CorpusConfig(StrictModel):
    """One training corpus: two line-aligned files (plain or ``.gz``; paths may use ``${VAR}``).

    ``weight`` is its relative sampling rate: each epoch takes every pair of the corpus with the
    largest size/weight once, and from every other corpus weight/that weight times as many pairs
    (a smaller corpus is repeated). ``max_len``/``max_len_ratio`` override the data section's
    filters for this corpus; ``holdout`` pairs, chosen with the run's seed, are moved to the
    validation set (with every training pair whose source equals a held-out source).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    src: str
    tgt: str
    weight: float = Field(1.0, gt=0)
    max_len: int | None = Field(None, ge=1)
    max_len_ratio: float | None = Field(None, gt=0)
    holdout: int = Field(0, ge=0, description="pairs moved to the validation set")

    def paths(self) -> tuple[Path, Path]:
        return Path(expand_env(self.src)), Path(expand_env(self.tgt))


class DataConfig(StrictModel):
    """Where the parallel corpora live, how they are filtered, and where prepared data goes.

    Either ``corpora`` (a list of weighted corpora, validated on ``valid_src``/``valid_tgt``
    and/or held-out pairs) or the single corpus ``<corpus_dir>/<split>.<lang>``;
    ``corpus: demo`` uses the built-in synthetic task instead of files. ``corpus_dir`` and file
    paths may use ``${VAR}`` or ``${VAR:-default}``. Prepared data (s2s.training.prepare) goes to
    ``prepared_dir`` (default: ``prepared/`` in the run folder).
    """

    corpus: Literal["files", "demo"] = "files"
    corpus_dir: str = "${S2S_DATA_DIR:-data}/multi30k"
    src_lang: str = "de"
    tgt_lang: str = "en"
    train_split: str = "train"
    valid_split: str = "val"
    corpora: list[CorpusConfig] = Field(default_factory=list)
    valid_src: str | None = None
    valid_tgt: str | None = None
    max_len: int = Field(100, ge=1, description="max subword pieces per side (training)")
    max_len_ratio: float = Field(3.0, gt=0, description="max longer/shorter side ratio")
    prepared_dir: str | None = None
    prepare_workers: int = Field(2, ge=1, description="encoding processes of the prepare step")
    demo_train_size: int = Field(20000, ge=1)
    demo_valid_size: int = Field(500, ge=1)
    demo_test_size: int = Field(500, ge=1)

    @model_validator(mode="after")
    def _check_corpora(self) -> DataConfig:
        names = [corpus.name for corpus in self.corpora]
        if len(set(names)) != len(names):
            raise ValueError("data.corpora names must be unique")
        if self.corpora and self.corpus != "files":
            raise ValueError("data.corpora needs data.corpus: files")
        if (self.valid_src is None) != (self.valid_tgt is None):
            raise ValueError("data.valid_src and data.valid_tgt go together")
        if self.corpora and self.valid_src is None and not any(c.holdout for c in self.corpora):
            raise ValueError("with data.corpora, give data.valid_src/valid_tgt or a holdout")
        return self

    def path(self, split: str, lang: str) -> Path:
        return Path(expand_env(self.corpus_dir)) / f"{split}.{lang}"

    def training_corpora(self) -> list[CorpusConfig]:
        """The configured corpora, or the single ``corpus_dir`` train split as one."""
        if self.corpora:
            return list(self.corpora)
        return [CorpusConfig(name=self.train_split,
                             src=str(self.path(self.train_split, self.src_lang)),
                             tgt=str(self.path(self.train_split, self.tgt_lang)))]

    def validation_files(self) -> tuple[Path, Path] | None:
        """The validation files: valid_src/valid_tgt, else corpus_dir's valid split when no
        corpus list is given; None when only held-out pairs validate."""
        if self.valid_src is not None and self.valid_tgt is not None:
            return Path(expand_env(self.valid_src)), Path(expand_env(self.valid_tgt))
        if self.corpora:
            return None
        return self.path(self.valid_split, self.src_lang), self.path(self.valid_split,
                                                                      self.tgt_lang)


MAX_SAMPLED_COPIES = 32


class TokenizerConfig(StrictModel):
    model_type: Literal["unigram", "bpe"] = "unigram"
    vocab_size: int = Field(8000, ge=16)
    joint: bool = True
    character_coverage: float = Field(1.0, gt=0, le=1)
    max_sentences: int = Field(200_000, ge=1, description="training sentences sampled by spm "
                               "(a seeded sample of the corpora's lines)")
    sampling_alpha: float = Field(0.0, ge=0, description="subword regularization: unigram "
                                  "smoothing (bpe: dropout rate) of the sampled segmentations "
                                  "of training pairs; 0 = off")
    sampled_copies: int = Field(0, ge=0, le=MAX_SAMPLED_COPIES, description="sampled "
                                "segmentations the prepare step writes per training pair "
                                "(s2s.training.segmentation)")

    @model_validator(mode="after")
    def _check_sampling(self) -> TokenizerConfig:
        if (self.sampling_alpha > 0) != (self.sampled_copies > 0):
            raise ValueError("tokenizer.sampling_alpha and tokenizer.sampled_copies go together "
                             "(both 0: no subword sampling)")
        if self.model_type == "bpe" and self.sampling_alpha >= 1:
            raise ValueError("tokenizer.sampling_alpha is the BPE-dropout rate: below 1")
        return self


class ModelConfig(StrictModel):
    cell: Literal["lstm", "gru"] = "lstm"
    emb_dim: int = Field(256, ge=1)
    enc_hidden: int = Field(512, ge=2, description="encoder output size (split across directions)")
    enc_layers: int = Field(1, ge=1)
    bidirectional: bool = True
    dec_hidden: int = Field(512, ge=1)
    dec_layers: int = Field(1, ge=1)
    attention: Literal["bahdanau", "dot", "general"] = "general"
    input_feeding: bool = False
    dropout: float = Field(0.3, ge=0, lt=1, description="between layers and before the output")
    emb_dropout: float = Field(0.2, ge=0, lt=1)
    tie_embeddings: bool = Field(False, description="tie target embeddings and output layer")
    init: Literal["torch", "uniform", "glorot"] = Field(
        "torch", description="parameter initialisation: torch's per-layer defaults (embeddings "
        "N(0, 1)); every parameter uniform(-init_range, init_range) (OpenNMT-py's default); or "
        "Glorot-uniform matrices with uniform(-init_range, init_range) vectors")
    init_range: float = Field(0.1, gt=0, description="range of the uniform initialisations")
    max_src_len: int = Field(250, ge=1, description="longest source the model file accepts")

    @model_validator(mode="after")
    def _check_shapes(self) -> ModelConfig:
        if self.bidirectional and self.enc_hidden % 2:
            raise ValueError("model.enc_hidden must be even when model.bidirectional is true")
        if self.tie_embeddings and self.emb_dim != self.dec_hidden:
            raise ValueError("model.tie_embeddings needs model.emb_dim == model.dec_hidden")
        return self


class TrainConfig(StrictModel):
    seed: int = 1
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(0, ge=0, description="CPU threads; 0 keeps torch's default")
    keep_freed_memory: bool = Field(True, description="on the CPU, glibc keeps freed memory "
                                    "instead of faulting it in again at every step "
                                    "(s2s.allocator)")
    amp: Literal["none", "bf16", "fp16"] = "none"
    batch_tokens: int = Field(4000, ge=1, description="padded target tokens per batch (rows x "
                              "longest target, per process)")
    bucket_size: int = Field(100, ge=1, description="batches drawn from one sorted pool")
    lr: float = Field(1e-3, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0)
    lr_decay_factor: float = Field(0.5, gt=0, le=1)
    lr_patience: int = Field(2, ge=0, description="validations without improvement before decay")
    min_lr: float = Field(1e-5, ge=0)
    clip_norm: float = Field(1.0, ge=0, description="total-norm gradient clip; 0 disables")
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    max_steps: int = Field(0, ge=0, description="0 = no step limit")
    max_epochs: int = Field(0, ge=0, description="0 = no epoch limit")
    max_minutes: float = Field(0.0, ge=0, description="wall-clock limit; 0 = none")
    valid_every: int = Field(500, ge=1)
    valid_max_sentences: int = Field(0, ge=0, description="0 = whole validation set")
    valid_max_len_a: float = Field(MAX_LEN_A, ge=0)
    valid_max_len_b: int = Field(MAX_LEN_B, ge=1, description="EOS counts, so at least 1")
    valid_batch_tokens: int = Field(DECODE_BATCH_TOKENS, ge=1, description="padded source "
                                    "tokens per validation decoding batch (rows x longest)")
    early_stopping_metric: Literal["bleu", "chrf", "exact", "loss"] = "bleu"
    early_stopping_patience: int = Field(8, ge=0, description="0 disables early stopping")
    log_every: int = Field(50, ge=1)
    keep_last: int = Field(3, ge=1)
    loss_chunk_rows: int = Field(1024, ge=1, description="rows per chunk of the fused output loss")
    ema_decay: float = Field(0.0, ge=0, lt=1, description="exponential moving average of the "
                             "weights (s2s.training.ema), used for validation and model files; "
                             "0 = off, e.g. 0.999")
    rdrop_alpha: float = Field(0.0, ge=0, description="R-Drop consistency weight "
                               "(s2s.training.rdrop): each batch runs twice, plus alpha x the "
                               "two copies' symmetric KL; 0 = off (the single fused loss)")
    shortlist_per_source: int = Field(SHORTLIST_PER_SOURCE, ge=0,
                                      description="decoding shortlist; 0 = none")
    shortlist_frequent: int = Field(SHORTLIST_FREQUENT, ge=0)
    init_from: str | None = Field(None, description="fine-tune: the model file whose weights "
                                  "and SentencePiece models the run starts from (s2s-train "
                                  "--init-from sets it; the run's config.yaml records it)")


class Config(StrictModel):
    name: str = "run"
    out_dir: str = "runs/${name}"
    data: DataConfig = DataConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()

    def run_dir(self) -> Path:
        return Path(expand_env(self.out_dir.replace("${name}", self.name)))


_ENV_PATTERN = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand_env(text: str) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``; an unset VAR without default is an error."""

    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is None:
            raise ConfigError(f"environment variable {name} is not set (used in {text!r})")
        return default

    return _ENV_PATTERN.sub(replace, text)


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Set ``a.b.c=value`` in a nested dict; the value is parsed as YAML (numbers, bools, lists)."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} is not of the form key=value")
    key, text = assignment.split("=", 1)
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = _parse_value(text)


def _parse_value(text: str) -> Any:
    """YAML scalar/list syntax; also '1e-3', which YAML 1.1 would leave a string."""
    if not text.strip():
        return ""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _format_validation_error(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown config key '{key}'")
        else:
            lines.append(f"bad value for '{key}': {item['msg']} (got {item.get('input')!r})")
    return "; ".join(lines)


# Keys earlier versions wrote into configs and no longer read, with the release note a user
# needs: configs saved inside training states still carry them, so ``saved_config_from_dict``
# drops them; a config file that still sets one is refused with this note.
RETIRED_KEYS: dict[tuple[str, ...], str] = {
    ("data", "test_split"): "it was never read (evaluate with s2s-evaluate --src/--ref)",
}


def config_from_dict(raw: dict[str, Any]) -> Config:
    """A user's config (file plus overrides): unknown and retired keys are errors."""
    for path, note in RETIRED_KEYS.items():
        if _lookup(raw, path) is not _MISSING:
            raise ConfigError(f"config key '{'.'.join(path)}' was retired: {note}; remove it")
    try:
        return Config.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(error)) from None


def saved_config_from_dict(raw: dict[str, Any]) -> Config:
    """A config saved by an earlier run (in a training state): retired keys are dropped,
    every other unknown key is still an error."""
    kept = copy.deepcopy(raw)
    for *parents, last in RETIRED_KEYS:
        section = _lookup(kept, tuple(parents))
        if isinstance(section, dict):
            section.pop(last, None)
    return config_from_dict(kept)


_MISSING = object()


def _lookup(raw: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` (a tuple of nested keys) in ``raw``; ``_MISSING`` when absent."""
    node: Any = raw
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (or start from defaults when ``path`` is None) and apply overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = load_yaml_file(path)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections")
        raw = loaded or {}
    for assignment in overrides:
        apply_override(raw, assignment)
    return config_from_dict(raw)
