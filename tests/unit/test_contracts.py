"""The event contracts: frozen, strict, versioned, UTC; generated documents are fresh."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import DeadLetter, DossierCommandAdapter, DossierEventAdapter, IntakeItem, Task
from schemas.topics import ALL_TOPICS, SERVICE_QUEUES, task_topic
from services.cli.export import render_all

ROOT = Path(__file__).resolve().parents[2]
PARIS = dt.timezone(dt.timedelta(hours=1))


def _item(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "item_id": "email:abc",
        "channel": "email",
        "received_at": "2026-03-29T01:30:00+01:00",
        "source_ref": "INBOX/1",
    }
    return base | changes


def test_intake_item_normalises_contact_date_to_utc() -> None:
    item = IntakeItem.model_validate(_item())
    assert item.received_at == dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC)
    assert item.received_at.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"received_at": "2026-03-29T01:30:00"}, "received_at", id="naive-datetime"),
        pytest.param({"channel": "fax"}, "channel", id="unknown-channel"),
        pytest.param({"surprise": 1}, "surprise", id="extra-field"),
        pytest.param({"item_id": ""}, "item_id", id="empty-id"),
        pytest.param({"tsa_box": "6002"}, "tsa_box", id="tsa-box-not-5-digits"),
        pytest.param({"sender": {"customer_ref": "12345"}}, "customer_ref", id="short-reference"),
        pytest.param({"sender": {"mobile": "0612345678"}}, "mobile", id="mobile-not-e164"),
        pytest.param({"schema_version": "2.0"}, "schema_version", id="future-major"),
        pytest.param({"schema_version": "one"}, "schema_version", id="garbage-version"),
    ],
)
def test_intake_item_rejects(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        IntakeItem.model_validate(_item(**changes))
    assert field in str(error.value)


def test_minor_version_bumps_are_accepted() -> None:
    assert IntakeItem.model_validate(_item(schema_version="1.7")).schema_version == "1.7"


def test_contracts_are_frozen() -> None:
    item = IntakeItem.model_validate(_item())
    with pytest.raises(ValidationError):
        item.text = "changed"  # type: ignore[misc]


def test_events_and_commands_are_discriminated_by_type() -> None:
    event = DossierEventAdapter.validate_python(
        {
            "type": "dossier_closed",
            "event_id": "D1:c1",
            "dossier_id": "D1",
            "occurred_at": dt.datetime(2026, 1, 5, 10, tzinfo=PARIS),
        }
    )
    assert type(event).__name__ == "DossierClosed"
    command = DossierCommandAdapter.validate_python(
        {
            "command": "await_third_party",
            "command_id": "c2",
            "dossier_id": "D1",
            "issued_at": "2026-01-05T10:00:00Z",
            "issued_by": "field_ops",
            "third_party": "mairie",
        }
    )
    assert type(command).__name__ == "AwaitThirdParty"


@given(st.text(max_size=200))
def test_any_text_is_a_valid_body_and_round_trips(text: str) -> None:
    item = IntakeItem.model_validate(_item(text=text))
    assert IntakeItem.model_validate_json(item.model_dump_json()) == item


def test_partition_key_keeps_one_customer_on_one_partition() -> None:
    by_ref = IntakeItem.model_validate(_item(sender={"customer_ref": "123456789"}))
    by_mail = IntakeItem.model_validate(_item(sender={"email": "A@Example.test"}))
    anonymous = IntakeItem.model_validate(_item())
    assert (by_ref.partition_key(), by_mail.partition_key()) == ("123456789", "a@example.test")
    assert anonymous.partition_key() == "email:abc"


def test_topics_are_versioned_and_every_queue_has_one() -> None:
    assert all(topic.endswith(".v1") for topic in ALL_TOPICS)
    assert {task_topic(s) for s in SERVICE_QUEUES} <= set(ALL_TOPICS)
    with pytest.raises(ValueError, match="invalid service queue"):
        task_topic("Bad Name")


def test_task_and_dead_letter_require_their_ids() -> None:
    with pytest.raises(ValidationError):
        Task.model_validate({"service": "billing", "action": "handle_request"})
    with pytest.raises(ValidationError):
        DeadLetter.model_validate({"reason_code": "Not A Code"})


def test_committed_json_schemas_and_asyncapi_are_fresh() -> None:
    stale = []
    for relative, content in render_all().items():
        committed = ROOT / "schemas" / relative
        if not committed.exists() or committed.read_text(encoding="utf-8") != content:
            stale.append(relative)
    assert stale == [], f"run `make schemas` and commit: {stale}"
    asyncapi = json.loads((ROOT / "schemas/asyncapi/router.json").read_text(encoding="utf-8"))
    addresses = {channel["address"] for channel in asyncapi["channels"].values()}
    assert {"intake.items.v1", "dossier.commands.v1"} <= addresses


def _operations(service: str) -> set[tuple[str, str]]:
    document = json.loads((ROOT / f"schemas/asyncapi/{service}.json").read_text("utf-8"))
    channels = document["channels"]
    return {
        (channels[op["channel"]["$ref"].rsplit("/", 1)[-1]]["address"], op["action"])
        for op in document["operations"].values()
    }


def test_asyncapi_documents_what_each_record_carries_and_every_topic_published() -> None:
    for path in sorted((ROOT / "schemas/asyncapi").glob("*.json")):
        # Raw and batch subscribers have no payload type FastStream can read: the export
        # names their contract instead of FastStream's EmptyPayload.
        assert "EmptyPayload" not in path.read_text("utf-8"), path.name
    # What the services publish through their outbox is documented beside what they read.
    router = _operations("router")
    assert {(task_topic(queue), "send") for queue in SERVICE_QUEUES} <= router
    assert {("dossier.events.v1", "send"), ("account.actions.v1", "send")} <= router
    assert ("intake.items.v1", "receive") in router
    assert ("intake.items.v1", "send") in _operations("intake-phone")
    assert {("contacts.outbound.v1", "send"), ("dossier.events.v1", "receive")} <= _operations(
        "sla-watch"
    )
