"""Acknowledgements sent by batch: one claim and one record per batch, a few connections at once.

Issue 4 (throughput) and procedure 4.12 NB: the batch is claimed in one
transaction, sent over up to ``concurrency`` sessions, recorded in one
transaction; still one acknowledgement per item; interrupted, the rows never
started go back to pending and only the one under way stays claimed. The
outbox rows of a batch are published by id once it is done.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence

import pytest
import sqlalchemy as sa
from faststream.kafka import KafkaBroker

from services.common.outbox import OutboxRelay
from services.common.store import Store
from services.common.store.tables import outbox
from services.intake_mail.acknowledgement_mail import AcknowledgementRenderer
from services.intake_mail.acknowledgements import Acknowledger
from services.intake_mail.adapters.tables import mail_acknowledgements
from services.intake_mail.harness import FROM, Harness
from services.intake_mail.testing import RecordingMailer, form_mail


async def _statuses(harness: Harness) -> list[str]:
    async with harness.store.engine.connect() as connection:
        return list((await connection.scalars(sa.select(mail_acknowledgements.c.status))).all())


async def _outbox_ids(harness: Harness) -> list[int]:
    async with harness.store.engine.connect() as connection:
        return list((await connection.scalars(sa.select(outbox.c.id).order_by(outbox.c.id))).all())


class KeptOutbox(OutboxRelay):
    """Leaves the rows in the outbox; records what each flush was asked to publish
    (None: the sweep of every pending row)."""

    def __init__(self, store: Store) -> None:
        super().__init__(store, KafkaBroker("in-memory:9092"))
        self.flushes: list[list[int] | None] = []

    async def flush(self, ids: Collection[int] | None = None) -> int:
        self.flushes.append(None if ids is None else sorted(ids))
        return 0


async def _pending(harness: Harness, mails: Sequence[bytes]) -> None:
    """File ``mails`` with the relay down: their acknowledgements wait, pending."""
    harness.mailer.unreachable = True
    harness.drop(*mails)
    await harness.loop.drain(await harness.source.open())
    assert await _statuses(harness) == ["pending"] * len(mails)
    harness.mailer.unreachable = False


async def test_a_batch_goes_out_over_a_few_sessions_once_per_item(harness: Harness) -> None:
    await _pending(harness, [form_mail(n) for n in range(6)])
    results = await harness.acknowledger.send_due()
    assert [result.status for result in results] == ["sent"] * 6
    assert harness.mailer.sessions == 4, "the default concurrency"
    assert Counter(recipient for _, recipient, _ in harness.mailer.sent) == {
        f"client.form{n}@example.test": 1 for n in range(6)
    }
    assert set(await _statuses(harness)) == {"sent"}
    assert len({contact.contact_id for contact in harness.contacts}) == 6
    assert await harness.acknowledger.send_due() == []


class Exploding(RecordingMailer):
    """Its second send fails with an error nobody expects (a bug, a cancellation…)."""

    async def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        if len(self.sent) == 1:
            raise RuntimeError("unexpected")
        await super().send(envelope_from, recipient, message)


async def test_an_interrupted_batch_releases_what_it_never_started(harness: Harness) -> None:
    await _pending(harness, [form_mail(n) for n in range(4)])
    mailer = Exploding()
    acknowledger = Acknowledger(
        harness.store,
        mailer,
        AcknowledgementRenderer(FROM),
        OutboxRelay(harness.store, KafkaBroker("in-memory:9092")),
        concurrency=1,
        clock=harness.clock,
    )
    with pytest.raises(RuntimeError, match="unexpected"):
        await acknowledger.send_due()
    statuses = Counter(await _statuses(harness))
    # sent and recorded; under way when it failed (never resent); never started.
    assert statuses == {"sent": 1, "sending": 1, "pending": 2}
    assert len(mailer.sent) == 1


async def test_a_batch_publishes_the_outbox_rows_it_wrote_by_id(harness: Harness) -> None:
    await _pending(harness, [form_mail(n) for n in range(5)])
    relay = KeptOutbox(harness.store)
    acknowledger = Acknowledger(
        harness.store,
        RecordingMailer(),
        AcknowledgementRenderer(FROM),
        relay,
        concurrency=1,
        clock=harness.clock,
    )
    assert len(await acknowledger.send_due()) == 5  # three chunks, three transactions
    written = await _outbox_ids(harness)
    assert len(written) == 5  # one OutboundContact per acknowledgement
    assert relay.flushes == [written]  # by id, together, never a scan of the queue
