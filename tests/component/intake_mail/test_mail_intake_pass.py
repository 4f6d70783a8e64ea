"""One pass of intake_mail: order of effects, dedupe, quarantine, automatic mail, crash recovery.

Issue 4, "Order of effects" and "Bad input", on the in-memory broker, SQLite
and a Maildir source (the IMAP source runs the same pass in
tests/integration/intake_mail/).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.common.store import Store
from services.intake_mail.adapters.maildir import MaildirSource
from services.intake_mail.adapters.tables import mail_acknowledgements, mail_items, mail_uids
from services.intake_mail.domain import acknowledgement_decision, parse_mail
from services.intake_mail.errors import AcknowledgementNotSent, MailboxUnavailable
from services.intake_mail.harness import OWN, Harness
from services.intake_mail.mailbox import MailboxLoop
from services.intake_mail.ports import FetchedMail, FolderState
from services.intake_mail.testing import form_mail, normalised_hash, plain_mail

CORPUS = Path(__file__).resolve().parents[2] / "data" / "mail"


def corpus(name: str) -> bytes:
    """One mail of the corpus."""
    return (CORPUS / name).read_bytes()


async def rows(store: Store, table: sa.Table) -> list[Any]:
    """Every row of a table."""
    async with store.engine.connect() as connection:
        return list((await connection.execute(sa.select(table))).all())


class MoveFails(MaildirSource):
    """A source whose moves fail like a connection lost at that very moment."""

    async def move(self, uids: Sequence[str], folder: str) -> None:
        raise MailboxUnavailable("connection lost before the move")


def crashing_source(harness: Harness) -> MoveFails:
    """The harness's Maildir, read through a source that cannot move."""
    return MoveFails(harness.root, account="maildir:test", folders=("Traités",))


async def test_a_batch_is_published_dead_lettered_filed_and_acknowledged(
    harness: Harness,
) -> None:
    customers = [
        form_mail(1), plain_mail(2), corpus("rfc2231_attachment_name.eml"),
        corpus("own_address_loop.eml"),
    ]  # fmt: skip
    automatic = [corpus("auto_reply_out_of_office.eml"), corpus("bounce_dsn.eml")]
    bad = [corpus("not_a_mail.eml"), corpus("no_from.eml")]
    harness.drop(*customers, *automatic, *bad)
    state = await harness.source.open()
    assert await harness.loop.drain(state) == 8
    assert harness.loop.passes == 2  # batches of 5

    assert len(harness.items) == 4
    assert sorted(d.reason_code for d in harness.dead_letters) == [
        "no_usable_sender",
        "unparseable_mime",
    ]
    assert all(d.payload_b64 for d in harness.dead_letters)
    assert {d.service for d in harness.dead_letters} == {"intake-mail"}
    assert harness.inbox() == 0
    assert len(harness.folder("Traités")) == 4
    assert len(harness.folder("Automatiques")) == 2
    assert len(harness.folder("Quarantaine")) == 2
    # Three customers acknowledged; our own copy is an item, never acknowledged.
    decisions = [
        acknowledgement_decision(parse_mail(raw, max_bytes=10**6), OWN) for raw in customers
    ]
    expected = sorted(d.recipient or "" for d in decisions if d.send)
    assert len(expected) == 3
    assert sorted(recipient for _, recipient, _ in harness.mailer.sent) == expected
    assert len(harness.contacts) == 3
    assert {c.item_id for c in harness.contacts} <= {item.item_id for item in harness.items}
    (with_file,) = [item for item in harness.items if item.attachments]
    sha = with_file.attachments[0].sha256
    assert (harness.root.parent / "attachments" / sha[:2] / sha[2:4] / sha).is_file()

    assert await harness.loop.drain(state) == 0
    assert len(harness.items) == 4


async def test_a_crash_before_the_move_leaves_mail_that_the_next_pass_only_moves(
    harness: Harness,
) -> None:
    harness.drop(form_mail(1), form_mail(2), corpus("x_autoreply.eml"))
    state = await harness.source.open()
    broken = crashing_source(harness)
    with pytest.raises(MailboxUnavailable):
        await harness.intake.process(broken, state, await broken.pending(10))
    assert harness.inbox() == 3
    assert len(harness.items) == 2
    assert len(harness.mailer.sent) == 2

    await harness.loop.drain(state)
    assert harness.inbox() == 0
    assert len(harness.items) == 2, "no second item"
    assert len(harness.mailer.sent) == 2, "no second acknowledgement"
    uids = await rows(harness.store, mail_uids)
    assert all(row.moved_at is not None for row in uids)
    assert sorted(row.outcome for row in uids) == ["automatic", "published", "published"]


async def test_a_new_uidvalidity_rekeys_but_never_publishes_twice(harness: Harness) -> None:
    harness.drop(form_mail(1), form_mail(2))
    state = await harness.source.open()
    broken = crashing_source(harness)
    with pytest.raises(MailboxUnavailable):
        await harness.intake.process(broken, state, await broken.pending(10))

    renumbered = FolderState(state.folder, state.uidvalidity + 1)
    await harness.intake.opened(harness.source.account, renumbered)
    report = await harness.intake.process(
        harness.source, renumbered, await harness.source.pending(10)
    )
    assert report.count("duplicate") == 2
    assert harness.inbox() == 0
    assert len(harness.items) == 2
    assert len(harness.mailer.sent) == 2
    assert len(await rows(harness.store, mail_items)) == 2
    assert {row.uidvalidity for row in await rows(harness.store, mail_uids)} == {1, 2}


async def test_the_same_mail_twice_in_a_batch_is_one_item(harness: Harness) -> None:
    harness.drop(form_mail(3), form_mail(3))
    state = await harness.source.open()
    report = await harness.intake.process(harness.source, state, await harness.source.pending(10))
    assert (report.count("published"), report.count("duplicate")) == (1, 1)
    assert len(harness.items) == 1
    assert len(harness.mailer.sent) == 1
    assert len(harness.folder("Traités")) == 2


async def test_a_batch_prepared_while_the_previous_settles_never_publishes_twice(
    harness: Harness,
) -> None:
    # The mailbox loop prepares batch 2 before batch 1 is recorded: batch 1's items
    # are "in flight" and count as published.
    harness.drop(form_mail(1), form_mail(2), form_mail(1))
    state = await harness.source.open()
    first, second = (await harness.source.pending(10))[:2], (await harness.source.pending(10))[2:]
    batch1 = await harness.intake.prepare(harness.source, state, first)
    batch2 = await harness.intake.prepare(harness.source, state, second, batch1.item_ids)
    assert batch2.report.count("duplicate") == 1
    assert (await harness.intake.settle(harness.source, batch1)).moved == 2
    assert (await harness.intake.settle(harness.source, batch2)).moved == 1
    assert len(harness.items) == 2
    assert len(harness.mailer.sent) == 2
    assert harness.inbox() == 0


async def test_the_loop_pipelines_batches_and_files_every_mail_once(harness: Harness) -> None:
    # Batches of 5: the copy of mail 1 comes in the second batch, mail 12 in the third.
    harness.drop(
        *(form_mail(n) for n in range(1, 6)), form_mail(1), *(form_mail(n) for n in range(7, 13))
    )
    assert await harness.loop.drain(await harness.source.open()) == 12
    assert harness.loop.passes == 3
    assert harness.inbox() == 0
    assert len(harness.folder("Traités")) == 12
    assert sorted(item.sender.email or "" for item in harness.items) == sorted(
        f"client.form{n}@example.test" for n in (1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12)
    )
    assert len(harness.mailer.sent) == 11
    outcomes = [row.outcome for row in await rows(harness.store, mail_uids)]
    assert (outcomes.count("published"), outcomes.count("duplicate")) == (11, 1)


async def test_mail_arriving_while_the_last_batch_settles_is_taken_in_the_same_drain(
    harness: Harness,
) -> None:
    # On IMAP, the EXISTS of such a mail answers the MOVE: the IDLE after the drain
    # would not hear of it. The drain ends only on a search made after the last move.
    class ArrivalDuringMove(MaildirSource):
        async def move(self, uids: Sequence[str], folder: str) -> None:
            await super().move(uids, folder)
            if len(harness.items) == 1:
                harness.drop(form_mail(9))

    harness.drop(form_mail(1))
    source = ArrivalDuringMove(harness.root, account="maildir:test", folders=("Traités",))
    loop = MailboxLoop(source, harness.intake, metrics=harness.metrics)
    assert await loop.drain(await source.open()) == 2
    assert harness.inbox() == 0
    assert len(harness.items) == 2


async def test_a_mail_over_the_limit_goes_to_quarantine_with_its_size(harness: Harness) -> None:
    state = await harness.source.open()
    too_big = FetchedMail(uid="9", raw=None, size=30_000_000, arrived_at=None)

    class Oversized(MaildirSource):
        async def fetch(self, uids: Sequence[str], max_bytes: int) -> list[FetchedMail]:
            return [too_big]

        async def move(self, uids: Sequence[str], folder: str) -> None:
            self.moved = (list(uids), folder)

    source = Oversized(harness.root, account="maildir:test", folders=())
    report = await harness.intake.process(source, state, ["9"])
    assert report.count("quarantined") == 1
    (letter,) = harness.dead_letters
    assert letter.reason_code == "over_size_limit"
    assert "30000000 bytes" in letter.reason
    assert letter.payload_b64 is None
    assert letter.original_ref.endswith(";UIDVALIDITY=1/;UID=9")
    assert source.moved == (["9"], "Quarantaine")


async def test_acknowledgements_retry_transient_failures_and_stop_on_refusals(
    harness: Harness,
) -> None:
    harness.mailer.fail["client.form1@example.test"] = AcknowledgementNotSent(
        "SMTPResponseException 451", permanent=False
    )
    harness.mailer.fail["client.form2@example.test"] = AcknowledgementNotSent(
        "recipient refused [550]", permanent=True
    )
    harness.drop(form_mail(1), form_mail(2), form_mail(3))
    await harness.loop.drain(await harness.source.open())
    assert harness.inbox() == 0, "acknowledgement failures never hold mail back"
    assert [r for _, r, _ in harness.mailer.sent] == ["client.form3@example.test"]
    statuses = {
        row.recipient: row.status for row in await rows(harness.store, mail_acknowledgements)
    }
    assert statuses == {
        "client.form1@example.test": "pending",
        "client.form2@example.test": "failed",
        "client.form3@example.test": "sent",
    }

    del harness.mailer.fail["client.form1@example.test"]
    assert await harness.acknowledger.send_due() == [], "not due before its backoff"
    harness.clock.advance(31)
    (result,) = await harness.acknowledger.send_due()
    assert result.status == "sent"
    assert len(harness.mailer.sent) == 2
    assert len(harness.contacts) == 2
    assert await harness.acknowledger.send_due() == []


async def test_an_interrupted_send_becomes_uncertain_and_is_never_resent(
    harness: Harness,
) -> None:
    harness.mailer.unreachable = True
    harness.drop(form_mail(1))
    await harness.loop.drain(await harness.source.open())
    assert harness.inbox() == 0
    (row,) = await rows(harness.store, mail_acknowledgements)
    assert row.status == "pending"
    # A crash right after the claim: the row stays "sending".
    async with harness.store.transaction() as connection:
        await connection.execute(
            mail_acknowledgements.update().values(status="sending", claimed_at=harness.clock())
        )
    harness.mailer.unreachable = False
    assert await harness.acknowledger.send_due() == []
    harness.clock.advance(61)
    assert await harness.acknowledger.send_due() == []
    (row,) = await rows(harness.store, mail_acknowledgements)
    assert row.status == "uncertain"
    assert harness.mailer.sent == []
    uncertain = harness.metrics.acknowledgements.labels("uncertain")._value.get()
    assert uncertain == 1


async def test_the_loop_reconnects_after_failures_and_keeps_going(harness: Harness) -> None:
    failures = {"left": 2}

    class Flaky(MaildirSource):
        async def open(self) -> FolderState:
            if failures["left"]:
                failures["left"] -= 1
                raise MailboxUnavailable("connection refused")
            return await super().open()

        async def wait_for_mail(self, timeout: float) -> None:
            await asyncio.sleep(0.05)

    harness.drop(form_mail(1))
    source = Flaky(harness.root, account="maildir:test", folders=("Traités",))
    loop = MailboxLoop(source, harness.intake, reconnect_max_s=0.05, metrics=harness.metrics)
    task = asyncio.create_task(loop.run_forever())
    try:
        for _ in range(100):
            if harness.inbox() == 0:
                break
            await asyncio.sleep(0.05)
        harness.drop(form_mail(2))
        for _ in range(100):
            if len(harness.items) == 2 and harness.inbox() == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(harness.items) == 2
    assert failures["left"] == 0
    failed = harness.metrics.failed_passes.labels("MailboxUnavailable")._value.get()
    assert failed == 2
    hashes = {normalised_hash(m) for m in harness.folder("Traités")}
    assert hashes == {normalised_hash(form_mail(1)), normalised_hash(form_mail(2))}


async def test_a_relay_silent_after_data_makes_the_acknowledgement_uncertain_at_once(
    harness: Harness,
) -> None:
    harness.mailer.fail["client.form1@example.test"] = AcknowledgementNotSent(
        "no answer to DATA: SMTPReadTimeoutError", permanent=False, ambiguous=True
    )
    harness.drop(form_mail(1))
    await harness.loop.drain(await harness.source.open())
    (row,) = await rows(harness.store, mail_acknowledgements)
    assert row.status == "uncertain"
    del harness.mailer.fail["client.form1@example.test"]
    harness.clock.advance(3600)
    assert await harness.acknowledger.send_due() == []
    assert harness.mailer.sent == []
    assert harness.contacts == []
