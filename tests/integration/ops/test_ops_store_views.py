"""Replay markers and the status view's store counts, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import pytest
import sqlalchemy as sa

from schemas import DeadLetter
from schemas.topics import INTAKE_ITEMS
from services.common.outbox import OutboxMessage, add_to_outbox
from services.common.store import Store, create_store
from services.common.store.tables import dossiers, outbox
from services.ops.adapters.dlq_topic import StoredLetter
from services.ops.adapters.store_views import DeadlineCounts, OutboxCounts, StoreViews
from services.ops.replay import REPLAY_HEADER, ReplayService
from services.sla_watch.adapters.tables import sla_dossiers

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


class RecordingPublisher:
    """Keeps what would have been published; can be told to fail like a broker outage."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, dict[str, str]]] = []
        self.fail = False

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes, headers: Mapping[str, str]
    ) -> None:
        if self.fail:
            raise ConnectionError("broker unreachable")
        self.sent.append((topic, key, value, dict(headers)))


def stored(n: int, *, topic: str | None = INTAKE_ITEMS) -> StoredLetter:
    letter = DeadLetter(
        dead_letter_id=f"router:{topic}/0@{n}",
        reason_code="invalid_contract",
        reason="received_at: Field required",
        original_topic=topic,
        original_key="ref:200000001",
        original_ref=f"{topic}/0@{n}",
        payload_b64=base64.b64encode(b'{"bad": true}').decode(),
        service="router",
        service_version="0.1.0",
        occurred_at=NOW,
    )
    return StoredLetter(letter, 0, n)


async def test_ops_a_dead_letter_is_replayed_once_unless_forced(store: Store) -> None:
    publish = RecordingPublisher()
    service = ReplayService(store, publish, clock=lambda: NOW)
    letters = [stored(1), stored(2, topic=None)]

    first = await service.replay(letters)
    again = await service.replay(letters[:1])
    dry = await service.replay(letters[:1], dry_run=True)
    forced = await service.replay(letters[:1], corrected=b'{"fixed": true}', force=True)

    assert [r.outcome for r in first] == ["replayed", "not_replayable"]
    assert [r.outcome for r in again + dry + forced] == [
        "already_replayed",
        "already_replayed",
        "replayed",
    ]
    assert [(topic, key, value) for topic, key, value, _ in publish.sent] == [
        (INTAKE_ITEMS, b"ref:200000001", b'{"bad": true}'),
        (INTAKE_ITEMS, b"ref:200000001", b'{"fixed": true}'),
    ]
    assert publish.sent[0][3][REPLAY_HEADER] == "router:intake.items.v1/0@1"
    assert await StoreViews(store).replayed() == {"router:intake.items.v1/0@1": 2}


async def test_ops_a_failed_publish_leaves_no_replay_marker(store: Store) -> None:
    publish = RecordingPublisher()
    publish.fail = True
    service = ReplayService(store, publish, clock=lambda: NOW)
    with pytest.raises(ConnectionError):
        await service.replay([stored(1)])
    assert await StoreViews(store).replayed() == {}
    publish.fail = False
    assert [r.outcome for r in await service.replay([stored(1)])] == ["replayed"]


async def test_ops_a_corrected_payload_applies_to_one_letter(store: Store) -> None:
    service = ReplayService(store, RecordingPublisher())
    with pytest.raises(ValueError, match="exactly one"):
        await service.replay([stored(1), stored(2)], corrected=b"{}")


async def _insert_dossiers(store: Store) -> None:
    rows = [
        ("D1", "billing", "open"),
        ("D2", "billing", "open"),
        ("D3", "field_ops", "open"),
        ("D4", "billing", "closed"),
    ]
    async with store.transaction() as connection:
        await connection.execute(
            dossiers.insert(),
            [
                {
                    "dossier_id": dossier_id,
                    "dossier_type": "FACTURE",
                    "kind": "reclamation",
                    "urgency": "normale",
                    "service": service,
                    "channel": "email",
                    "status": status,
                    "item_id": f"item-{dossier_id}",
                    "contact_date": NOW,
                    "opened_at": NOW,
                }
                for dossier_id, service, status in rows
            ],
        )


async def test_ops_store_views_count_dossiers_and_sla_deadlines(store: Store) -> None:
    await _insert_dossiers(store)
    views = StoreViews(store)
    assert await views.open_dossiers() == {"billing": 2, "field_ops": 1}
    assert await views.deadlines(NOW, dt.timedelta(days=1)) == DeadlineCounts(0, 0, 0)

    hours = dt.timedelta(hours=1)
    rows = [  # sla_watch's summary: holding_mail_at is cleared once the mail went out
        ("far", "running", NOW + 90 * hours, NOW + 60 * hours),
        ("risky", "running", NOW + 30 * hours, NOW + 6 * hours),
        ("warned", "running", NOW + 20 * hours, None),
        ("late", "running", NOW - hours, None),
        ("paused", "paused", None, None),
        ("answered", "met", NOW + 5 * hours, None),
        ("closed", "closed", NOW - 90 * hours, None),
    ]
    async with store.transaction() as connection:
        await connection.execute(
            sla_dossiers.insert(),
            [
                {
                    "dossier_id": name,
                    "events": "[]",
                    "status": status,
                    "due_at": due,
                    "holding_mail_at": holding,
                    "updated_at": NOW,
                }
                for name, status, due, holding in rows
            ],
        )
    counts = await views.deadlines(NOW, dt.timedelta(hours=24))
    assert counts == DeadlineCounts(open=5, at_risk=1, breached=1)


async def test_ops_store_views_answer_none_before_the_migrations(tmp_path: Path) -> None:
    bare = create_store(f"sqlite+aiosqlite:///{tmp_path / 'bare.db'}")
    try:
        views = StoreViews(bare)
        assert await views.open_dossiers() is None
        assert await views.replayed() is None
        assert await views.deadlines(NOW, dt.timedelta(days=1)) is None
        assert await views.outbox(NOW) is None
    finally:
        await bare.dispose()


async def test_ops_store_views_count_pending_and_parked_outbox_rows(store: Store) -> None:
    views = StoreViews(store)
    assert await views.outbox(NOW) == OutboxCounts(pending=0, parked=0, oldest_pending_age=None)

    minutes = dt.timedelta(minutes=1)
    message = OutboxMessage(topic=INTAKE_ITEMS, key="ref:200000001", payload="{}")
    async with store.transaction() as connection:
        oldest = await add_to_outbox(connection, [message, message], NOW - 7 * minutes)
        await add_to_outbox(connection, [message], NOW - 2 * minutes)
        await add_to_outbox(connection, [message], NOW + minutes)  # a clock slightly ahead
        legacy = await add_to_outbox(connection, [message], NOW - 60 * minutes)
        await connection.execute(
            outbox.update().where(outbox.c.id == legacy[0]).values(published_at=NOW)
        )
    assert await views.outbox(NOW) == OutboxCounts(
        pending=4, parked=0, oldest_pending_age=7 * minutes
    )

    async with store.transaction() as connection:  # as the relay parks a row too large
        await connection.execute(
            outbox.update()
            .where(outbox.c.id.in_(oldest))
            .values(parked_at=NOW - minutes, parked_reason="MessageSizeTooLargeError")
        )
    assert await views.outbox(NOW) == OutboxCounts(
        pending=2, parked=2, oldest_pending_age=2 * minutes
    )
    later = await views.outbox(NOW + 10 * minutes)
    assert later is not None
    assert later.oldest_pending_age == 12 * minutes

    async with store.transaction() as connection:  # the relay published the rest
        await connection.execute(outbox.delete().where(outbox.c.parked_at.is_(None)))
    assert await views.outbox(NOW) == OutboxCounts(pending=0, parked=2, oldest_pending_age=None)


async def test_ops_store_views_give_no_outbox_counts_before_rows_can_be_parked(
    tmp_path: Path,
) -> None:
    old = create_store(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        async with old.transaction() as connection:  # the outbox as migration 0001 made it
            await connection.execute(
                sa.text(
                    "CREATE TABLE outbox (id INTEGER PRIMARY KEY, topic VARCHAR(200) NOT NULL,"
                    " key VARCHAR(300), payload TEXT NOT NULL, created_at DATETIME NOT NULL,"
                    " published_at DATETIME)"
                )
            )
        assert await StoreViews(old).outbox(NOW) is None
    finally:
        await old.dispose()
