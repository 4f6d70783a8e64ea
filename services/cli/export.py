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
from schemas.topics import CUSTOMERS_DIRECTORY, DOSSIER_EVENTS, INTAKE_ITEMS, TELEPHONY_RAW
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


# Subscribers that take the raw Kafka message (batches, tombstones, per-record
# dead letters) have no payload type for FastStream to read: it documents them
# as ``EmptyPayload``. What their records carry, for the teams who publish them:
RAW_SUBSCRIBER_PAYLOADS: dict[str, str] = {
    INTAKE_ITEMS: "IntakeItem",
    DOSSIER_EVENTS: "DossierEvent",
    CUSTOMERS_DIRECTORY: "CustomerRecord",
}
TELEPHONY_RAW_PAYLOAD: dict[str, Any] = {
    "title": "TelephonyRawPayload",
    "description": (
        "A call platform's own event payload, as its webhook would post it: our generic "
        "JSON, a Ringover webhook, Twilio status-callback form fields or Asterisk AMI "
        "key: value text. The platform is named by the record's `platform` header, else "
        "by its key's first part (`platform:call-id`)."
    ),
    "type": "string",
    "contentEncoding": "utf-8",
}


def _asyncapi(app: Any) -> Any:
    specification = app.schema.to_specification()
    return _document_raw_payloads(json.loads(specification.to_json()))


def _contract_schema(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A contract's JSON schema referring to AsyncAPI components, and its definitions."""
    contract = CONTRACTS[name]
    template = "#/components/schemas/{model}"
    schema = (
        contract.model_json_schema(ref_template=template)
        if isinstance(contract, type)
        else contract.json_schema(ref_template=template)
    )
    definitions = schema.pop("$defs", {})
    schema.setdefault("title", name)
    return schema, definitions


def _document_raw_payloads(document: dict[str, Any]) -> dict[str, Any]:
    """Replace ``EmptyPayload`` with the contract each raw subscriber's records carry."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    messages = document["components"].get("messages", {})
    empty = {"$ref": "#/components/schemas/EmptyPayload"}
    for channel in document.get("channels", {}).values():
        address = channel.get("address")
        for reference in channel.get("messages", {}).values():
            message = messages.get(reference.get("$ref", "").rsplit("/", 1)[-1])
            if message is None or message.get("payload") != empty:
                continue
            if address == TELEPHONY_RAW:
                schemas["TelephonyRawPayload"] = TELEPHONY_RAW_PAYLOAD
                message["payload"] = {"$ref": "#/components/schemas/TelephonyRawPayload"}
            elif (name := RAW_SUBSCRIBER_PAYLOADS.get(address or "")) is not None:
                schema, definitions = _contract_schema(name)
                schemas.update(definitions)
                schemas[name] = schema
                message["payload"] = {"$ref": f"#/components/schemas/{name}"}
    if not any(
        m.get("payload") == empty for m in document["components"].get("messages", {}).values()
    ):
        schemas.pop("EmptyPayload", None)
    return document


def export_all(directory: Path) -> list[Path]:
    """Write every generated document under ``directory``; return the paths written."""
    written = []
    for relative, content in render_all().items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
