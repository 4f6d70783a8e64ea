"""Each holding mail goes out once: with two sla_watch processes, and across a SIGKILL mid-send.

The SMTP sink can hold a transaction at a chosen point, so the crash lands
where the test says: before the server has the message (it must be sent
after the restart, once), or after the server accepted it but before the
service heard back (the documented residual risk: the identical message,
same Message-ID, goes out a second time).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from email.message import EmailMessage

import pytest

from schemas.dossiers import DossierEventAdapter
from schemas.topics import DOSSIER_EVENTS
from services.common.testing import SmtpSink, eventually, produce, read_topic
from services.sla_watch.domain import PARIS
from services.sla_watch.testing import GatedSmtpSink, SlaRig, encode, opened

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.smtp, pytest.mark.timeout(60)]

MONDAY = dt.datetime(2026, 6, 8, 10, 0, tzinfo=PARIS)
HOLDING_TIME = dt.datetime(2026, 6, 12, 10, 0, tzinfo=PARIS)  # one working day before the due date


def _smtp(sink: SmtpSink | GatedSmtpSink) -> dict[str, str]:
    return {"SLA_WATCH_SMTP_HOST": sink.host, "SLA_WATCH_SMTP_PORT": str(sink.port)}


async def _open_dossiers(rig: SlaRig, kafka: str, count: int) -> list[str]:
    ids = [f"D-{n:02d}" for n in range(count)]
    await produce(kafka, DOSSIER_EVENTS, [encode(opened(d, MONDAY)) for d in ids])

    async def stored() -> bool:
        return await rig.dossiers() == count

    await eventually(stored, timeout=30)
    return ids


def _received(sink: SmtpSink | GatedSmtpSink, count: int) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return len(sink.messages) >= count

    return probe


def _dossiers_mailed(mails: list[EmailMessage]) -> list[str]:
    return sorted(str(mail["X-Aiguillage-Dossier"]) for mail in mails)


async def _holding_events(kafka: str) -> set[str]:
    values = await read_topic(kafka, DOSSIER_EVENTS, quiet_s=1.0)
    events = [DossierEventAdapter.validate_json(value) for value in values]
    return {event.event_id for event in events if event.type == "holding_mail_sent"}


async def test_sla_two_processes_send_each_holding_mail_once(rig: SlaRig, kafka: str) -> None:
    sink = SmtpSink().start()
    try:
        first = rig.start("sla-a", SLA_WATCH_MAIL_BATCH_SIZE="2", **_smtp(sink))
        second = rig.start("sla-b", SLA_WATCH_MAIL_BATCH_SIZE="2", **_smtp(sink))
        ids = await _open_dossiers(rig, kafka, 24)
        rig.clock.set(HOLDING_TIME)
        await eventually(_received(sink, len(ids)), timeout=20)
        await asyncio.sleep(1.5)  # several more rounds of both schedulers and senders
    finally:
        sink.stop()
    mails = sink.parsed()
    assert _dossiers_mailed(mails) == ids
    assert len({mail["Message-ID"] for mail in mails}) == len(ids)
    assert {row.status for row in await rig.ledger()} == {"sent"}
    assert len(await _holding_events(kafka)) == len(ids)
    # Every send was recorded by exactly one of the two (usually both take part).
    both = [p.output().count('"holding_mail.sent"') for p in (first, second)]
    assert sum(both) == len(ids), both


async def test_sla_sigkill_mid_send_then_restart_sends_each_mail_once(
    rig: SlaRig, kafka: str
) -> None:
    sink = GatedSmtpSink(accept=3, hold="rcpt").start()  # the 4th transaction waits at RCPT
    try:
        # One sender lane: batches one after the other, so the crash lands on a known batch.
        victim = rig.start(
            "sla-victim", SLA_WATCH_MAIL_BATCH_SIZE="3", SLA_WATCH_SENDER_LANES="1", **_smtp(sink)
        )
        ids = await _open_dossiers(rig, kafka, 8)
        rig.clock.set(HOLDING_TIME)
        assert await asyncio.to_thread(sink.held.wait, 20)
        victim.kill()  # SIGKILL while the 2nd batch (mails 4-6) is at RCPT, two still queued
        sink.accept = None
        sink.released.set()
        assert len(sink.messages) == 3
        rig.start("sla-restarted", **_smtp(sink))
        await eventually(_received(sink, len(ids)), timeout=25)
        await asyncio.sleep(1.5)
    finally:
        sink.stop()
    mails = sink.parsed()
    assert _dossiers_mailed(mails) == ids  # none missed, none twice
    ledger = await rig.ledger()
    assert {row.status for row in ledger} == {"sent"}
    recovered = [row.action_id for row in ledger if row.uncertain]
    assert len(recovered) == 3  # the claimed batch: resent after its lease lapsed
    assert len(await _holding_events(kafka)) == len(ids)


async def test_sla_crash_after_the_server_accepted_resends_the_identical_message(
    rig: SlaRig, kafka: str
) -> None:
    """The residual risk, pinned down: SMTP accepted, the service died before recording it."""
    sink = GatedSmtpSink(accept=0, hold="reply").start()  # stores the mail, withholds the 250
    try:
        victim = rig.start("sla-victim", **_smtp(sink))
        await _open_dossiers(rig, kafka, 1)
        rig.clock.set(HOLDING_TIME)
        assert await asyncio.to_thread(sink.held.wait, 20)
        victim.kill()
        sink.accept = None
        sink.released.set()
        rig.start("sla-restarted", **_smtp(sink))
        await eventually(_received(sink, 2), timeout=25)
        await asyncio.sleep(1.0)
    finally:
        sink.stop()
    first, again = sink.parsed()
    assert first["Message-ID"] == again["Message-ID"]  # receivers can tell it is the same mail
    assert first.get_content() == again.get_content()
    (row,) = await rig.ledger()
    assert (row.status, row.uncertain) == ("sent", 1)
    assert len(await _holding_events(kafka)) == 1
