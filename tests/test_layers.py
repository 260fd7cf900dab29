"""The import graph: imports go one way (STYLE.md "Layout"), and only cli/ and local/ know the local AWS.

Every ``import`` and ``from ... import`` in src/flowwatch is read from the source (module level AND
inside functions: a lazy import is still a dependency), and each rule below names the modules it
forbids. A new back-arrow fails here with the file, the line and the import.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "flowwatch"


@dataclass(frozen=True)
class Import:
    module: str        # the importing module, dotted ("flowwatch.steps.vpc")
    target: str        # what it imports, dotted ("flowwatch.local.client", "click")
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[Import]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(name, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from flowwatch import local` imports the module flowwatch.local
            found += [Import(name, f"{target}.{alias.name}" if target == "flowwatch" else target, node.lineno)
                      for alias in node.names]
    return found


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    """Every import of every module of src/flowwatch (read when a test asks, not at collection)."""
    return [imp for path in sorted(SRC.rglob("*.py")) for imp in imports_of(path)]


def under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


# (who, which imports are forbidden to them, why)
RULES = [
    (("flowwatch.steps", "flowwatch.engine", "flowwatch.query", "flowwatch.records", "flowwatch.patterns",
      "flowwatch.model", "flowwatch.config", "flowwatch.naming", "flowwatch.aws", "flowwatch.actions",
      "flowwatch.context", "flowwatch.console", "flowwatch.errors", "flowwatch.polling", "flowwatch.s3layout",
      "flowwatch.timewindow", "flowwatch.iam_policy"),
     ("flowwatch.cli", "click", "flowwatch.local"),
     "below cli/ nothing knows the command line or the local AWS (it is handed in as ctx.local_api)"),
    (("flowwatch.local",), ("flowwatch.steps", "flowwatch.engine", "flowwatch.cli", "flowwatch.actions",
                            "flowwatch.query", "click"),
     "the local AWS stands beside the product: it imports no step, engine or command"),
    (("flowwatch.steps",), ("flowwatch.engine", "flowwatch.query", "flowwatch.actions", "flowwatch.context"),
     "steps only plan and apply: the engine drives them, never the other way round"),
    (("flowwatch.engine",), ("flowwatch.actions",), "actions sit above the engine"),
    (("flowwatch.records", "flowwatch.patterns"),
     ("boto3", "botocore", "moto", "flowwatch.aws", "flowwatch.steps", "flowwatch.engine", "flowwatch.model",
      "flowwatch.query", "flowwatch.local"),
     "records and patterns are pure: no AWS, no I/O"),
]


@pytest.mark.parametrize(("who", "forbidden", "why"), RULES, ids=[r[2].split(":")[0] for r in RULES])
def test_no_import_runs_backwards(graph: list[Import], who: tuple[str, ...], forbidden: tuple[str, ...],
                                  why: str) -> None:
    wrong = [f"{imp.module}:{imp.line} imports {imp.target}" for imp in graph
             if under(imp.module, *who) and under(imp.target, *forbidden)]
    assert wrong == [], why


def test_only_cli_and_local_import_the_local_aws(graph: list[Import]) -> None:
    wrong = [f"{imp.module}:{imp.line} imports {imp.target}" for imp in graph
             if under(imp.target, "flowwatch.local") and not under(imp.module, "flowwatch.cli", "flowwatch.local")]
    assert wrong == []


def test_the_graph_is_read(graph: list[Import]) -> None:
    """The rules above see real edges (a parser that finds nothing would pass every rule)."""
    edges = {(imp.module, imp.target) for imp in graph}
    assert ("flowwatch.steps.vpc", "flowwatch.model") in edges
    assert any(under(m, "flowwatch.cli") and t == "click" for m, t in edges)


def test_a_back_arrow_is_caught(tmp_path: Path) -> None:
    """The reader resolves relative and package imports the way Python does."""
    pkg = tmp_path / "flowwatch" / "steps"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    bad = pkg / "bad.py"
    bad.write_text("from ..local import client\nfrom flowwatch import engine\n\ndef f():\n    import click\n")
    global SRC
    saved, SRC = SRC, tmp_path / "flowwatch"
    try:
        targets = {imp.target for imp in imports_of(bad)}
    finally:
        SRC = saved
    assert targets == {"flowwatch.local", "flowwatch.engine", "click"}
