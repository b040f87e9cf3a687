"""sacreBLEU / chrF scoring of detokenized text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sacrebleu


@dataclass
class Scores:
    bleu: float
    chrf: float
    exact: float
    bleu_signature: str
    chrf_signature: str

    def as_dict(self) -> dict[str, float | str]:
        return {"bleu": self.bleu, "chrf": self.chrf, "exact": self.exact,
                "bleu_signature": self.bleu_signature, "chrf_signature": self.chrf_signature}


def score_corpus(hypotheses: Sequence[str], references: Sequence[str]) -> Scores:
    """Cased, detokenized sacreBLEU (13a) and chrF against one reference per line, and the
    percentage of hypotheses identical to their reference."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    bleu_score = bleu.corpus_score(list(hypotheses), [list(references)])
    chrf_score = chrf.corpus_score(list(hypotheses), [list(references)])
    exact = 100.0 * sum(h == r for h, r in zip(hypotheses, references)) / max(len(references), 1)
    return Scores(bleu_score.score, chrf_score.score, exact, str(bleu.get_signature()),
                  str(chrf.get_signature()))
