"""The intake_phone domain stays pure: no I/O, no clock, no settings (STYLE rule 1)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import services.intake_phone.domain

DOMAIN = Path(services.intake_phone.domain.__file__).parent
MODULES = sorted(DOMAIN.glob("*.py"))
ALLOWED_THIRD_PARTY = {"pydantic", "phonenumbers", "schemas", "services"}
FORBIDDEN_STDLIB = {
    "asyncio", "http", "io", "logging", "os", "pathlib", "random", "shutil", "socket",
    "subprocess", "sys", "tempfile", "time", "urllib.request",
}  # fmt: skip
FORBIDDEN_ATTRIBUTES = {"now", "utcnow", "today", "environ", "getenv"}


def _imports(tree: ast.Module) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


@pytest.mark.parametrize("path", MODULES, ids=[path.name for path in MODULES])
def test_phone_domain_module_is_pure(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for name in _imports(tree):
        root = name.split(".", 1)[0]
        assert name not in FORBIDDEN_STDLIB, name
        assert root not in FORBIDDEN_STDLIB, name
        if root == "services":
            assert name.startswith("services.intake_phone.domain"), name
        elif root not in ALLOWED_THIRD_PARTY and root != "__future__":
            assert root in sys.stdlib_module_names, name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            assert node.attr not in FORBIDDEN_ATTRIBUTES, f"{path.name}: .{node.attr}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"open", "print", "input"}, f"{path.name}: {node.func.id}"


def test_phone_domain_modules_stay_small() -> None:
    for path in MODULES:
        assert len(path.read_text(encoding="utf-8").splitlines()) < 400, path.name
