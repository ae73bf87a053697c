"""No import circle between CAPE's parts: a static walk of every import, function-level ones
included (a lazy import still ties the two parts together)."""

from __future__ import annotations

import ast
from pathlib import Path

import cape

SOURCE = Path(cape.__file__).resolve().parent


def _part(module: str) -> str:
    """``cape.report.collect`` -> ``cape.report``; ``cape.embed`` -> ``cape.embed``."""
    return ".".join(module.split(".")[:2])


def _part_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        parts = ("cape", *path.relative_to(SOURCE).with_suffix("").parts)
        package = parts[:-1]  # what a relative import is relative to
        importer = _part(".".join(parts[:-1] if path.name == "__init__.py" else parts))
        edges = graph.setdefault(importer, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package[: len(package) - node.level + 1], base]).strip(".")
                names = [base]
            else:
                continue
            edges.update(_part(n) for n in names if n.startswith("cape.") and _part(n) != importer)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_import_circle_between_parts():
    graph = _part_graph()
    assert "cape.study" in graph["cape.commands"]  # the walk sees function-level imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
