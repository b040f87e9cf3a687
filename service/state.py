"""The typed Service object every handler receives: settings, the model registry (with its
batchers and torch thread), language identification, metrics and the optional stores."""

from __future__ import annotations

from dataclasses import dataclass, field

from service.serving.langid import LanguageIdentifier
from service.serving.metrics import Metrics
from service.serving.registry import ModelRegistry
from service.settings import Settings
from service.stores.files import FileStore
from service.stores.glossaries import GlossaryStore
from service.stores.keys import KeyStore
from service.stores.rate_limits import RateLimiter
from service.stores.suggestions import SuggestionStore


@dataclass
class Service:
    settings: Settings
    metrics: Metrics
    registry: ModelRegistry
    langid: LanguageIdentifier = field(default_factory=LanguageIdentifier)
    suggestions: SuggestionStore | None = None
    keys: KeyStore | None = None
    limiter: RateLimiter | None = None
    files: FileStore | None = None
    glossaries: GlossaryStore | None = None
