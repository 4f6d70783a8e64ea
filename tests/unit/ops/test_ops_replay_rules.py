"""Which dead letters a selection picks, which can be replayed, and corrected payload checks."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
import typer

from schemas import DeadLetter
from schemas.topics import DOSSIER_COMMANDS, INTAKE_ITEMS
from services.ops.adapters.dlq_topic import StoredLetter
from services.ops.cli import parse_when
from services.ops.replay import InvalidCorrection, Selection, check_contract, not_replayable_reason

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def letter(
    n: int,
    *,
    reason_code: str = "invalid_contract",
    service: str = "router",
    topic: str | None = INTAKE_ITEMS,
    minutes: int = 0,
    payload: bytes | None = b"{}",
    truncated: bool = False,
) -> DeadLetter:
    return DeadLetter(
        dead_letter_id=f"{service}:{topic}/0@{n}",
        reason_code=reason_code,
        reason="received_at: Field required",
        original_topic=topic,
        original_partition=0 if topic else None,
        original_offset=n if topic else None,
        original_key="k1",
        original_ref=f"{topic}/0@{n}",
        payload_b64=base64.b64encode(payload).decode() if payload is not None else None,
        payload_truncated=truncated,
        service=service,
        service_version="0.1.0",
        occurred_at=T0 + dt.timedelta(minutes=minutes),
    )


LETTERS = [
    StoredLetter(letter(1), 0, 0),
    StoredLetter(letter(2, reason_code="unsupported_schema_version", minutes=10), 0, 1),
    StoredLetter(letter(3, service="sla-watch", topic="dossier.events.v1", minutes=20), 1, 0),
    StoredLetter(letter(4, minutes=30), 2, 0),
]


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        pytest.param(Selection(ids=frozenset({"router:intake.items.v1/0@2"})), [2], id="by-id"),
        pytest.param(
            Selection(reason_codes=frozenset({"invalid_contract"})), [1, 3, 4], id="reason"
        ),
        pytest.param(Selection(services=frozenset({"sla-watch"})), [3], id="service"),
        pytest.param(Selection(topics=frozenset({INTAKE_ITEMS})), [1, 2, 4], id="topic"),
        pytest.param(
            Selection(since=T0 + dt.timedelta(minutes=10), until=T0 + dt.timedelta(minutes=30)),
            [2, 3],
            id="time-range-half-open",
        ),
        pytest.param(
            Selection(reason_codes=frozenset({"invalid_contract"}), services=frozenset({"router"})),
            [1, 4],
            id="criteria-combine",
        ),
    ],
)
def test_ops_selection_picks_dead_letters(selection: Selection, expected: list[int]) -> None:
    picked = [s.letter.original_offset for s in selection.select(LETTERS)]
    assert picked == expected


def test_ops_an_empty_selection_is_refused() -> None:
    assert Selection().is_empty
    assert not Selection(since=T0).is_empty


@pytest.mark.parametrize(
    ("dead", "corrected", "why"),
    [
        pytest.param(letter(1), False, None, id="original-bytes"),
        pytest.param(letter(1, topic=None), False, "re-ingest it at its source", id="mail-or-file"),
        pytest.param(letter(1, payload=None), False, "no payload kept", id="no-payload"),
        pytest.param(letter(1, payload=None), True, None, id="no-payload-but-corrected"),
        pytest.param(letter(1, truncated=True), False, "truncated", id="truncated"),
        pytest.param(
            letter(1, topic=None), True, "re-ingest it at its source", id="corrected-file"
        ),
    ],
)
def test_ops_what_can_be_replayed(dead: DeadLetter, corrected: bool, why: str | None) -> None:
    reason = not_replayable_reason(dead, corrected=corrected)
    assert (reason is None) if why is None else (why in (reason or ""))


def test_ops_corrected_payloads_must_satisfy_their_topic_contract() -> None:
    item = {
        "item_id": "test:email:1",
        "channel": "email",
        "received_at": "2026-11-20T09:00:00Z",
        "source_ref": "test/1",
    }
    check_contract(INTAKE_ITEMS, json.dumps(item).encode())
    check_contract("some.unknown.topic", b"not json at all")  # no contract known: no check
    del item["received_at"]
    with pytest.raises(InvalidCorrection, match="received_at"):
        check_contract(INTAKE_ITEMS, json.dumps(item).encode())
    with pytest.raises(InvalidCorrection):
        check_contract(DOSSIER_COMMANDS, b'{"command": "teleport"}')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2h", T0 - dt.timedelta(hours=2), id="hours-ago"),
        pytest.param("30m", T0 - dt.timedelta(minutes=30), id="minutes-ago"),
        pytest.param("3d", T0 - dt.timedelta(days=3), id="days-ago"),
        pytest.param(
            "2026-11-19T08:00:00", dt.datetime(2026, 11, 19, 8, tzinfo=dt.UTC), id="naive"
        ),
        pytest.param(
            "2026-11-19T10:00:00+02:00", dt.datetime(2026, 11, 19, 8, tzinfo=dt.UTC), id="offset"
        ),
    ],
)
def test_ops_cli_times(text: str, expected: dt.datetime) -> None:
    assert parse_when(text, T0) == expected


def test_ops_cli_rejects_unreadable_times() -> None:
    with pytest.raises(typer.BadParameter):
        parse_when("yesterday-ish", T0)
