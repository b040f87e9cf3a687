#!/usr/bin/env python3
"""Train the built-in demo model (dates in words -> DD.MM.YYYY) and translate with it.

Trains configs/demo.yaml (about two minutes on 2 CPU cores), reports exact-match accuracy on
held-out generated pairs, and translates a few sentences.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from s2s.config import load_config
from s2s.inference.translator import Translator
from s2s.scoring import score_corpus
from s2s.training.demo_task import demo_splits
from s2s.training.run_folder import RunFolder
from s2s.training.trainer import Trainer

from .cli_common import add_config_args, make_parser

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ["march twenty-first, nineteen ninety-four", "the third of june two thousand seven",
            "december the thirty-first twenty ninety-nine", "the first of may nineteen oh five"]


def build_parser():
    parser = make_parser(__doc__)
    add_config_args(parser, required=False, default=str(ROOT / "configs" / "demo.yaml"))
    parser.add_argument("--retrain", action="store_true",
                        help="train even if a model exists (replaces the demo run folder)")
    parser.add_argument("--install", metavar="DIR",
                        help="also copy the model to DIR/en-date.pt (a service models folder)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = load_config(args.config, args.overrides)
    run = RunFolder(config.run_dir())
    model_path = run.best_file
    if args.retrain or not (model_path.is_file() or run.model_file.is_file()):
        started = time.perf_counter()
        print(f"training the demo model into {config.run_dir()} ...", flush=True)
        # the demo's own folder: a previous (or unfinished) demo run there is replaced
        Trainer.build(config, on_event=print_validation, overwrite=True).train()
        print(f"trained in {time.perf_counter() - started:.0f} s")
    if not model_path.is_file():   # the time limit came before the first validation
        model_path = run.model_file
    translator = Translator.from_file(model_path)
    data = config.data
    test_src, test_ref = demo_splits(data.demo_train_size, data.demo_valid_size,
                                     data.demo_test_size, config.train.seed)["test"]
    hypotheses = [t.text for t in translator.translate(test_src)]
    scores = score_corpus(hypotheses, test_ref)
    print(f"held-out test: {scores.exact:.1f}% exact ({len(test_src)} generated pairs), "
          f"chrF {scores.chrf:.1f}")
    for source, result in zip(EXAMPLES, translator.translate(EXAMPLES)):
        print(f"  {source!r} -> {result.text!r}")
    if args.install:
        target = Path(args.install) / "en-date.pt"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model_path, target)
        print(f"installed {target} (language pair en -> date)")
    return 0


def print_validation(event: dict) -> None:
    if event["kind"] == "valid":
        print(f"  step {event['step']}: valid loss {event['valid_loss']:.3f}, "
              f"exact {event['exact']:.1f}%", flush=True)


if __name__ == "__main__":
    sys.exit(main())
