#!/usr/bin/env python3
"""Translate text with a model file: s2s-translate --model MODEL [--src FILE] [--output FILE]

--model may be repeated: the files (same SentencePiece models) then decode as an ensemble, the
mean of their log-probabilities at every step.

Reads one sentence per line from --src (or stdin; sentences given as arguments instead) and
writes one translation per line to --output (or stdout). With --n-best K > 1 each input gets K
lines "LINE<TAB>TRANSLATION<TAB>SCORE" (LINE counts from 1). A line longer than the model
accepts is translated in pieces (--long-lines split), left empty (skip) or stops the command
(error). A progress bar is shown on a terminal.

--glossary FILE (JSON: [{"source": "Mann", "target": "guy"}, ...], or {"terms": [...],
"avoid": ["phrase", ...]}) makes every line whose text contains a source term (whole words,
same case) use its target term, and no line use an avoid phrase (s2s.inference.glossary). The
file is checked against the model's target vocabulary before anything is translated (a bad
file stops the command with status 2); lines whose translation could not meet the glossary
are counted in a warning.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from s2s.checkpoint import CheckpointError
from s2s.devices import DeviceError
from s2s.inference.glossary import Glossary, GlossaryError, check_glossary
from s2s.inference.translator import (
    InputTooLongError,
    TranslateOptions,
    Translation,
    Translator,
)

from .cli_common import (
    add_decoding_args,
    chosen_dtype,
    fail,
    make_parser,
    translate_options,
    warn,
)
from .long_lines import LineResult, add_long_lines_arg, translate_lines

CHUNK_LINES = 256


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument("--model", required=True, action="append",
                        help="model file (model.pt / best.pt); repeat it for an ensemble")
    parser.add_argument("--src", help="source file, one sentence per line (default: stdin)")
    parser.add_argument("--input", dest="src", help=argparse.SUPPRESS)  # deprecated: --src
    parser.add_argument("--output", help="output file (default: stdout)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--glossary", metavar="FILE",
                        help='JSON glossary: [{"source": ..., "target": ...}] or {"terms": '
                             '[...], "avoid": [...]}; terms the translations must use')
    add_long_lines_arg(parser)
    parser.add_argument("sentences", nargs="*", help="sentences to translate (instead of --src)")
    add_decoding_args(parser)
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    raw = sys.argv[1:] if argv is None else argv
    if any(a == "--input" or a.startswith("--input=") for a in raw):
        warn("--input is deprecated: give --src")
    return args


def read_sources(args: argparse.Namespace) -> list[str]:
    if args.sentences:
        return list(args.sentences)
    if args.src:
        return Path(args.src).read_text(encoding="utf-8").splitlines()
    return sys.stdin.read().splitlines()


def format_result(number: int, result: LineResult, n_best: int) -> str:
    """One output line (n_best 1), else n_best lines "NUMBER<TAB>TEXT<TAB>SCORE"."""
    if n_best == 1:
        return result.text + "\n"
    if not result.alternatives:  # empty or skipped input
        return f"{number}\t\t0.0000\n"
    return "".join(f"{number}\t{text}\t{score:.4f}\n" for text, score in result.alternatives)


class GlossaryTranslator:
    """A Translator that translates every batch with ``glossary`` and counts the inputs whose
    translation does not meet it (``unmet``)."""

    def __init__(self, translator: Translator, glossary: Glossary):
        self.inner = translator
        self.glossary = glossary
        self.max_src_len = translator.max_src_len
        self.tokenizer = translator.tokenizer
        self.unmet = 0

    def translate(self, texts: list[str], options: TranslateOptions | None = None
                  ) -> list[Translation]:
        try:
            results = self.inner.translate(texts, options, glossary=self.glossary)
        except GlossaryError as error:
            if error.index is None:
                raise
            raise GlossaryError(f"the line starting {texts[error.index][:40]!r}: "
                                f"{str(error).split(': ', 1)[1]}") from None
        self.unmet += sum(1 for result in results if result.constraints_met is False)
        return results


def load_glossary(path: str, translator: Translator) -> Glossary:
    """The glossary file, checked against the model's target vocabulary (GlossaryError)."""
    glossary = Glossary.load(path)
    check_glossary(glossary, translator.tokenizer.tgt)
    return glossary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        options = translate_options(args)
        translator = Translator.from_files(args.model, args.device, chosen_dtype(args))
        if args.glossary:
            try:
                translator = GlossaryTranslator(translator, load_glossary(args.glossary,
                                                                          translator))
            except (GlossaryError, OSError) as error:
                return fail(f"glossary {args.glossary}: {error}")
        sources = read_sources(args)
        show = not args.no_progress and sys.stderr.isatty()
        with tqdm(total=len(sources), unit="sent", disable=not show) as bar:
            def progress(done: int) -> None:
                bar.update(done - bar.n)

            results = translate_lines(translator, sources, options, args.long_lines,
                                      CHUNK_LINES, warn=bar.write if show else warn,
                                      progress=progress)
    except (CheckpointError, DeviceError, InputTooLongError, OSError, ValueError) as error:
        return fail(str(error))
    if isinstance(translator, GlossaryTranslator) and translator.unmet:
        warn(f"{translator.unmet} translated lines (or pieces of long lines) of {len(sources)} "
             "could not meet the glossary within "
             "the output length limit (their translations lack a term or hold an avoid phrase)")
    lines = [format_result(number, result, args.n_best)
             for number, result in enumerate(results, start=1)]
    if args.output:
        Path(args.output).write_text("".join(lines), encoding="utf-8")
    else:
        sys.stdout.write("".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
