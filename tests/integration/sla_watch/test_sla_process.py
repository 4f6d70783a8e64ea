"""sla_watch as its own OS process on tansu, PostgreSQL and aiosmtpd, with a clock the test moves.

Holding mails go out once, at the planned time, and never for a dossier that
was answered, closed or is waiting for a third party (procedure 4.12).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

import pytest

from schemas import OutboundContact
from schemas.dossiers import DossierEvent, DossierEventAdapter
from schemas.topics import DOSSIER_EVENTS, OUTBOUND_CONTACTS
from services.common.testing import SmtpSink, eventually, produce, read_topic
from services.sla_watch.domain import PARIS
from services.sla_watch.testing import SlaRig, closed, encode, opened, replied, third_party

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.smtp, pytest.mark.timeout(60)]


MONDAY = dt.datetime(2026, 6, 8, 10, 0, tzinfo=PARIS)  # a letter is due Monday 15 June 10:00


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 6, day, hour, minute, tzinfo=PARIS)


async def test_sla_holding_mail_once_at_the_planned_time_and_never_for_answered_closed_or_paused(
    rig: SlaRig, kafka: str
) -> None:
    sink = SmtpSink().start()
    try:
        rig.start("sla-1", SLA_WATCH_SMTP_HOST=sink.host, SLA_WATCH_SMTP_PORT=str(sink.port))
        events: list[DossierEvent] = [
            opened("D-MAIL", MONDAY),
            opened("D-REPLIED", MONDAY),
            replied("D-REPLIED", at(9, 15)),
            opened("D-CLOSED", MONDAY),
            closed("D-CLOSED", at(10, 9)),
            opened("D-PAUSED", MONDAY),
            third_party("D-PAUSED", at(8, 11)),
        ]
        await produce(kafka, DOSSIER_EVENTS, [encode(e) for e in events])

        async def consumed() -> bool:
            return await rig.consumed() == len(events)

        await eventually(consumed, timeout=30)
        rig.clock.set(at(12, 9, 59))  # one minute before the planned holding mail
        await asyncio.sleep(1.0)
        assert sink.messages == []

        rig.clock.set(at(12, 10))
        await eventually(_count(sink, 1), timeout=15)
        rig.clock.set(at(12, 18))  # later the same day: still one
        await asyncio.sleep(1.5)
    finally:
        sink.stop()
    (mail,) = sink.parsed()
    assert "D-MAIL" in mail["Subject"]
    assert "TSA 50001" in mail.get_content()
    sent = [
        event
        for event in map(DossierEventAdapter.validate_json, await read_topic(kafka, DOSSIER_EVENTS))
        if event.type == "holding_mail_sent"
    ]
    assert {(e.dossier_id, e.event_id) for e in sent} == {("D-MAIL", "D-MAIL:5wd:holding_mail")}
    contacts = [
        OutboundContact.model_validate_json(v)
        for v in await read_topic(kafka, OUTBOUND_CONTACTS, quiet_s=0.5)
    ]
    assert {(c.dossier_id, c.purpose) for c in contacts} == {("D-MAIL", "holding_mail")}
    ledger = [(row.action_id, row.status) for row in await rig.ledger()]
    assert ledger == [("D-MAIL:5wd:holding_mail", "sent")]


def _count(sink: SmtpSink, expected: int) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return len(sink.messages) >= expected

    return probe
