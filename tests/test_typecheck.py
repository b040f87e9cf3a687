"""The type checker (mypy, configured in pyproject.toml; scripts/dev.sh test runs it on s2s and
service before the tests) catches a call with a wrong argument type, and passes a right one.

The module checked imports only s2s.inference.interrupt (no torch), so a cold run takes a few
seconds; ``--follow-imports=silent`` checks the imported project code without reporting on it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parent.parent

CALLS = """\
from s2s.inference.interrupt import Interrupt

Interrupt().dropped([0, 1])
Interrupt().dropped("not input numbers")
"""


def test_mypy_names_a_wrong_argument_type(tmp_path: Path) -> None:
    module = tmp_path / "calls.py"
    module.write_text(CALLS, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--follow-imports=silent", "--cache-dir", str(tmp_path / "mypy_cache"),
         "--no-error-summary", str(module)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    assert run.returncode == 1, run.stdout + run.stderr
    assert len(errors) == 1, run.stdout   # the right call passes
    assert "calls.py:4: error: Argument 1 to \"dropped\" of \"Interrupt\" has incompatible " \
           "type \"str\"; expected \"Sequence[int]\"  [arg-type]" in errors[0]
