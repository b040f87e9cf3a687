#!/usr/bin/env python3
"""Train a model: s2s-train --config CONFIG.yaml [--set key=value ...] [--resume]

Under torchrun (WORLD_SIZE > 1) every process trains on its share of each step's batches (DDP).
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from s2s.checkpoint import CheckpointError
from s2s.config import ConfigError, load_config
from s2s.devices import DeviceError, resolve_device
from s2s.model import count_parameters
from s2s.tokenizer import TokenizerError
from s2s.training.data import DataError
from s2s.training.distributed import init_from_env
from s2s.training.trainer import Trainer


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML config file")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config value, e.g. train.lr=5e-4")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run folder's latest checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


class ProgressPrinter:
    """Turns trainer events into a progress bar and one line per validation."""

    def __init__(self, total_steps: int, enabled: bool):
        self.bar = tqdm(total=total_steps or None, disable=not enabled, unit="step",
                        dynamic_ncols=True)
        self.enabled = enabled

    def __call__(self, event: dict) -> None:
        kind = event["kind"]
        if kind == "train":
            self.bar.n = event["step"]
            self.bar.set_postfix(loss=f"{event['loss']:.3f}", lr=f"{event['lr']:.2e}",
                                 tok_s=f"{event['tokens_per_s']:.0f}")
        elif kind == "valid":
            self.bar.write(
                f"step {event['step']}: valid loss {event['valid_loss']:.3f} "
                f"ppl {event['valid_ppl']:.2f} BLEU {event['bleu']:.2f} chrF {event['chrf']:.2f} "
                f"exact {event['exact']:.1f}%"
                + (" (best)" if event["improved"] else ""))
        elif kind == "resume":
            self.bar.n = event["step"]
            self.bar.write(f"resumed at step {event['step']}")
        elif kind == "stop":
            self.bar.write(f"stopped at step {event['step']}: {event['reason'] or 'done'}")
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
        dist_info = init_from_env(resolve_device(config.train.device).type)
        printer = ProgressPrinter(config.train.max_steps, dist_info.is_main and not args.quiet)
        trainer = Trainer.build(config, dist_info, printer if dist_info.is_main else None,
                                resume=args.resume)
        if dist_info.is_main:
            printer.bar.write(
                f"run folder {trainer.run.path}; {count_parameters(trainer.model):,} parameters; "
                f"{len(trainer.data.train):,} training pairs; device {trainer.device}")
        progress = trainer.train()
        printer.close()
    except (ConfigError, DataError, CheckpointError, TokenizerError, DeviceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if dist_info.is_main:
        print(f"best {config.train.early_stopping_metric} {progress.best_score} at step "
              f"{progress.best_step}; model files in {trainer.run.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
