"""sla_watch's app on FastStream's in-memory broker, a SQLite store and a real SMTP sink.

The wiring and the whole act-on-what-is-due path in one process: the clock
file is advanced by the test, the scheduler and the sender run for real.
The multi-process and crash guarantees are proven in tests/integration/sla_watch/.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from faststream import TestApp
from faststream.kafka import KafkaBroker, TestKafkaBroker

from schemas import AccountAction, OutboundContact, Task
from schemas.dead_letters import DeadLetter
from schemas.dossiers import DossierEvent
from schemas.topics import (
    ACCOUNT_ACTIONS,
    DEAD_LETTERS,
    DOSSIER_EVENTS,
    OUTBOUND_CONTACTS,
    task_topic,
)
from services.common.store import Store, create_store, migrate
from services.common.testing import SmtpSink, eventually
from services.sla_watch.adapters.tables import sla_actions, sla_dossiers
from services.sla_watch.app import create_app
from services.sla_watch.domain import PARIS
from services.sla_watch.settings import SlaWatchSettings
from services.sla_watch.testing import ClockFile, closed, opened, replied, third_party

pytestmark = [pytest.mark.smtp]

MONDAY = dt.datetime(2026, 6, 8, 10, 0, tzinfo=PARIS)  # a letter is due Monday 15 June 10:00


@dataclass
class Seen:
    events: list[DossierEvent] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    contacts: list[OutboundContact] = field(default_factory=list)
    actions: list[AccountAction] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def types(self, dossier_id: str) -> list[str]:
        return [e.type for e in self.events if e.dossier_id == dossier_id]


@dataclass
class Harness:
    broker: KafkaBroker
    store: Store
    sink: SmtpSink
    clock: ClockFile
    seen: Seen

    async def publish(self, *events: DossierEvent) -> None:
        for event in events:
            await self.broker.publish(event.model_dump(mode="json"), DOSSIER_EVENTS)

    async def ledger(self) -> list[tuple[str, str, str | None]]:
        query = sa.select(sla_actions.c.action_id, sla_actions.c.status, sla_actions.c.medium)
        async with self.store.engine.connect() as connection:
            rows = (await connection.execute(query.order_by(sla_actions.c.action_id))).all()
        return [(r.action_id, r.status, r.medium) for r in rows]


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    store = create_store(url)
    await migrate(store)
    sink = SmtpSink().start()
    clock = ClockFile(tmp_path / "clock", MONDAY)
    settings = SlaWatchSettings.model_validate(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "in-memory:9092",
            "KAFKA_CREATE_TOPICS": "false",
            "DATABASE_URL": url,
            "LOG_FORMAT": "json",
            "smtp_host": sink.host,
            "smtp_port": sink.port,
            "smtp_timeout_s": 2,
            "send_lease_s": 10,
            "mail_from": "Service Client <service.client@eau.example>",
            "clock_file": clock.path,
            "scheduler_interval_s": 0.1,
        }
    )
    app = create_app(settings)
    broker = app.broker
    assert isinstance(broker, KafkaBroker)
    seen = Seen()

    @broker.subscriber(DOSSIER_EVENTS, group_id="test-events")
    async def on_event(event: DossierEvent) -> None:
        seen.events.append(event)

    @broker.subscriber(task_topic("customer_service"), group_id="test-cs")
    @broker.subscriber(task_topic("supervisor"), group_id="test-sup")
    async def on_task(task: Task) -> None:
        seen.tasks.append(task)

    @broker.subscriber(OUTBOUND_CONTACTS, group_id="test-contacts")
    async def on_contact(contact: OutboundContact) -> None:
        seen.contacts.append(contact)

    @broker.subscriber(ACCOUNT_ACTIONS, group_id="test-actions")
    async def on_action(action: AccountAction) -> None:
        seen.actions.append(action)

    @broker.subscriber(DEAD_LETTERS, group_id="test-dlq")
    async def on_dead_letter(letter: DeadLetter) -> None:
        seen.dead_letters.append(letter)

    try:
        async with TestKafkaBroker(broker), TestApp(app):
            yield Harness(broker, store, sink, clock, seen)
    finally:
        sink.stop()
        await store.dispose()


async def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    async def probe() -> bool:
        return condition()

    await eventually(probe, timeout=timeout, interval=0.05)


async def _quiet() -> None:
    """Give the scheduler and the sender a few rounds (they run every 0.1 s)."""
    await asyncio.sleep(0.6)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 6, day, hour, minute, tzinfo=PARIS)


async def test_sla_letter_gets_one_holding_mail_a_working_day_before_its_deadline(
    harness: Harness,
) -> None:
    await harness.publish(opened("D-MAIL", MONDAY))
    await _until(lambda: harness.seen.types("D-MAIL") == ["dossier_opened", "deadline_set"])
    (announced,) = [e for e in harness.seen.events if e.type == "deadline_set"]
    assert announced.model_dump()["holding_mail_at"] == at(12, 10)

    harness.clock.set(at(12, 9, 59))
    await _quiet()
    assert harness.sink.messages == []
    harness.clock.set(at(12, 10))
    await _until(lambda: "holding_mail_sent" in harness.seen.types("D-MAIL"))

    (mail,) = harness.sink.parsed()
    body = mail.get_content().replace("\r\n", "\n")
    assert mail["To"] == "client@example.test"
    assert "D-MAIL" in mail["Subject"]
    assert mail["Message-ID"].endswith("@eau.example>")
    assert "Service Client\nTSA 50001\n36400 La Chatre" in body
    assert "15 juin 2026 à 10 h 00" in body
    assert "excuser" not in body
    assert [(c.purpose, c.medium) for c in harness.seen.contacts] == [("holding_mail", "email")]

    harness.clock.advance(dt.timedelta(hours=1))
    await harness.publish(opened("D-MAIL", MONDAY))  # redelivered: a duplicate
    await _quiet()
    assert len(harness.sink.messages) == 1
    assert await harness.ledger() == [("D-MAIL:5wd:holding_mail", "sent", "email")]


async def test_sla_calls_suspensions_breaches_and_the_dossiers_that_get_nothing(
    harness: Harness,
) -> None:
    complaint = opened(
        "D-COMPLAINT", MONDAY, kind="reclamation", dossier_type="FACTURE", customer_ref="300000007"
    )
    await harness.publish(
        opened("D-CALL", MONDAY, email=None),
        complaint,
        opened("D-REPLIED", MONDAY),
        replied("D-REPLIED", at(9, 15)),
        opened("D-CLOSED", MONDAY),
        closed("D-CLOSED", at(10, 9)),
        opened("D-PAUSED", MONDAY),
        third_party("D-PAUSED", at(8, 11)),
    )
    harness.clock.set(at(8, 19))  # 4.13: the complaint is still open at the end of its day
    await _until(lambda: len(harness.seen.actions) == 1)
    (suspension,) = harness.seen.actions
    assert (suspension.action, suspension.customer_ref) == ("suspend_direct_debit", "300000007")
    assert "direct_debit_suspended" in harness.seen.types("D-COMPLAINT")

    harness.clock.set(at(12, 10))
    await _until(lambda: len(harness.seen.contacts) == 2)
    await _quiet()
    (mail,) = harness.sink.parsed()
    assert "D-COMPLAINT" in mail["Subject"]
    assert "excuser" in mail.get_content()  # a réclamation carries the dysfunction flag (4.11)
    (call,) = harness.seen.tasks
    assert (call.action, call.service, call.dossier_id) == (
        "outbound_call",
        "customer_service",
        "D-CALL",
    )
    assert call.due_at == at(15, 10)
    contacts = sorted((c.dossier_id, c.purpose, c.medium) for c in harness.seen.contacts)
    assert contacts == [
        ("D-CALL", "holding_call", "phone"),
        ("D-COMPLAINT", "holding_mail", "email"),
    ]

    harness.clock.set(at(15, 10))  # the deadlines pass unanswered
    await _until(lambda: len(harness.seen.tasks) == 3)
    breaches = sorted(str(t.dossier_id) for t in harness.seen.tasks if t.action == "sla_breached")
    assert breaches == ["D-CALL", "D-COMPLAINT"]
    assert {t.service for t in harness.seen.tasks if t.action == "sla_breached"} == {"supervisor"}
    await _quiet()
    for quiet in ("D-REPLIED", "D-CLOSED", "D-PAUSED"):
        types = harness.seen.types(quiet)
        assert "holding_mail_sent" not in types, quiet
        assert "sla_breached" not in types, quiet
    assert len(harness.sink.messages) == 1
    assert len(harness.seen.actions) == 1
    assert sorted(await harness.ledger()) == [
        ("D-CALL:5wd:breach", "done", None),
        ("D-CALL:5wd:holding_mail", "sent", "outbound_call"),
        ("D-COMPLAINT:5wd:breach", "done", None),
        ("D-COMPLAINT:5wd:holding_mail", "sent", "email"),
        ("D-COMPLAINT:suspend_direct_debit", "done", None),
    ]


async def test_sla_events_that_arrive_before_their_opening_still_count(
    harness: Harness,
) -> None:
    """The router's outbox may publish a row a failed publication left after later ones:
    a closure, or a third party's answer, can arrive before the opening or the wait it
    ends. They used to be skipped: the closed dossier got its holding mail and breach,
    the answered wait stayed paused for ever."""
    await harness.publish(closed("D-CLOSED-FIRST", at(9, 9)))
    await harness.publish(
        third_party("D-ANSWERED-FIRST", at(10, 9), received=True),
        third_party("D-ANSWERED-FIRST", at(9, 9)),
    )
    await _quiet()
    assert await _statuses(harness) == {
        "D-CLOSED-FIRST": "awaiting_opening",
        "D-ANSWERED-FIRST": "awaiting_opening",
    }

    await harness.publish(opened("D-CLOSED-FIRST", MONDAY), opened("D-ANSWERED-FIRST", MONDAY))
    await _until(lambda: "deadline_set" in harness.seen.types("D-ANSWERED-FIRST"))
    assert await _statuses(harness) == {
        "D-CLOSED-FIRST": "closed",
        "D-ANSWERED-FIRST": "running",
    }
    # one working day of waiting: due Tuesday 16 June, its holding mail the day before
    harness.clock.set(at(15, 10))
    await _until(lambda: "holding_mail_sent" in harness.seen.types("D-ANSWERED-FIRST"))
    harness.clock.set(at(16, 10))
    await _until(lambda: "sla_breached" in harness.seen.types("D-ANSWERED-FIRST"))
    await _quiet()
    assert harness.seen.types("D-CLOSED-FIRST") == ["dossier_closed", "dossier_opened"]
    assert [
        mail["Subject"] for mail in harness.sink.parsed() if "D-CLOSED-FIRST" in mail["Subject"]
    ] == []


async def _statuses(harness: Harness) -> dict[str, str]:
    query = sa.select(sla_dossiers.c.dossier_id, sla_dossiers.c.status)
    async with harness.store.engine.connect() as connection:
        return {r.dossier_id: r.status for r in (await connection.execute(query)).all()}


async def test_sla_a_bad_record_is_dead_lettered_and_the_others_still_folded(
    harness: Harness,
) -> None:
    await harness.broker.publish(b'{"type": "dossier_opened", "dossier_id": 7}', DOSSIER_EVENTS)
    await harness.publish(opened("D-AFTER", MONDAY))
    await _until(lambda: harness.seen.types("D-AFTER") == ["dossier_opened", "deadline_set"])
    # (The test's own spy on the topic dead-letters it too, under the same deterministic id.)
    letters = {(d.dead_letter_id, d.reason_code) for d in harness.seen.dead_letters}
    assert letters == {(f"sla-watch:{DOSSIER_EVENTS}/0@0", "invalid_contract")}
