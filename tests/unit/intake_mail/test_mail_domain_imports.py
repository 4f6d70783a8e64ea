"""The intake_mail domain stays pure (STYLE rule 1): stdlib, itself, schemas, pure libraries."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[3] / "services" / "intake_mail" / "domain"
ALLOWED_THIRD_PARTY = {"schemas", "pydantic", "phonenumbers"}
FORBIDDEN_STDLIB = {
    "os", "socket", "subprocess", "pathlib", "shutil", "time", "random", "logging", "mimetypes",
    "urllib", "http", "smtplib", "imaplib", "tempfile", "asyncio", "threading",
}  # fmt: skip
FORBIDDEN_CALLS = {"now", "utcnow", "today", "open", "getenv", "environ", "time"}
MODULES = sorted(DOMAIN.glob("*.py"))


def _imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", MODULES, ids=[path.name for path in MODULES])
def test_domain_module_imports_only_pure_code(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for name in _imports(tree):
        top = name.split(".")[0]
        if name.startswith("services."):
            assert name.startswith("services.intake_mail.domain"), name
        elif top in sys.stdlib_module_names:
            assert top not in FORBIDDEN_STDLIB, name
        else:
            assert top in ALLOWED_THIRD_PARTY, name


@pytest.mark.parametrize("path", MODULES, ids=[path.name for path in MODULES])
def test_domain_module_reads_no_clock_env_or_files(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            assert node.attr not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} .{node.attr}"
        elif isinstance(node, ast.Name):
            assert node.id not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} {node.id}"


def test_public_functions_are_documented() -> None:
    for path in MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), path.name
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
                assert ast.get_docstring(node), f"{path.name}:{node.name}"
