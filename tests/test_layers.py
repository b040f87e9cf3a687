"""The import direction of the library's layers (s2s/__init__.py) and the service's narrow
interface to it, checked on the source: a module that imports upward fails here."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# layer -> the layers it may import (a layer may always import itself)
LAYERS = {"base": set(), "model": {"base"}, "inference": {"base", "model"},
          "training": {"base", "model", "inference"}}
# what service/ may use of the library
SERVICE_INTERFACE = {"s2s.constants", "s2s.devices", "s2s.checkpoint", "s2s.inference.batching",
                     "s2s.inference.interrupt",
                     "s2s.inference.search", "s2s.inference.sentences",
                     "s2s.inference.translator"}


def layer_of(module: str) -> str:
    """s2s.model.decoder -> "model"; s2s.config -> "base"."""
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in LAYERS else "base"


def imported_modules(source: str, module: str) -> list[str]:
    """Absolute names of the s2s modules that ``source`` (of ``module``) imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level]
                base = ".".join([*package, base] if base else package)
            found.append(base)
            found += [f"{base}.{alias.name}" for alias in node.names]
    return [name for name in found if name == "s2s" or name.startswith("s2s.")]


def layer_violations(source: str, module: str) -> list[str]:
    own = layer_of(module)
    return [f"{module} ({own}) imports {name} ({layer_of(name)})"
            for name in imported_modules(source, module)
            if name.count(".") >= 1 and layer_of(name) != own
            and layer_of(name) not in LAYERS[own]]


def library_modules() -> dict[str, str]:
    modules = {}
    for path in sorted((ROOT / "s2s").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path.read_text(encoding="utf-8")
    return modules


def test_no_library_module_imports_a_higher_layer():
    violations = [v for name, source in library_modules().items()
                  for v in layer_violations(source, name)]
    assert violations == []


def test_the_check_catches_an_upward_import():
    assert layer_violations("from s2s.training.trainer import Trainer\n", "s2s.model.decoder")
    assert layer_violations("from ..inference import search\n", "s2s.model.decoder")
    assert layer_violations("import s2s.model.seq2seq\n", "s2s.config")
    assert not layer_violations("from s2s.model import Seq2Seq\n", "s2s.training.trainer")


def test_the_service_uses_only_the_library_interface():
    modules = library_modules()
    used = {name for path in sorted((ROOT / "service").rglob("*.py"))
            for name in imported_modules(path.read_text(encoding="utf-8"), f"service.{path.stem}")
            if name in modules}
    assert used <= SERVICE_INTERFACE, used - SERVICE_INTERFACE
