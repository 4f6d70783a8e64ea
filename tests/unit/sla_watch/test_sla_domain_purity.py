"""sla_watch's domain stays pure: no I/O libraries, no settings, no clock (STYLE rule 1)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[3] / "services" / "sla_watch" / "domain"
ALLOWED_THIRD_PARTY = {"schemas", "pydantic", "holidays"}
FORBIDDEN_STDLIB = {"os", "socket", "subprocess", "asyncio", "sqlite3", "smtplib", "time", "random"}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "getenv", "open"}
MODULES = sorted(DOMAIN.glob("*.py"))


def _imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return names


def test_sla_domain_modules_are_found() -> None:
    assert {path.name for path in MODULES} >= {"calendar.py", "deadlines.py", "holding.py"}


@pytest.mark.parametrize("path", MODULES, ids=[path.name for path in MODULES])
def test_sla_domain_imports_only_pure_modules(path: Path) -> None:
    for name in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        top = name.split(".")[0]
        if name.startswith("services."):
            assert name.startswith("services.sla_watch.domain"), name
        elif top in sys.stdlib_module_names:
            assert top not in FORBIDDEN_STDLIB, name
        else:
            assert top in ALLOWED_THIRD_PARTY | {"__future__"}, name


@pytest.mark.parametrize("path", MODULES, ids=[path.name for path in MODULES])
def test_sla_domain_never_reads_the_clock_or_the_environment(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            assert name not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} calls {name}()"
        if isinstance(node, ast.Attribute):
            assert node.attr != "environ", f"{path.name}:{node.lineno} reads the environment"
