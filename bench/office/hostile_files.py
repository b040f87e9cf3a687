"""Hostile office packages against parse_upload: the answer (status the route gives), the time
and the peak Python memory (tracemalloc) of each refusal.

    .venv/bin/python bench/office/hostile_files.py > bench/office/hostile.json"""

from __future__ import annotations

import json
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from service.formats.documents import FileError, FileTooLarge, parse_upload  # noqa: E402
from tests import office_fixtures as fx  # noqa: E402

CASES = {
    "not a zip (text named .docx)": ("a.docx", lambda: b"Hallo Welt"),
    "PDF named .docx": ("a.docx", lambda: b"%PDF-1.7\n..."),
    "pptx named .docx": ("a.docx", fx.pptx),
    "docx named .odt": ("a.odt", fx.docx),
    "truncated zip": ("a.docx", lambda: fx.docx()[:700]),
    "encryption flag set": ("a.docx", fx.encrypted_flag),
    "password-protected docx (OLE container)": ("a.docx", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1"
                                                b"\x1a\xe1" + b"\0" * 600),
    "path traversal entry ../../evil.sh": ("a.docx", fx.traversal),
    "overlapping entries bomb (50 x 1 MB)": ("a.docx", fx.overlapping_bomb),
    "ratio bomb (100 MB of zeros, ~100 KB)": ("a.docx", fx.ratio_bomb),
    "6000 entries": ("a.docx", fx.many_entries),
    "sizes lie in the central directory": ("a.docx", fx.lying_sizes),
    "billion laughs (entity expansion)": ("a.docx", lambda: fx.docx_with(fx.BILLION_LAUGHS)),
    "external entity file:///etc/passwd": ("a.docx", lambda: fx.docx_with(fx.EXTERNAL_ENTITY)),
    "10000 nested elements": ("a.docx", lambda: fx.docx_with(fx.DEEP)),
    "over the character limit": ("a.docx", fx.docx),
}


def main() -> None:
    parse_upload("warm.docx", fx.docx(), 100_000)   # imports out of the timings
    rows = []
    for label, (name, make) in CASES.items():
        data = make()
        limit = 100 if label == "over the character limit" else 100_000
        tracemalloc.start()
        started = time.perf_counter()
        try:
            parse_upload(name, data, limit)
            status, message = 200, ""
        except FileTooLarge as error:
            status, message = 413, str(error)
        except FileError as error:
            status, message = 400, str(error)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append({"input": label, "upload_bytes": len(data), "status": status,
                     "ms": round(elapsed * 1000, 2), "peak_mib": round(peak / 2**20, 2),
                     "message": message})
    json.dump(rows, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
