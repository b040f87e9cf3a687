"""Argument parsing and messages shared by every command, without torch (so commands that
need no model, such as s2s-keys, start fast)."""

from __future__ import annotations

import argparse
import sys


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help shows each option's default (unless its help already says it, or there is none:
    None, False, an empty list) and keeps the description's line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default is None or default is False
                or default is argparse.SUPPRESS or default == [] or not action.option_strings):
            return text
        return f"{text} (default: {default})"


def make_parser(doc: str | None, epilog: str | None = None) -> argparse.ArgumentParser:
    """A command's parser: the module docstring as description, defaults in --help."""
    return argparse.ArgumentParser(description=doc, epilog=epilog, formatter_class=HelpFormatter)


def add_config_args(parser: argparse.ArgumentParser, required: bool = True,
                    what: str = "YAML config file", default: str | None = None) -> None:
    """--config FILE and repeated --set KEY=VALUE, spelled the same in every command."""
    parser.add_argument("--config", required=required, default=default, metavar="FILE",
                        help=what)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a value of the config, e.g. train.lr=5e-4 (repeatable)")


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def fail(message: str, status: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status
