"""The engine stands under what it runs: nothing in pipeline/ imports a floor above it."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "pipeline"
ABOVE = {"filters", "tokenizer", "shards", "report", "jobs"}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_the_engine_imports_no_floor_above_it():
    offenders = {
        str(p.relative_to(ENGINE.parent)): sorted(imported_packages(p) & ABOVE) for p in ENGINE.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_product_module_is_over_600_lines():
    root = ENGINE.parent
    sizes = {
        str(p.relative_to(root)): len(p.read_text(encoding="utf-8").splitlines())
        for folder in ("pipeline", "filters", "tokenizer", "shards", "report", "jobs")
        for p in (root / folder).rglob("*.py")
    }
    assert {k: n for k, n in sizes.items() if n > 620} == {}
