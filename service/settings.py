"""Service settings: environment variables ``S2S_<FIELD>`` (e.g. ``S2S_MODELS_DIR``), an optional
YAML/JSON settings file whose keys are the field names, and defaults.

Precedence: explicit values (command-line flags) > settings file > environment > defaults.
Unknown keys in a settings file are an error; unrelated ``S2S_*`` environment variables (used by
other tools of the project) are ignored.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from s2s.config import ConfigError, load_yaml_file
from s2s.constants import BEAM_SIZE, DECODE_BATCH_TOKENS
from s2s.inference.glossary import MAX_AVOID, MAX_TERM_CHARS, MAX_TERMS
from s2s.inference.search import SearchLimits

StrList = Annotated[list[str], NoDecode]
DEFAULT_KEYLESS_PER_MINUTE = 60   # keyless callers where a keys database exists


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="S2S_", extra="forbid", validate_default=True)

    # models and hardware
    models_dir: Path = Field(Path("models"), description="folder of <src>-<tgt>.pt model files")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["fp32", "fp16", "bf16"] = Field("fp32", description="dtype on the GPU")
    cpu_dtype: Literal["fp32", "bf16", "int8"] = Field(
        "fp32", description="dtype on the CPU (bf16 needs AVX512-BF16 or AMX)")
    threads: int = Field(0, ge=0, description="torch CPU threads (0 = torch's default)")
    warmup_text: str = Field("Hello world.", min_length=1)

    # dynamic batching (one batcher per model)
    max_batch_tokens: int = Field(DECODE_BATCH_TOKENS, ge=1,
                                  description="rows x longest source per batch")
    max_batch_sentences: int = Field(64, ge=1, description="1 turns batching off")
    max_wait_ms: float = Field(5.0, ge=0, description="start a batch once no sentence arrived "
                               "for this long (or once it is full)")
    max_delay_ms: float = Field(50.0, ge=0, description="start a batch at most this long after "
                                "its first sentence arrived or the model became free")
    express_sentences: int = Field(16, ge=0, description="requests of at most this many "
                                   "sentences run in a batch beside a long one (a file's) "
                                   "instead of waiting for it; 0: one batch at a time")
    queue_capacity: int = Field(2048, ge=1, description="queued sentences per model")
    caller_queue_share: float = Field(0.5, gt=0, le=1, description="share of a model's queue "
                                      "one caller (API key, else address) may hold; 429 beyond")
    max_option_groups: int = Field(16, ge=1, description="different sets of decoding options "
                                   "waiting per model at once (503 beyond)")
    request_timeout_s: float = Field(30.0, gt=0, description="deadline of a request")
    retry_after_s: int = Field(1, ge=0, description="Retry-After header on 503")
    max_queue_wait_s: float | None = Field(3.0, gt=0, description="refuse a request (503 with "
                                           "Retry-After) that the queue ahead would delay by "
                                           "more than this many seconds at the recent rate "
                                           "(requests taking turns); null: only "
                                           "queue_capacity bounds the queue")

    # request limits
    max_items: int = Field(128, ge=1, description="texts per request")
    max_item_chars: int = Field(5000, ge=1)
    max_total_chars: int = Field(50000, ge=1)
    max_body_bytes: int = Field(1_000_000, ge=1)
    default_beam_size: int = Field(BEAM_SIZE, ge=1)
    max_beam_size: int = Field(SearchLimits.beam_size, ge=1)
    max_n_best: int = Field(SearchLimits.n_best, ge=1,
                            description="candidates per text a request may ask")

    # bounded work per request, decided before any of it starts
    max_output_tokens: int = Field(SearchLimits.max_len_b, ge=1,
                                   description="most output pieces per sentence (EOS counts): "
                                   "requests whose max_len_b is larger are refused, and every "
                                   "sentence's limit is capped here")
    max_output_ratio: float = Field(SearchLimits.max_len_a, ge=0,
                                    description="largest max_len_a a request may ask")
    max_length_penalty: float = Field(SearchLimits.length_penalty, ge=0,
                                      description="largest length_penalty (GNMT "
                                      "alpha) a request may ask")
    max_request_sentences: int = Field(256, ge=1, description="sentences per request, after "
                                       "splitting its texts")
    max_request_cost: int = Field(400_000, ge=1, description="sentences x beam x output-token "
                                  "limit summed over a request's sentences")
    max_response_bytes: int = Field(8_000_000, ge=1, description="largest response a request "
                                    "may need at worst (sentences x candidates x output-token "
                                    "limit, x source pieces with attention), estimated before "
                                    "any work starts; above it: 413")
    max_batch_seconds: float = Field(20.0, gt=0, description="a running batch stops after this "
                                     "long; its unfinished sentences are refused with 503")
    shutdown_grace_s: float = Field(20.0, gt=0, description="after SIGTERM, in-flight work may "
                                    "finish this long; what remains is then cancelled")

    # access and network
    api_keys: StrList = Field(default_factory=list, description="empty = no key required")
    admin_api_key: str | None = Field(None, description="key of the /admin endpoints; unset "
                                      "disables them")
    metrics_api_key: str | None = Field(None, description="when set, /metrics needs it")
    max_connections: int = Field(1000, ge=1, description="open connections; above it a "
                                 "request gets 503, above twice it a new connection is closed "
                                 "(keep it under the process's open-file limit)")
    header_timeout_s: float = Field(10.0, gt=0, description="time to send the request headers")
    body_timeout_s: float = Field(10.0, gt=0, description="time to send the request body")
    keep_alive_s: float = Field(5.0, gt=0, description="idle time of a kept-alive connection")
    max_buffered_body_bytes: int = Field(64_000_000, ge=1, description="request body bytes "
                                         "held across all connections at once")
    cors_origins: StrList = Field(default_factory=list)
    forwarded_allow_ips: StrList = Field(default_factory=list, description="addresses or "
                                         "networks (CIDR) of trusted reverse proxies: only from "
                                         "them is X-Forwarded-For believed (its right-most "
                                         "address that is not a trusted proxy is the client's); "
                                         "empty: the peer's own address counts")
    public_url: str | None = Field(None, description="the server's public base URL, e.g. "
                                   "https://translate.example.org (translatedFileUrl and "
                                   "same-origin checks); unset: relative download URLs")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    reload_on_sighup: bool = True
    suggestions_db: Path | None = Field(None, description="SQLite file that /suggest stores "
                                        "suggested translations in; unset: /suggest is 403")
    max_suggestions_per_caller: int = Field(1000, ge=1, description="suggestions stored per "
                                            "caller (API key, or address without one); above: "
                                            "429")
    sqlite_busy_timeout_s: float = Field(2.0, gt=0, le=60, description="how long a request "
                                         "waits for a busy SQLite file (keys, rate limits, "
                                         "suggestions) before it gets 503 with Retry-After")

    # API keys with their own limits (s2s-keys manages them) and rate limiting
    keys_db: Path | None = Field(None, description="SQLite file of API keys with per-key limits "
                                 "(s2s-keys add/list/remove); unset: only api_keys")
    require_api_key: bool = Field(False, description="refuse requests without a key (also "
                                  "implied by a non-empty api_keys)")
    default_requests_per_minute: int | None = Field(
        None, ge=0, description="rate of api_keys keys and of keyless clients (per address); "
        "None or 0: unlimited")
    keyless_requests_per_minute: int | None = Field(
        None, ge=0, description="rate of callers without a key (per address) where keys exist "
        "but are not required; None: default_requests_per_minute, or 60 when keys_db is set "
        "(as LibreTranslate's --req-limit); 0: unlimited")
    rate_limit_db: Path | None = Field(None, description="SQLite file the worker processes "
                                       "share rate-limit state in (default: keys_db)")

    # file translation (/translate_file, /download_file)
    files_dir: Path | None = Field(None, description="folder of translated files; unset: file "
                                   "translation is off")
    file_ttl_s: float = Field(600.0, gt=0, description="how long a translated file can be "
                              "downloaded")
    max_file_bytes: int = Field(500_000, ge=1, description="largest uploaded file")
    max_file_chars: int = Field(100_000, ge=1, description="most characters of an uploaded file")
    max_stored_file_bytes: int = Field(200_000_000, ge=1, description="translated files kept "
                                       "on disk at most (the oldest go first)")

    # glossaries (a request's own, or stored per API key: /glossaries)
    max_glossary_terms: int = Field(100, ge=1, le=MAX_TERMS, description="terms a glossary "
                                    "(sent with a request or stored) may hold; 422 beyond")
    max_glossary_avoid: int = Field(20, ge=0, le=MAX_AVOID, description="avoid phrases a "
                                    "glossary may hold; 422 beyond")
    max_glossary_term_chars: int = Field(100, ge=1, le=MAX_TERM_CHARS, description="characters "
                                         "of a glossary term or avoid phrase; 422 beyond")
    glossaries_db: Path | None = Field(None, description="SQLite file of the glossaries API "
                                       "keys store (/glossaries); unset: storing is off (403)")
    max_glossaries_per_caller: int = Field(50, ge=1, description="glossaries one API key may "
                                           "store; 429 beyond")

    # protected spans (README "Protected spans")
    protect_spans: bool = Field(True, description="leave URLs, e-mail addresses, @handles, "
                                "#hashtags, emoji, numbers with units, placeholders and "
                                "`code` untranslated, copied to where the alignment puts them")
    max_protected: int = Field(20, ge=0, le=100, description="strings or regular "
                               "expressions a request's protected list may hold; 422 beyond")
    max_protected_chars: int = Field(200, ge=1, le=1000, description="characters of one "
                                     "protected string or regular expression; 422 beyond")
    protected_timeout_s: float = Field(0.2, gt=0, le=10, description="time all of a "
                                       "request's protected regular expressions may take to "
                                       "match; 422 beyond")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    @field_validator("api_keys", "cors_origins", "forwarded_allow_ips", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        """Environment form: comma-separated (``a,b``) or a JSON list (``["a", "b"]``)."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return yaml.safe_load(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.default_beam_size > self.max_beam_size:
            raise ValueError("default_beam_size must not exceed max_beam_size")
        if self.max_wait_ms > self.max_delay_ms:
            raise ValueError("max_wait_ms must not exceed max_delay_ms")
        if self.max_item_chars > self.max_total_chars:
            raise ValueError("max_item_chars must not exceed max_total_chars")
        if self.files_dir is not None and self.max_file_bytes >= self.max_body_bytes:
            raise ValueError("max_file_bytes must be below max_body_bytes (the upload's form "
                             "adds a few hundred bytes)")
        if self.require_api_key and not (self.api_keys or self.keys_db):
            raise ValueError("require_api_key needs api_keys or keys_db (no key could pass)")
        if self.glossaries_db is not None and not (self.api_keys or self.keys_db):
            raise ValueError("glossaries_db needs api_keys or keys_db (stored glossaries "
                             "belong to API keys)")
        if self.default_requests_per_minute and self.rate_limit_file() is None:
            raise ValueError("default_requests_per_minute needs rate_limit_db or keys_db")
        if self.keyless_requests_per_minute and self.rate_limit_file() is None:
            raise ValueError("keyless_requests_per_minute needs rate_limit_db or keys_db")
        if self.public_url is not None and not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?",
                                                           self.public_url):
            raise ValueError("public_url must be an http(s) URL such as "
                             "https://translate.example.org")
        for address in self.forwarded_allow_ips:
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise ValueError(f"forwarded_allow_ips: {address!r} is not an IP address or "
                                 "network") from None
        return self


    def search_limits(self) -> SearchLimits:
        """The decoding options a request may ask for, as the library checks them."""
        return SearchLimits(beam_size=self.max_beam_size, n_best=self.max_n_best,
                            max_len_a=self.max_output_ratio, max_len_b=self.max_output_tokens,
                            length_penalty=self.max_length_penalty)

    def keys_required(self) -> bool:
        return bool(self.api_keys) or self.require_api_key

    def rate_limit_file(self) -> Path | None:
        return self.rate_limit_db or self.keys_db

    def keyless_per_minute(self) -> int | None:
        """Requests per minute of a caller without a key (None: unlimited): where a keys
        database exists, keyless callers are never unlimited by default."""
        if self.keyless_requests_per_minute is not None:
            return self.keyless_requests_per_minute or None
        if self.default_requests_per_minute:
            return self.default_requests_per_minute
        return DEFAULT_KEYLESS_PER_MINUTE if self.keys_db is not None else None

    def uses_api_keys(self) -> bool:
        """Whether this server knows API keys at all (LibreTranslate's ``apiKeys``)."""
        return bool(self.api_keys) or self.keys_db is not None or self.require_api_key


class SettingsError(ValueError):
    """A settings file that cannot be read or has unknown or bad keys."""


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, a YAML/JSON file (optional) and explicit overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = load_yaml_file(path)   # duplicate keys refused, naming the lines
        except (OSError, ConfigError) as error:
            raise SettingsError(f"cannot read settings file {path}: {error}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise SettingsError(f"settings file {path} must hold a mapping of setting: value")
        values.update(loaded or {})
    values.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return Settings(**values)
    except ValidationError as error:
        raise SettingsError(plain_errors(error)) from None


def plain_errors(error: ValidationError) -> str:
    """A settings ValidationError in one line per problem: the setting and what is wrong (no
    validator names, no links)."""
    lines = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem.get("loc", ())) or "settings"
        message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
        value = problem.get("input")
        shown = "" if where == "settings" or isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"{where}: {message}{shown}")
    return "; ".join(lines)
