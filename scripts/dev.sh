#!/usr/bin/env bash
# Sets up a virtual environment (.venv) with what the project needs, then runs a task:
#   scripts/dev.sh serve   train the built-in demo model if needed, then serve it on port 8000
#   scripts/dev.sh demo    train the built-in demo model and translate with it
#   scripts/dev.sh test    type-check (mypy, configured in pyproject.toml), then run the test suite
#   scripts/dev.sh setup   only install
# PyTorch is pinned (S2S_TORCH, default torch==2.13.0): the CUDA build on a machine whose
# package index serves it, the local CPU build where that is what pip finds first.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${S2S_VENV:-.venv}"
torch_spec="${S2S_TORCH:-torch==2.13.0}"
python="${PYTHON:-python3}"

setup() {
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    local stamp="$venv/.s2s-installed" want
    want="$(cat pyproject.toml; echo "$torch_spec")"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$torch_spec"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev]"
    printf '%s' "$want" > "$stamp"
}

task="${1:-}"
shift || true
case "$task" in
    setup) setup ;;
    demo) setup; exec "$venv/bin/s2s-demo" "$@" ;;
    serve)
        setup
        models="${S2S_MODELS_DIR:-models}"
        "$venv/bin/s2s-demo" --install "$models"
        exec "$venv/bin/s2s-serve" --models-dir "$models" "$@" ;;
    test)
        setup
        "$venv/bin/mypy"   # any type error fails the run (set -e) before the tests start
        exec "$venv/bin/python" -m pytest -q "$@" ;;
    *) echo "usage: scripts/dev.sh serve|demo|test|setup [args]" >&2; exit 2 ;;
esac
