"""intake_scan's domain stays pure: standard library, itself, schemas and pure libraries only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import services.intake_scan.domain as domain

DOMAIN = Path(domain.__file__).parent
ALLOWED_ROOTS = {"schemas", "pydantic", "phonenumbers"}
ALLOWED_PREFIX = "services.intake_scan.domain"
FORBIDDEN_STDLIB = {"os", "io", "pathlib", "subprocess", "socket", "shutil", "tempfile", "time"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(DOMAIN.glob("*.py")), ids=lambda path: path.name)
def test_scan_domain_module_imports_are_pure(path: Path) -> None:
    for name in _imports(path):
        root = name.split(".")[0]
        if name.startswith(ALLOWED_PREFIX) or root in ALLOWED_ROOTS or root == "__future__":
            continue
        assert root in sys.stdlib_module_names, f"{path.name} imports {name}"
        assert root not in FORBIDDEN_STDLIB, f"{path.name} imports {name} (I/O or clock)"


@pytest.mark.parametrize("path", sorted(DOMAIN.glob("*.py")), ids=lambda path: path.name)
def test_scan_domain_module_never_reads_the_clock_or_environment(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    for forbidden in ("now(", "today(", "environ", "open("):
        assert forbidden not in source, f"{path.name} uses {forbidden}"
