"""The API reaches the projector only through ``projector.facade``.

Every ``orders_api`` module is parsed (not imported, so a lazy import inside a function counts
too) and each import naming the ``projector`` package is checked: ``projector.facade`` is the
one allowed target.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "orders_api"
FACADE = "projector.facade"


def projector_imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import of the ``projector`` package or a module in it;
    ``from projector import x`` names ``projector.x``, since x may be a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "projector":
                modules = [f"projector.{alias.name}" for alias in node.names]
            else:
                modules = [node.module]
        else:
            continue
        for module in modules:
            if module == "projector" or module.startswith("projector."):
                yield node.lineno, module


def forbidden_imports(package: Path) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, module in projector_imports(tree):
            if module != FACADE and not module.startswith(f"{FACADE}."):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


def test_orders_api_imports_the_projector_only_through_its_facade() -> None:
    assert sorted(API.rglob("*.py")), "no orders_api modules found to check"
    assert forbidden_imports(API) == []


def test_the_scan_sees_every_form_of_import() -> None:
    source = """
import projector.status
import projector
from projector import rebuild, facade
from projector.projections.order_views import OrderViews
from projector.facade import projection_statuses
import projector.facade as ops
from shared.contract import read_models
def later() -> None:
    from projector.dead_letters import DeadLetter
"""
    modules = [module for _, module in projector_imports(ast.parse(source))]
    assert sorted(modules) == [
        "projector",
        "projector.dead_letters",
        "projector.facade",
        "projector.facade",
        "projector.facade",
        "projector.projections.order_views",
        "projector.rebuild",
        "projector.status",
    ]
