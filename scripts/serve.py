#!/usr/bin/env python3
"""Run the HTTP translation service: s2s-serve [--settings FILE] [--models-dir DIR] ...

Settings come from S2S_* environment variables, the optional YAML/JSON settings file (keys are
the field names of service/settings.py) and these flags (highest precedence). The same app
runs directly under uvicorn:

    S2S_MODELS_DIR=models uvicorn service.app:create_app --factory --host 0.0.0.0 --port 8000

SIGHUP reloads new or changed model files; SIGTERM / Ctrl-C lets in-flight requests finish.
"""

from __future__ import annotations

import argparse
import logging
import sys

from pydantic import ValidationError

from service.app import create_app
from service.server import serve
from service.settings import SettingsError, load_settings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", help="YAML/JSON settings file")
    parser.add_argument("--models-dir", help="folder of <src>-<tgt>.pt model files")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], help="dtype on the GPU")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--max-batch-sentences", type=int, help="1 turns batching off")
    parser.add_argument("--max-wait-ms", type=float)
    parser.add_argument("--max-delay-ms", type=float)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {key: value for key, value in vars(args).items() if key != "settings"}
    try:
        settings = load_settings(args.settings, **overrides)
    except (SettingsError, ValidationError) as error:
        print(f"error: invalid settings: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(create_app(settings), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
