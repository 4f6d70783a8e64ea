"""The holding-mail sender's batch path on both store backends, with a scripted mailer.

One batch is claimed in one transaction, sent concurrently (bounded), and
recorded in one transaction: sent mails with their events in the outbox,
refusals as outbound calls, 4xx back to the queue with a backoff, unknown
outcomes left to the lease, and nothing recorded for a mail whose claim was
taken over. Each transaction's outbox rows are published by id after its
commit. The SMTP and multi-process sides are in tests/integration/sla_watch/.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import KafkaBroker

from schemas.dossiers import DossierEventAdapter
from schemas.topics import DOSSIER_EVENTS, OUTBOUND_CONTACTS, task_topic
from services.common.outbox import OutboxRelay
from services.common.store import Store
from services.common.store.tables import outbox
from services.sla_watch.adapters.composer import MailComposer
from services.sla_watch.adapters.tables import sla_actions, sla_dossiers
from services.sla_watch.domain import SlaPolicy
from services.sla_watch.errors import (
    MailDeferred,
    MailError,
    MailRejected,
    MailUncertain,
    UnprocessableDossier,
)
from services.sla_watch.sender import HoldingMailSender, SenderOptions
from services.sla_watch.service import SlaWatchService
from services.sla_watch.testing import ScriptedMailer, opened, paris, replied

MONDAY = paris("2026-06-08", 10)
HOLDING_TIME = paris("2026-06-12", 10)  # one working day before a Monday letter's deadline


class _Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at


class _KeptOutbox(OutboxRelay):
    """Leaves the outbox rows where they are, for the test to read; records what each
    flush was asked to publish (None: the sweep of every pending row)."""

    def __init__(self, store: Store, broker: KafkaBroker) -> None:
        super().__init__(store, broker)
        self.flushes: list[list[int] | None] = []

    async def flush(self, ids: Collection[int] | None = None) -> int:
        self.flushes.append(None if ids is None else sorted(ids))
        return 0


@dataclass
class Rig:
    store: Store
    service: SlaWatchService
    relay: _KeptOutbox

    def sender(
        self,
        mailer: ScriptedMailer,
        *,
        batch: int,
        concurrency: int,
        record_within: dt.timedelta = dt.timedelta(seconds=5),
    ) -> HoldingMailSender:
        options = SenderOptions(
            envelope_sender="service.client@eau.example",
            apology_types=frozenset(),
            batch_size=batch,
            concurrency=concurrency,
            lease=dt.timedelta(seconds=30),
            smtp_timeout=dt.timedelta(seconds=2),
            record_within=record_within,
        )
        composer = MailComposer(mail_from="Service Client <service.client@eau.example>")
        return HoldingMailSender(self.store, self.service, mailer, composer, options)

    async def queue(self, count: int) -> list[str]:
        """Open ``count`` letters on Monday and let their holding mails fall due."""
        ids = [f"D{n}" for n in range(count)]
        assert isinstance(self.service.clock, _Clock)
        self.service.clock.at = MONDAY
        for dossier_id in ids:
            await self.service.record(opened(dossier_id, MONDAY, email=address(dossier_id)))
        self.service.clock.at = HOLDING_TIME
        while await self.service.tick():
            pass
        return ids

    async def ledger(self) -> dict[str, sa.Row[tuple[object, ...]]]:
        async with self.store.engine.connect() as connection:
            rows = (await connection.execute(sa.select(sla_actions))).all()
        return {str(row.dossier_id): row for row in rows if row.kind == "holding_mail"}

    async def outbox_ids(self) -> list[int]:
        async with self.store.engine.connect() as connection:
            query = sa.select(outbox.c.id).order_by(outbox.c.id)
            return [int(i) for i in (await connection.execute(query)).scalars().all()]

    async def published(self, topic: str) -> list[str]:
        query = sa.select(outbox.c.payload).where(outbox.c.topic == topic).order_by(outbox.c.id)
        async with self.store.engine.connect() as connection:
            return [str(p) for p in (await connection.execute(query)).scalars().all()]

    async def mailed(self) -> dict[str, str]:
        """Dossier id → medium of each ``HoldingMailSent`` in the outbox."""
        events = [
            DossierEventAdapter.validate_json(p) for p in await self.published(DOSSIER_EVENTS)
        ]
        return {e.dossier_id: e.medium for e in events if e.type == "holding_mail_sent"}


def address(dossier_id: str) -> str:
    return f"{dossier_id.lower()}@example.test"


def utc(value: object) -> dt.datetime:
    """A stored instant, aware (SQLite hands back naive UTC)."""
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@pytest.fixture
def rig(store: Store) -> Rig:
    relay = _KeptOutbox(store, KafkaBroker())
    clock = _Clock(MONDAY)
    service = SlaWatchService(
        store, relay, policy=SlaPolicy(), clock=clock, mail_domain="eau.example"
    )
    return Rig(store, service, relay)


async def test_sla_sender_claims_a_batch_sends_it_concurrently_and_records_it(rig: Rig) -> None:
    ids = await rig.queue(6)
    claims: list[set[tuple[object, ...]]] = []

    async def look(_recipient: str) -> None:  # mid-send: every mail of the batch is claimed
        rows = (await rig.ledger()).values()
        claims.append({(row.status, row.claim_token) for row in rows})

    mailer = ScriptedMailer(during=look)
    sender = rig.sender(mailer, batch=6, concurrency=3)
    assert await sender.run_once() == 6
    assert mailer.most_in_flight == 3
    ((status, token),) = claims[0]  # one claim token for the whole batch, committed first
    assert status == "sending"
    assert token is not None
    ledger = await rig.ledger()
    assert {(row.status, row.medium, row.claim_token) for row in ledger.values()} == {
        ("sent", "email", token)
    }
    assert sorted(str(m["X-Aiguillage-Dossier"]) for m in mailer.parsed()) == ids
    assert {str(m["Message-ID"]) for m in mailer.parsed()} == {
        str(row.message_id) for row in ledger.values()
    }
    assert await rig.mailed() == dict.fromkeys(ids, "email")
    assert len(await rig.published(OUTBOUND_CONTACTS)) == 6
    assert await sender.run_once() == 0  # idle: the loop may sleep
    assert len(mailer.sent) == 6


async def test_sla_one_batch_records_each_outcome_by_what_it_means(rig: Rig) -> None:
    await rig.queue(4)
    failures: dict[str, MailError] = {
        address("D0"): MailRejected("550"),
        address("D1"): MailDeferred("451"),
        address("D2"): MailUncertain("ConnectionResetError"),
    }
    sender = rig.sender(ScriptedMailer(failures), batch=10, concurrency=4)
    before = dt.datetime.now(dt.UTC)
    assert await sender.run_once() == 4
    ledger = await rig.ledger()
    assert (ledger["D0"].status, ledger["D0"].medium, ledger["D0"].last_error) == (
        "sent",
        "outbound_call",
        "550",
    )
    deferred = ledger["D1"]
    assert (deferred.status, deferred.claim_token, deferred.last_error) == ("pending", None, "451")
    assert utc(deferred.available_at) >= before + dt.timedelta(seconds=10)  # backoff, real time
    unknown = ledger["D2"]  # the server may have it: left to the lease, then resent
    assert (unknown.status, unknown.uncertain) == ("sending", 0)
    assert utc(unknown.available_at) > dt.datetime.now(dt.UTC)
    assert (ledger["D3"].status, ledger["D3"].medium) == ("sent", "email")
    assert await rig.mailed() == {"D0": "outbound_call", "D3": "email"}
    (call,) = await rig.published(task_topic("customer_service"))
    assert '"D0"' in call
    assert "outbound_call" in call


async def test_sla_a_claim_taken_over_mid_send_is_not_recorded_by_the_first_sender(
    rig: Rig,
) -> None:
    await rig.queue(2)

    async def take_over(recipient: str) -> None:  # D1's lease lapsed; another instance has it
        if recipient == address("D1"):
            async with rig.store.transaction() as connection:
                await connection.execute(
                    sla_actions.update()
                    .where(sla_actions.c.dossier_id == "D1")
                    .values(claim_token="another-instance")
                )

    sender = rig.sender(ScriptedMailer(during=take_over), batch=2, concurrency=2)
    assert await sender.run_once() == 2
    ledger = await rig.ledger()
    assert (ledger["D0"].status, ledger["D1"].status) == ("sent", "sending")
    assert ledger["D1"].claim_token == "another-instance"
    assert await rig.mailed() == {"D0": "email"}  # the other instance records D1


async def test_sla_stopping_mid_batch_records_what_went_out_and_releases_the_rest(
    rig: Rig,
) -> None:
    await rig.queue(4)
    senders: list[HoldingMailSender] = []

    async def stop(_recipient: str) -> None:
        senders[0].stop()

    mailer = ScriptedMailer(during=stop)
    senders.append(rig.sender(mailer, batch=4, concurrency=1))
    assert await senders[0].run_once() == 4
    assert len(mailer.sent) == 1
    ledger = await rig.ledger()
    statuses = sorted((row.status, row.claim_token is None) for row in ledger.values())
    assert statuses == [("pending", True)] * 3 + [("sent", False)]
    now = dt.datetime.now(dt.UTC)
    assert all(utc(row.available_at) <= now for row in ledger.values() if row.status == "pending")
    assert len(await rig.mailed()) == 1


async def test_sla_two_lanes_of_one_sender_send_each_mail_once(rig: Rig) -> None:
    ids = await rig.queue(7)
    mailer = ScriptedMailer()
    sender = rig.sender(mailer, batch=3, concurrency=2)
    taken = await asyncio.gather(*(sender.run_once() for _ in range(4)))
    while await sender.run_once():
        pass
    assert sum(taken) <= 7
    assert mailer.most_in_flight <= 2  # the lanes share the connections' slots
    assert sorted(str(m["X-Aiguillage-Dossier"]) for m in mailer.parsed()) == ids
    assert {row.status for row in (await rig.ledger()).values()} == {"sent"}
    assert sorted(await rig.mailed()) == ids


async def test_sla_a_reply_folded_in_while_the_mail_is_on_the_wire_is_kept(rig: Rig) -> None:
    await rig.queue(1)

    async def reply(_recipient: str) -> None:  # too late to stop the mail, not to be recorded
        await rig.service.record(replied("D0", HOLDING_TIME))

    assert await rig.sender(ScriptedMailer(during=reply), batch=5, concurrency=1).run_once() == 1
    async with rig.store.transaction() as connection:
        stored = await rig.service.repository(connection).load("D0", lock=False)
    assert stored is not None
    types = [event.type for event in stored.events()]
    assert types[-2:] == ["reply_sent", "holding_mail_sent"]
    assert await rig.mailed() == {"D0": "email"}


async def test_sla_a_slow_send_does_not_keep_its_batch_unrecorded(rig: Rig) -> None:
    await rig.queue(3)
    seen_while_slow: list[set[tuple[str, str]]] = []

    async def slow(recipient: str) -> None:  # D2's server answers late
        if recipient == address("D2"):
            await asyncio.sleep(0.5)
            ledger = await rig.ledger()
            seen_while_slow.append({(dossier, str(row.status)) for dossier, row in ledger.items()})

    mailer = ScriptedMailer(during=slow)
    within = dt.timedelta(milliseconds=50)
    assert await rig.sender(mailer, batch=3, concurrency=3, record_within=within).run_once() == 3
    assert seen_while_slow == [{("D0", "sent"), ("D1", "sent"), ("D2", "sending")}]
    assert await rig.mailed() == dict.fromkeys(["D0", "D1", "D2"], "email")


async def test_sla_each_transaction_publishes_the_rows_it_wrote_by_id(rig: Rig) -> None:
    """The deadlines set (``record``) and the mails sent (the sender) are published by
    their outbox row ids after each commit, never by a scan of the whole queue."""
    await rig.queue(3)
    recorded = await rig.outbox_ids()
    assert len(recorded) == 3  # one DeadlineSet per letter
    assert rig.relay.flushes == [[row] for row in recorded]  # each record() its own row
    rig.relay.flushes.clear()
    assert await rig.sender(ScriptedMailer(), batch=3, concurrency=3).run_once() == 3
    sent = [row for row in await rig.outbox_ids() if row not in recorded]
    assert len(sent) == 6  # HoldingMailSent and OutboundContact per mail
    assert rig.relay.flushes == [sent]


class _BrokerDown(_KeptOutbox):
    async def flush(self, ids: Collection[int] | None = None) -> int:
        await super().flush(ids)
        raise KafkaConnectionError("broker down")


async def test_sla_a_broker_outage_after_the_commit_hides_nothing_and_loses_nothing(
    store: Store,
) -> None:
    """The rows are committed: a failed publication is the sweep's, not the caller's error.
    A batch whose send hit a bug still ends with that bug, not with the broker's error."""
    relay = _BrokerDown(store, KafkaBroker())
    service = SlaWatchService(
        store, relay, policy=SlaPolicy(), clock=_Clock(MONDAY), mail_domain="eau.example"
    )
    broken = Rig(store, service, relay)
    await broken.queue(3)  # record() commits and returns although publication fails
    recorded = await broken.outbox_ids()
    assert len(recorded) == 3

    async def bug(recipient: str) -> None:
        if recipient == address("D1"):
            raise RuntimeError("a bug in the send path")

    sender = broken.sender(ScriptedMailer(during=bug), batch=3, concurrency=3)
    with pytest.raises(RuntimeError, match="a bug in the send path"):
        await sender.run_once()
    assert await broken.mailed() == {"D0": "email", "D2": "email"}  # recorded all the same
    assert len(await broken.outbox_ids()) == 3 + 4  # every row kept for the sweep


async def test_sla_an_unreadable_dossier_is_parked_and_the_queue_goes_on(rig: Rig) -> None:
    """Stored events that no longer validate (a contract value dropped by a release) used
    to fail every claim: the sender crashed, restarted, and no other mail went out."""
    await rig.queue(3)
    async with rig.store.transaction() as connection:
        events = await connection.scalar(
            sa.select(sla_dossiers.c.events).where(sla_dossiers.c.dossier_id == "D1")
        )
        drifted = str(events).replace('"channel":"letter"', '"channel":"pigeon"')
        await connection.execute(
            sla_dossiers.update().where(sla_dossiers.c.dossier_id == "D1").values(events=drifted)
        )
    mailer = ScriptedMailer()

    assert await rig.sender(mailer, batch=10, concurrency=2).run_once() == 3

    assert sorted(str(m["X-Aiguillage-Dossier"]) for m in mailer.parsed()) == ["D0", "D2"]
    ledger = await rig.ledger()
    assert (ledger["D1"].status, ledger["D1"].last_error) == ("parked", "unreadable_dossier")
    async with rig.store.engine.connect() as connection:
        parked = await connection.scalar(
            sa.select(sla_dossiers.c.parked_reason).where(sla_dossiers.c.dossier_id == "D1")
        )
    assert parked == "ValidationError"
    assert await rig.sender(mailer, batch=10, concurrency=2).run_once() == 0


async def test_sla_an_address_no_mail_can_carry_becomes_a_call(rig: Rig) -> None:
    """A line break in the reply address used to crash the sender at each claim (the
    composer's ValueError) until the lease gave up on it, minutes later."""
    rig.service.clock.at = MONDAY  # type: ignore[attr-defined]
    await rig.service.record(opened("D-BAD", MONDAY, email="a@example.test\r\nBcc: x@example.test"))
    rig.service.clock.at = HOLDING_TIME  # type: ignore[attr-defined]
    while await rig.service.tick():
        pass
    mailer = ScriptedMailer()

    assert await rig.sender(mailer, batch=10, concurrency=2).run_once() == 1

    assert mailer.sent == []
    ledger = await rig.ledger()
    assert (ledger["D-BAD"].status, ledger["D-BAD"].medium, ledger["D-BAD"].last_error) == (
        "sent",
        "outbound_call",
        "unsendable",
    )
    assert await rig.mailed() == {"D-BAD": "outbound_call"}


async def test_sla_a_date_the_calendar_cannot_reach_is_poison_not_an_endless_retry(
    rig: Rig,
) -> None:
    """An OverflowError (a contact dated 9999) escaped as a bug: the batch was NACKed and
    redelivered for ever. It is an unprocessable dossier, for the DLQ."""
    far = dt.datetime(9999, 12, 30, 10, tzinfo=dt.UTC)
    with pytest.raises(UnprocessableDossier):
        await rig.service.record(opened("D-FAR", far))


async def test_sla_a_mail_deferred_until_its_deadline_becomes_a_call(rig: Rig) -> None:
    """A server that answers 4xx (or refuses our login) until the deadline: the mail used
    to be dropped quietly, and the customer got no holding contact at all (4.12)."""
    await rig.queue(1)
    mailer = ScriptedMailer({address("D0"): MailDeferred("421")})
    assert await rig.sender(mailer, batch=10, concurrency=1).run_once() == 1
    assert (await rig.ledger())["D0"].status == "pending"
    rig.service.clock.at = paris("2026-06-15", 10, 5)  # type: ignore[attr-defined]
    async with rig.store.transaction() as connection:  # the backoff has run out
        await connection.execute(sla_actions.update().values(available_at=dt.datetime.now(dt.UTC)))

    assert await rig.sender(mailer, batch=10, concurrency=1).run_once() == 1

    assert mailer.sent == []
    ledger = await rig.ledger()
    assert (ledger["D0"].status, ledger["D0"].medium, ledger["D0"].last_error) == (
        "sent",
        "outbound_call",
        "deferred_too_late",
    )
    assert await rig.mailed() == {"D0": "outbound_call"}
    (call,) = await rig.published(task_topic("customer_service"))
    assert "outbound_call" in call


async def test_sla_a_mail_that_may_have_gone_is_not_doubled_by_a_call(rig: Rig) -> None:
    """A send with an unknown outcome may have reached the customer: past the deadline it
    is dropped, not replaced by a call on top of it."""
    await rig.queue(1)
    mailer = ScriptedMailer({address("D0"): MailUncertain("ConnectionResetError")})
    assert await rig.sender(mailer, batch=10, concurrency=1).run_once() == 1
    rig.service.clock.at = paris("2026-06-15", 10, 5)  # type: ignore[attr-defined]
    async with rig.store.transaction() as connection:  # the lease has lapsed
        await connection.execute(sla_actions.update().values(available_at=dt.datetime.now(dt.UTC)))

    await rig.sender(mailer, batch=10, concurrency=1).run_once()

    assert await rig.ledger() == {}
    assert await rig.published(task_topic("customer_service")) == []
