"""Imports point downward: the lower layers never import the model, RL or evaluation layers.

Every import statement is read with ``ast`` (module level and inside functions, plain and
``from`` imports, relative ones resolved), so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOWER = ("ai_trading/artifacts", "ai_trading/data", "ai_trading/features", "kernels")
HIGHER = ("ai_trading.models", "ai_trading.rl", "ai_trading.rl_trading", "ai_trading.evaluation")


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every module a file imports, relative imports resolved against its package."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base]) if base else ".".join(parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def forbidden(module: str) -> bool:
    return any(module == higher or module.startswith(higher + ".") for higher in HIGHER)


@pytest.mark.parametrize("layer", LOWER)
def test_lower_layers_import_no_higher_layer(layer: str) -> None:
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files, f"{layer} has no Python files: the test would pass vacuously"
    offenders = {str(f.relative_to(ROOT)): sorted(m for m in imported_modules(f) if forbidden(m)) for f in files}
    assert {f: m for f, m in offenders.items() if m} == {}


def test_the_parser_finds_function_level_and_relative_imports(tmp_path: Path) -> None:
    source = "def f():\n    from ai_trading.rl.governance import evaluate\n    import ai_trading.models.sb3\nfrom ..evaluation import metrics\n"
    tree_file = tmp_path / "ai_trading" / "artifacts" / "x.py"
    tree_file.parent.mkdir(parents=True)
    tree_file.write_text(source)
    modules = {m for m in imported_modules(tree_file, tmp_path) if forbidden(m)}
    assert modules >= {"ai_trading.rl.governance", "ai_trading.models.sb3", "ai_trading.evaluation.metrics"}


# The trading layers: the loop drives everything and only the CLI drives it; monitoring acts
# on the OMS and the registry, which know nothing of it.
TOP_LAYERS = [
    ("ai_trading.runtime", ("ai_trading/runtime", "ai_trading/commands")),
    ("ai_trading.monitoring", ("ai_trading/monitoring", "ai_trading/runtime", "ai_trading/commands")),
]


@pytest.mark.parametrize(("module", "allowed"), TOP_LAYERS, ids=[m for m, _ in TOP_LAYERS])
def test_only_the_layers_above_import_the_trading_layers(module: str, allowed: tuple[str, ...]) -> None:
    files = [f for f in sorted((ROOT / "ai_trading").rglob("*.py")) if not str(f.relative_to(ROOT)).startswith(allowed)]
    assert len(files) > 50, "the walk found too few files: the test would pass vacuously"
    offenders = {
        str(f.relative_to(ROOT)): sorted(m for m in imported_modules(f) if m == module or m.startswith(module + "."))
        for f in files
    }
    assert {f: m for f, m in offenders.items() if m} == {}
