"""Generate the committed JSON Schemas and AsyncAPI documents (a test checks they are fresh)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from schemas import (
    AccountAction,
    CustomerRecord,
    DeadLetter,
    DossierCommandAdapter,
    DossierEventAdapter,
    IntakeItem,
    OutboundContact,
    Task,
)
from services.cli.registry import SERVICES, load_app

__all__ = ["CONTRACTS", "export_all", "render_all"]

CONTRACTS: dict[str, type[BaseModel] | TypeAdapter[Any]] = {
    "IntakeItem": IntakeItem,
    "Task": Task,
    "DossierEvent": DossierEventAdapter,
    "DossierCommand": DossierCommandAdapter,
    "AccountAction": AccountAction,
    "OutboundContact": OutboundContact,
    "DeadLetter": DeadLetter,
    "CustomerRecord": CustomerRecord,
}


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_all() -> dict[str, str]:
    """Relative path -> content of every generated document."""
    files: dict[str, str] = {}
    for name, contract in CONTRACTS.items():
        schema = (
            contract.model_json_schema() if isinstance(contract, type) else contract.json_schema()
        )
        schema.setdefault("title", name)
        files[f"jsonschema/{name}.json"] = _dump(schema)
    for service in SERVICES:
        files[f"asyncapi/{service}.json"] = _dump(_asyncapi(_app_for_docs(service)))
    return files


def _app_for_docs(service: str) -> Any:
    # Documents are generated without connecting: any bootstrap address will do.
    os.environ.setdefault("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    return load_app(service)()


def _asyncapi(app: Any) -> Any:
    specification = app.schema.to_specification()
    return json.loads(specification.to_json())


def export_all(directory: Path) -> list[Path]:
    """Write every generated document under ``directory``; return the paths written."""
    written = []
    for relative, content in render_all().items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
