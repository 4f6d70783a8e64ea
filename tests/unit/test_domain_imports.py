"""STYLE rule 1: ``domain/`` modules import only the standard library, themselves and schemas.

Pure third-party libraries that do no I/O are allowed too (pydantic for
values, phonenumbers/stdnum for identifiers, rapidfuzz for matching,
holidays for the calendar). Standard-library modules that do I/O are not.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_FILES = sorted(ROOT.glob("services/*/domain/**/*.py"))
PURE_LIBRARIES = {
    "pydantic",
    "phonenumbers",
    "stdnum",
    "rapidfuzz",
    "holidays",
    "typing_extensions",
}
IO_STDLIB = {
    "asyncio", "ftplib", "glob", "http", "imaplib", "os", "shutil", "smtplib", "socket",
    "sqlite3", "ssl", "subprocess", "tempfile", "urllib.request", "multiprocessing", "threading",
}  # fmt: skip
# In-memory uses of io (BytesIO) and urllib.parse (query strings) are pure.


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_there_are_domain_modules() -> None:
    assert len(DOMAIN_FILES) >= 3


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_module_imports_no_io(path: Path) -> None:
    service = path.relative_to(ROOT).parts[1]
    bad = []
    for name in _imports(path):
        top = name.split(".")[0]
        if top in IO_STDLIB or name in IO_STDLIB or (top == "urllib" and name != "urllib.parse"):
            bad.append(name)
        elif top in sys.stdlib_module_names or top in PURE_LIBRARIES or top == "schemas":
            continue
        elif not name.startswith(f"services.{service}.domain"):
            bad.append(name)
    assert bad == [], f"{path.name} imports {bad}"
