"""Prometheus metrics of one app (own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
TOKEN_BUCKETS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.request_latency = Histogram(
            "s2s_request_latency_seconds", "HTTP request latency", ["endpoint"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.requests = Counter(
            "s2s_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
            registry=r)
        self.queue_depth = Gauge(
            "s2s_queue_depth", "sentences waiting in the batcher queue", ["pair"], registry=r)
        self.batch_size = Histogram(
            "s2s_batch_size", "sentences per model batch", ["pair"], buckets=SIZE_BUCKETS,
            registry=r)
        self.batch_tokens = Histogram(
            "s2s_batch_tokens", "padded source tokens per model batch (rows x longest)",
            ["pair"], buckets=TOKEN_BUCKETS, registry=r)
        self.batch_seconds = Histogram(
            "s2s_batch_seconds", "model time per batch", ["pair"], buckets=LATENCY_BUCKETS,
            registry=r)
        self.translated_tokens = Counter(
            "s2s_translated_tokens", "subword tokens translated (rate() gives tokens/s)",
            ["pair", "side"], registry=r)
        self.sentences = Counter(
            "s2s_sentences", "sentences translated", ["pair"], registry=r)
        self.errors = Counter(
            "s2s_errors", "errors by kind", ["kind"], registry=r)
        self.oom_splits = Counter(
            "s2s_oom_splits", "batches split in halves after CUDA out-of-memory", ["pair"],
            registry=r)
        self.model_ready = Gauge(
            "s2s_model_ready", "1 when the pair's model is loaded and warmed up", ["pair"],
            registry=r)
        self.reloads = Counter(
            "s2s_reloads", "model (re)loads by result", ["pair", "result"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
