"""States are decided by ``projector.lifecycle`` only: no other projector module spells one.

Every projector module but the lifecycle is parsed (not imported) and two things are looked
for: a state written by hand (assigned to a name or attribute called ``state`` or ``*_state``,
passed as such a keyword, stored under a "state" key, kept in a ``State``-typed variable or
returned from a ``State``-typed function, as a literal or inside a conditional), and, more
broadly, any string equal to a state name outside a docstring, since comparing states by hand
is deciding them by hand too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from projector.lifecycle import STATES

ROOT = Path(__file__).resolve().parents[2]
PROJECTOR = ROOT / "projector"
LIFECYCLE = PROJECTOR / "lifecycle.py"
NAMES = frozenset(STATES)


def _named_state(name: str) -> bool:
    return name == "state" or name.endswith("_state")


def _target_names(node: ast.expr) -> Iterator[str]:
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, ast.Attribute):
        yield node.attr
    elif isinstance(node, ast.Tuple | ast.List):
        for element in node.elts:
            yield from _target_names(element)


def _spells_state(node: ast.AST | None) -> bool:
    return node is not None and any(
        isinstance(n, ast.Constant) and n.value in NAMES for n in ast.walk(node)
    )


def _mentions_state_type(annotation: ast.AST | None) -> bool:
    return annotation is not None and any(
        isinstance(n, ast.Name) and n.id == "State" for n in ast.walk(annotation)
    )


def _pairs(target: ast.expr, value: ast.expr) -> Iterator[tuple[ast.expr, ast.expr]]:
    """Each assigned target with the part of the value it receives (tuples unpacked)."""
    if (
        isinstance(target, ast.Tuple | ast.List)
        and isinstance(value, ast.Tuple | ast.List)
        and len(target.elts) == len(value.elts)
    ):
        for t, v in zip(target.elts, value.elts, strict=True):
            yield from _pairs(t, v)
    else:
        yield target, value


def state_writes(source: str) -> list[int]:
    """Lines of ``source`` where a state is written by hand (see the module docstring)."""
    tree = ast.parse(source)
    lines: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for t, v in _pairs(target, node.value):
                    if any(map(_named_state, _target_names(t))) and _spells_state(v):
                        lines.append(node.lineno)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            named = any(map(_named_state, _target_names(node.target)))
            typed = isinstance(node, ast.AnnAssign) and _mentions_state_type(node.annotation)
            if (named or typed) and _spells_state(node.value):
                lines.append(node.lineno)
        elif isinstance(node, ast.keyword):
            if node.arg is not None and _named_state(node.arg) and _spells_state(node.value):
                lines.append(node.value.lineno)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "state" and _spells_state(value):
                    lines.append(key.lineno)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _mentions_state_type(
            node.returns
        ):
            lines += [n.lineno for n in ast.walk(node) if isinstance(n, ast.Return)
                      and _spells_state(n.value)]  # fmt: skip
    return sorted(set(lines))


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def state_names_spelled(source: str) -> list[int]:
    """Lines of ``source`` holding a string equal to a state name, docstrings aside."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    return sorted(
        {
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in NAMES and id(node) not in docstrings
        }
    )


def projector_modules() -> list[Path]:
    modules = [p for p in sorted(PROJECTOR.rglob("*.py")) if p != LIFECYCLE]
    assert len(modules) > 10, "projector modules not found"
    return modules


def findings(check: str) -> list[str]:
    scan = state_writes if check == "writes" else state_names_spelled
    return [
        f"{path.relative_to(ROOT)}:{line}"
        for path in projector_modules()
        for line in scan(path.read_text(encoding="utf-8"))
    ]


def test_no_projector_module_writes_a_state_outside_the_lifecycle() -> None:
    assert findings("writes") == []


def test_no_projector_module_spells_a_state_outside_the_lifecycle() -> None:
    assert findings("names") == []


SAMPLE = '''
"""live"""
class Controller:
    live_state: State = "live"
    def f(self, target, record):
        """failed"""
        target.state = "catching_up"
        target.state, target.reason = "failing", reason
        outcome.state = "catching_up" if x else y
        Target(projection, 1, state="not_started")
        update = {"$set": {"state": "catching_up"}}
        RESUMABLE: frozenset[State] = frozenset({"stopped", "failing"})
        target.state = state
        target.state = record.state
def kind(error) -> State:
    return "store_unavailable" if error else "failing"
if record.state == "failed":
    pass
'''


def test_the_scans_see_every_form() -> None:
    assert state_writes(SAMPLE) == [4, 7, 8, 9, 10, 11, 12, 16]
    assert state_names_spelled(SAMPLE) == [4, 7, 8, 9, 10, 11, 12, 16, 17]
