#!/usr/bin/env python3
"""Average the last N training states of a run into a model file.

s2s-average --run-dir runs/NAME [--last 3] [--output runs/NAME/averaged.pt]
or with explicit files: --inputs step-1.pt step-2.pt ... --output averaged.pt

With --run-dir only the states of the run in the folder count (a state another run left there
is not averaged), and --last N with fewer states is an error. A state of a run trained with
train.ema_decay contributes its EMA weights (what the run's model files hold), not the raw ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

from s2s.checkpoint import CheckpointError
from s2s.training.average import average_training_states
from s2s.training.run_folder import RunFolder, RunFolderError

from .cli_common import fail, make_parser


def build_parser():
    parser = make_parser(__doc__)
    parser.add_argument("--run-dir", help="run folder holding step-*.pt training states")
    parser.add_argument("--last", type=int, default=3,
                        help="how many of the run's newest states (with --run-dir)")
    parser.add_argument("--inputs", nargs="+", help="training-state files to average")
    parser.add_argument("--output", help="model file to write (default: RUN_DIR/averaged.pt)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if bool(args.run_dir) == bool(args.inputs):
        return fail("give either --run-dir or --inputs")
    output = Path(args.output or Path(args.run_dir or ".") / "averaged.pt")
    try:
        if args.inputs:
            paths = [Path(p) for p in args.inputs]
        else:
            paths = RunFolder(args.run_dir).last_states(args.last)
        average_training_states(paths, output)
    except (CheckpointError, RunFolderError) as error:
        return fail(str(error))
    print(f"averaged {len(paths)} checkpoints ({', '.join(p.name for p in paths)}) -> {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
