#!/usr/bin/env python3
"""Run the HTTP translation service: s2s-serve [--config FILE] [--set KEY=VALUE ...] [--SETTING V]

Settings come from S2S_* environment variables, the optional YAML/JSON settings file (--config;
keys are the setting names listed below, those of service/settings.py), --set KEY=VALUE and the
flags (one per setting, e.g. --models-dir, --files-dir, --cpu-dtype int8), in rising precedence.
The same app runs directly under uvicorn:

    S2S_MODELS_DIR=models uvicorn service.app:create_app --factory --host 0.0.0.0 --port 8000

SIGHUP reloads new or changed model files; SIGTERM / Ctrl-C lets in-flight requests finish.
"""

from __future__ import annotations

import argparse
import logging
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticUndefined

from s2s.config import ConfigError, load_yaml, load_yaml_file
from service.app import create_app
from service.http.server import serve
from service.settings import Settings, SettingsError, load_settings

from .cli_common import fail, make_parser, warn


def _choices(annotation: Any) -> list[str] | None:
    if typing.get_origin(annotation) is typing.Literal:
        return [str(value) for value in typing.get_args(annotation)]
    return None


def _default_text(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None or value == []:
        return "unset"
    return str(value)


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument("--config", metavar="FILE",
                        help="YAML/JSON settings file (keys: the setting names below)")
    parser.add_argument("--settings", dest="config", help=argparse.SUPPRESS)  # deprecated
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a setting, e.g. max_batch_sentences=32 (repeatable; a "
                             "value is read as YAML)")
    group = parser.add_argument_group(
        "settings", "one flag per setting (S2S_<NAME> in the environment); a flag wins over "
        "--set, the settings file and the environment")
    for name, field in Settings.model_fields.items():
        choices = _choices(field.annotation)
        if name == "dtype":   # int8 runs on the CPU: the deprecated spelling of --cpu-dtype int8
            choices = [*(choices or []), "int8"]
        description = (field.description or name.replace("_", " ")).rstrip(".")
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None,
                           choices=choices, metavar=None if choices else name.upper(),
                           help=f"{description} (default: {_default_text(field)})")
    return parser


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """--set values, then the flags given (a flag wins); ConfigError for an unknown setting or a
    malformed --set."""
    values: dict[str, Any] = {}
    for assignment in args.overrides:
        key, sep, text = assignment.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--set {assignment!r} is not of the form key=value")
        if key not in Settings.model_fields:
            raise ConfigError(f"--set {key}: unknown setting (the settings are listed by "
                              "s2s-serve --help)")
        values[key] = load_yaml(text) if text.strip() else ""
    for name in Settings.model_fields:
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    if values.get("dtype") == "int8":
        warn("--dtype int8 is deprecated: int8 runs on the CPU, give --cpu-dtype int8")
        values["dtype"] = "fp32"
        values["cpu_dtype"] = "int8"
    return values


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    raw = sys.argv[1:] if argv is None else argv
    if any(a == "--settings" or a.startswith("--settings=") for a in raw):
        warn("--settings is deprecated: give --config")
    try:
        if args.config is not None and Path(args.config).is_file():
            load_yaml_file(args.config)   # duplicate keys are errors (load_settings reads it)
        settings = load_settings(args.config, **settings_overrides(args))
    except (ConfigError, SettingsError, ValidationError) as error:
        return fail(f"invalid settings: {error}")
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(create_app(settings), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
