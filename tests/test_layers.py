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
SERVICE_INTERFACE = {"s2s.constants", "s2s.devices", "s2s.checkpoint", "s2s.batching",
                     "s2s.config",
                     "s2s.inference.interrupt",
                     "s2s.inference.search", "s2s.inference.sentences",
                     "s2s.inference.translator", "s2s.inference.glossary",
                     "s2s.inference.confidence"}


def layer_of(module: str) -> str:
    """s2s.model.decoder -> "model"; s2s.config -> "base"."""
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in LAYERS else "base"


def imported_modules(source: str, module: str, package: str = "s2s") -> list[str]:
    """Absolute names of the ``package`` modules that ``source`` (of ``module``) imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: -node.level]
                base = ".".join([*parent, base] if base else parent)
            found.append(base)
            found += [f"{base}.{alias.name}" for alias in node.names]
    return [name for name in found if name == package or name.startswith(f"{package}.")]


def layer_violations(source: str, module: str) -> list[str]:
    own = layer_of(module)
    return [f"{module} ({own}) imports {name} ({layer_of(name)})"
            for name in imported_modules(source, module)
            if name.count(".") >= 1 and layer_of(name) != own
            and layer_of(name) not in LAYERS[own]]


def package_modules(package: str) -> dict[str, str]:
    """{dotted module name: source} of every module of a top-level package."""
    modules = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path.read_text(encoding="utf-8")
    return modules


def test_no_library_module_imports_a_higher_layer():
    violations = [v for name, source in package_modules("s2s").items()
                  for v in layer_violations(source, name)]
    assert violations == []


def test_the_check_catches_an_upward_import():
    assert layer_violations("from s2s.training.trainer import Trainer\n", "s2s.model.decoder")
    assert layer_violations("from ..inference import search\n", "s2s.model.decoder")
    assert layer_violations("import s2s.model.seq2seq\n", "s2s.config")
    assert not layer_violations("from s2s.model import Seq2Seq\n", "s2s.training.trainer")


def test_the_service_uses_only_the_library_interface():
    modules = package_modules("s2s")
    used = {name for module, source in package_modules("service").items()
            for name in imported_modules(source, module) if name in modules}
    assert used <= SERVICE_INTERFACE, used - SERVICE_INTERFACE


# The service's layers, top to bottom (service/__init__.py): each may import those listed.
SERVICE_LAYERS = {
    "base": set(),                                   # settings, errors, schemas
    "formats": {"base"},
    "stores": {"base"},
    "serving": {"base", "formats", "stores"},
    "state": {"base", "formats", "stores", "serving"},
    "http": {"base", "formats", "stores", "serving", "state"},
    "app": {"base", "formats", "stores", "serving", "state", "http"},
}


def service_layer_of(module: str) -> str:
    """service.http.translate -> "http"; service.state -> "state"; service.errors -> "base"."""
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in SERVICE_LAYERS else "base"


def service_violations(source: str, module: str) -> list[str]:
    own = service_layer_of(module)
    return [f"{module} ({own}) imports {name} ({service_layer_of(name)})"
            for name in imported_modules(source, module, "service")
            if name.count(".") >= 1 and service_layer_of(name) != own
            and service_layer_of(name) not in SERVICE_LAYERS[own]]


def test_no_service_module_imports_a_higher_layer():
    violations = [v for name, source in package_modules("service").items()
                  for v in service_violations(source, name)]
    assert violations == []


def test_the_service_check_catches_an_upward_import():
    assert service_violations("from service.state import Service\n", "service.serving.pipeline")
    assert service_violations("from service.http.body import read_body\n", "service.state")
    assert service_violations("from service.formats.text import split_text\n",
                              "service.stores.files")
    assert service_violations("from ..http import routes\n", "service.serving.batcher")
    assert not service_violations("from service.serving.batcher import Batcher\n",
                                  "service.http.translate")
