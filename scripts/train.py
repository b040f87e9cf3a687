#!/usr/bin/env python3
"""Train a model: s2s-train --config CONFIG.yaml [--set key=value ...] [--resume | --init-from M.pt]

Under torchrun (WORLD_SIZE > 1) every process trains on its share of each step's batches (DDP).
"""

from __future__ import annotations

import argparse
import sys

from s2s.checkpoint import CheckpointError
from s2s.config import ConfigError, load_config
from s2s.devices import DeviceError, resolve_device
from s2s.inference.model_file import load_model_file
from s2s.model import count_parameters
from s2s.tokenizer import TokenizerError
from s2s.training.corpus_files import DataError
from s2s.training.distributed import init_from_env
from s2s.training.trainer import Trainer, fine_tuning_config

from .curves import CurveWriter
from .prepare import corpus_lines
from .progress import TrainingProgress


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML config file")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config value, e.g. train.lr=5e-4")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run folder's latest checkpoint")
    parser.add_argument("--init-from", metavar="MODEL.pt", default=None,
                        help="fine-tune: start from this model file's weights and SentencePiece "
                             "models (its model section replaces the config's), with a fresh "
                             "optimizer and schedule")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also log scalars to RUN_DIR/tensorboard/ (pip install tensorboard)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    curves = None
    try:
        config = load_config(args.config, args.overrides)
        init_from = load_model_file(args.init_from) if args.init_from else None
        if init_from is not None:
            config = fine_tuning_config(config, init_from)
        dist_info = init_from_env(resolve_device(config.train.device).type)
        is_main = dist_info.is_main
        printer = TrainingProgress(config.train.max_steps, config.train.max_minutes,
                                   enabled=is_main and not args.quiet)
        curves = (CurveWriter(config.run_dir(), tensorboard=args.tensorboard,
                              warn=printer.write) if is_main else None)

        def on_event(event: dict) -> None:
            printer(event)
            curves(event)

        trainer = Trainer.build(config, dist_info, on_event if is_main else None,
                                resume=args.resume, init_from=init_from)
        if is_main:
            printer.write(f"run folder {trainer.run.path}; {count_parameters(trainer.model):,} "
                          f"parameters; {len(trainer.data.train):,} training pairs; device "
                          f"{trainer.device}")
            for line in corpus_lines(trainer.data.manifest):
                printer.write(line)
        progress = trainer.train()
        printer.close()
    except (ConfigError, DataError, CheckpointError, TokenizerError, DeviceError,
            RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if curves is not None:
            curves.redraw()
            curves.close()
    if dist_info.is_main:
        print(f"best {config.train.early_stopping_metric} {progress.best_score} at step "
              f"{progress.best_step}; model files in {trainer.run.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
