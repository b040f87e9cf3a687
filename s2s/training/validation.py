"""Validation during training: teacher-forced loss and perplexity, greedy decoding scored with
sacreBLEU / chrF (s2s.scoring)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from s2s.batching import BatchBudget
from s2s.config import Config
from s2s.inference.decode import decode_sources
from s2s.inference.search import SearchOptions
from s2s.model import Seq2Seq
from s2s.scoring import score_corpus
from s2s.training.data import batch_loss, iterate_batches
from s2s.training.prepare import PreparedData


def greedy_decode_ids(model: Seq2Seq, sources: Sequence[Sequence[int]], budget: BatchBudget,
                      max_len_a: float, max_len_b: int, device: torch.device) -> list[list[int]]:
    """Greedy-decode piece-id sequences; outputs in input order, [] for an empty source."""
    options = SearchOptions(beam_size=1, max_len_a=max_len_a, max_len_b=max_len_b)
    nbests = decode_sources(model, sources, options, budget, device)
    return [nbest[0].tokens if nbest else [] for nbest in nbests]


def validate(model: Seq2Seq, data: PreparedData, config: Config,
             device: torch.device) -> dict[str, float]:
    """Validation loss and perplexity (teacher forced, no smoothing), greedy BLEU, chrF and
    exact-match percentage."""
    cfg = config.train
    model.eval()
    loss_sum, tokens = 0.0, 0
    with torch.no_grad():
        for batch in iterate_batches(data.valid, cfg.batch_tokens):
            batch = batch.to(device)
            loss_sum += float(batch_loss(model, batch, 0.0, cfg.loss_chunk_rows))
            tokens += batch.n_tokens
    hyp_ids = greedy_decode_ids(model, data.valid.src, BatchBudget(cfg.valid_batch_tokens),
                                cfg.valid_max_len_a, cfg.valid_max_len_b, device)
    hypotheses = data.tokenizer.tgt.decode(hyp_ids)
    scores = score_corpus(hypotheses, data.valid_ref)
    valid_loss = loss_sum / max(tokens, 1)
    return {"valid_loss": valid_loss, "valid_ppl": math.exp(min(valid_loss, 50)),
            "bleu": scores.bleu, "chrf": scores.chrf, "exact": scores.exact}
