#!/usr/bin/env python3
"""Train a model: s2s-train --config CONFIG.yaml [--set key=value ...] [--resume | --overwrite]

The run folder (out_dir) must be empty (the prepared data may be there): --resume continues
the run in it, --overwrite removes its previous run's files first. --init-from M.pt fine-tunes
a model file (its language pair must be the data's); the run's config.yaml records it as
train.init_from. Under torchrun (WORLD_SIZE > 1) every process trains on its share of each
step's batches (DDP).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

from s2s.checkpoint import CheckpointError
from s2s.config import ConfigError, load_config
from s2s.devices import DeviceError, resolve_device
from s2s.model import count_parameters
from s2s.model.model_file import load_model_file
from s2s.tokenizer import TokenizerError
from s2s.training.corpus_files import DataError
from s2s.training.distributed import init_from_env, shutdown
from s2s.training.prepare import vocabulary_report
from s2s.training.run_folder import RunFolderError
from s2s.training.trainer import LanguageMismatchError, Trainer, fine_tuning_config

from .cli_common import add_config_args, make_parser
from .curves import CurveWriter
from .prepare import corpus_lines
from .progress import TrainingProgress


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    add_config_args(parser)
    folder = parser.add_mutually_exclusive_group()
    folder.add_argument("--resume", action="store_true",
                        help="continue the run in out_dir from its latest training state "
                             "(an error when it has none)")
    folder.add_argument("--overwrite", action="store_true",
                        help="start afresh in a non-empty out_dir: remove its previous run's "
                             "files (config, logs, step-*.pt, model files; not prepared data)")
    parser.add_argument("--init-from", metavar="MODEL.pt", default=None,
                        help="fine-tune: start from this model file's weights and SentencePiece "
                             "models (its model section replaces the config's), with a fresh "
                             "optimizer and schedule; same as --set train.init_from=MODEL.pt")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also log scalars to RUN_DIR/tensorboard/ (pip install tensorboard)")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    curves = None
    built = False   # the run folder is this run's (curves may be drawn into it)
    dist_info = None
    overrides = list(args.overrides)
    if args.init_from:
        overrides.append(f"train.init_from={Path(args.init_from).resolve()}")
    try:
        config = load_config(args.config, overrides)
        init_path = config.train.init_from
        # on --resume the training state's weights win; the file still gives the model section
        init_from = load_model_file(init_path) if init_path else None
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
                                resume=args.resume, init_from=init_from,
                                overwrite=args.overwrite)
        built = True
        if is_main:
            printer.write(f"run folder {trainer.run.path}; {count_parameters(trainer.model):,} "
                          f"parameters; {len(trainer.data.train):,} training pairs; device "
                          f"{trainer.device}")
            if init_from is not None and not args.resume:
                meta = init_from.meta
                printer.write(f"fine-tuning {init_path} ({meta.get('src_lang', '?')}->"
                              f"{meta.get('tgt_lang', '?')}, trained {meta.get('step', '?')} "
                              "steps); recorded as train.init_from in config.yaml")
            for line in corpus_lines(trainer.data.manifest):
                printer.write(line)
            line, warning = vocabulary_report(config, trainer.data.tokenizer,
                                              from_model_file=bool(init_path))
            printer.write(line)
            if warning:
                print(f"warning: {warning}", file=sys.stderr)
        progress = trainer.train()
        printer.close()
        shutdown(dist_info)   # on success only: after a failure the others may never arrive
    except (ConfigError, DataError, CheckpointError, TokenizerError, DeviceError,
            LanguageMismatchError, RunFolderError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if curves is not None:
            if built:
                curves.redraw()
            curves.close()
    if dist_info is not None and dist_info.is_main:
        print(f"best {config.train.early_stopping_metric} {progress.best_score} at step "
              f"{progress.best_step}; model files in {trainer.run.path}")
    if dist_info is not None and dist_info.enabled:
        end_process(0)
    return 0


def end_process(code: int) -> NoReturn:
    """End a process that left its process group (s2s.training.distributed.shutdown) without
    interpreter finalization, which can abort it while gloo's threads release their last
    work; every file the run writes is closed by now."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
