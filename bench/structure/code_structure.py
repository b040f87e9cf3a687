#!/usr/bin/env python3
"""The code's structure in numbers: every module of a package folder with its lines, and the
longest classes and functions (ast). Usage: code_structure.py ROOT [PACKAGE ...] [--json OUT]"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path


def definitions(tree: ast.AST, module: str) -> list[tuple[int, str, str]]:
    """(lines, kind, name) of every class and function, methods included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            found.append((node.end_lineno - node.lineno + 1, kind, f"{module}:{node.name}"))
    return found


def measure(root: Path, packages: list[str]) -> dict:
    modules, defs = {}, []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            name = str(path.relative_to(root))
            source = path.read_text(encoding="utf-8")
            modules[name] = source.count("\n")
            defs += definitions(ast.parse(source), name)
    defs.sort(reverse=True)
    longest = {kind: [{"lines": n, "name": name} for n, k, name in defs if k == kind][:5]
               for kind in ("class", "function")}
    return {"modules": modules, "total_lines": sum(modules.values()),
            "module_count": len(modules), "longest": longest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("packages", nargs="*", default=["service"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = measure(args.root, args.packages)
    for name, lines in report["modules"].items():
        print(f"{lines:6d}  {name}")
    print(f"{report['total_lines']:6d}  in {report['module_count']} modules")
    for kind, items in report["longest"].items():
        print(f"longest {kind}: " + ", ".join(f"{i['name']} ({i['lines']})" for i in items[:3]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
