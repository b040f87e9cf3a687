#!/usr/bin/env python3
"""Check that sentences translate the same alone and inside batches.

bench/check_batch_invariance.py --model M [--model M2 ...] --src test.de [--beam 5]
    [--out FILE.json]
Translates the file once in token-budget batches and once sentence by sentence, and reports
the share of identical translations (and lists the ones that differ). A repeated --model
checks the ensemble of the files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from s2s.inference.translator import Translator
from s2s.training.corpus_files import read_lines
from scripts.cli_common import add_decoding_args, translate_options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, action="append",
                        help="model file; repeat it for an ensemble")
    parser.add_argument("--src", required=True)
    parser.add_argument("--out", default="bench/batch_invariance.json")
    add_decoding_args(parser)
    args = parser.parse_args(argv)
    options = translate_options(args)
    translator = Translator.from_files(args.model, args.device, args.dtype)
    sources = read_lines(args.src)
    batched = [r.text for r in translator.translate(sources, options)]
    alone = [translator.translate([text], options)[0].text for text in sources]
    differ = [{"line": i, "batched": b, "alone": a}
              for i, (b, a) in enumerate(zip(batched, alone)) if b != a]
    share = 1 - len(differ) / max(len(sources), 1)
    model = args.model[0] if len(args.model) == 1 else args.model
    report = {"model": model, "src": args.src, "beam": args.beam, "dtype": args.dtype,
              "batch_tokens": args.batch_tokens, "sentences": len(sources),
              "identical_share": share, "differences": differ}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"{share:.1%} of {len(sources)} sentences identical alone and batched "
          f"({len(differ)} differ); details in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
