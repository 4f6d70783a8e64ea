"""intake_mail application layer: one pass over a batch of mails, effects in a safe order.

Issue 4, "Order of effects" (the paperless-ngx lesson): for each batch,
1. mails whose UID was already decided (a crash left them behind) are only moved;
2. the others are fetched, parsed and sorted by the domain: customer contact,
   automatic mail (not a contact, procedure 4.8) or bad input (quarantine);
3. new items are published to ``intake.items.v1`` and every Kafka ack awaited;
   bad input is published as a ``DeadLetter`` (ack awaited);
4. one transaction records the decisions (by account + folder + UIDVALIDITY
   + UID), the published item ids (dedupe: Message-ID + content hash) and the
   acknowledgements due (one row per item: never two);
5. the acknowledgements are sent (claim committed before each send);
6. only then is each mail moved to its folder. Mail is never deleted.
A crash anywhere leaves the mail in the mailbox; the next pass either moves it
(step 1) or finds its item id already published (no second item, no second
acknowledgement).

Steps 1-3 (``prepare``) and 4-6 (``settle``) are separate so that the mailbox
loop can prepare the next batch while the previous one settles (two batches
in flight at most); each mail still goes through the six steps in order.

Step 2 is :mod:`.judging`'s; the values a batch goes through are in :mod:`.batches`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import inspect
import os
import signal
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, TypeVar

from schemas import IntakeItem
from services.common.dlq import DeadLetterPublisher
from services.common.logging import get_logger
from services.common.retry import retry_store
from services.common.store.engine import Store
from services.intake_mail.acknowledgement_mail import acknowledgement_message_id
from services.intake_mail.acknowledgements import Acknowledger
from services.intake_mail.adapters.repository import MailRepository, UidKey
from services.intake_mail.batches import Folders, PassReport, PreparedBatch, Verdict, log_batch
from services.intake_mail.judging import MailJudge
from services.intake_mail.metrics import MailMetrics
from services.intake_mail.ports import AttachmentStore, FolderState, ItemPublisher, MailSource

__all__ = ["SERVICE", "Folders", "MailIntake", "PassReport", "PreparedBatch", "Verdict"]

SERVICE = "intake-mail"
Clock = Callable[[], dt.datetime]
T = TypeVar("T")
log = get_logger(__name__)
_MAX_DEAD_LETTER_REF = 300 - len(SERVICE) - 1
_DEFAULT_FOLDERS = Folders()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _dead_letter_ref(ref: str, uid: str) -> str:
    if len(ref) <= _MAX_DEAD_LETTER_REF:
        return ref
    return f"mail:{hashlib.sha256(ref.encode()).hexdigest()[:32]};UID={uid}"


class MailIntake:
    """Turns batches of mails into items, dead letters and acknowledgements, then files them."""

    def __init__(
        self,
        store: Store,
        *,
        items: ItemPublisher,
        dead_letters: DeadLetterPublisher,
        attachments: AttachmentStore,
        acknowledger: Acknowledger | None,
        own_addresses: Sequence[str],
        from_address: str = "",
        folders: Folders = _DEFAULT_FOLDERS,
        max_bytes: int = 25 * 1024 * 1024,
        metrics: MailMetrics | None = None,
        clock: Clock = _utcnow,
        retry_max_s: float = 30.0,
        crash_at: str = "",
    ) -> None:
        self._store = store
        self._items = items
        self._dead_letters = dead_letters
        self._judge = MailJudge(attachments, own_addresses, max_bytes)
        self._acknowledger = acknowledger
        self._from = from_address
        self._folders = folders
        self._max_bytes = max_bytes
        self._metrics = metrics or MailMetrics()
        self._clock = clock
        self._retry_max_s = retry_max_s
        self._crash_at = crash_at

    async def opened(self, account: str, state: FolderState) -> None:
        """Note the folder's UIDVALIDITY; a change re-keys UIDs, the item dedupe still holds."""

        async def attempt() -> int | None:
            async with self._store.transaction() as connection:
                repo = MailRepository(connection, postgres=self._store.is_postgres)
                return await repo.last_uidvalidity(account, state.folder)

        last = await retry_store(attempt, max_seconds=self._retry_max_s)
        if last is not None and last != state.uidvalidity:
            log.warning(
                "imap.uidvalidity_changed",
                folder=state.folder,
                previous=last,
                uidvalidity=state.uidvalidity,
            )

    async def process(
        self, source: MailSource, state: FolderState, uids: Sequence[str]
    ) -> PassReport:
        """Handle one batch in the order of the module docstring (issue 4, "Order of effects")."""
        return await self.settle(source, await self.prepare(source, state, uids))

    async def prepare(
        self,
        source: MailSource,
        state: FolderState,
        uids: Sequence[str],
        in_flight: Collection[str] = (),
    ) -> PreparedBatch:
        """Steps 1-3: fetch, judge, publish (Kafka acknowledged); nothing recorded yet.

        ``in_flight``: item ids published by a batch not yet recorded (the mailbox
        loop prepares a batch while the previous one settles): they count as published.
        """
        key = UidKey(source.account, state.folder, state.uidvalidity)
        known = await self._read(lambda repo: repo.known_uids(key, uids))
        now = self._clock()
        fetched = await source.fetch([uid for uid in uids if uid not in known], self._max_bytes)
        verdicts = [await self._judge.judge(source.account, state, mail, now) for mail in fetched]
        report = PassReport()
        new_items = await self._publish(verdicts, report, in_flight)
        await self._dead_letter(verdicts)
        return PreparedBatch(key, known, verdicts, new_items, report, now)

    async def settle(self, source: MailSource, batch: PreparedBatch) -> PassReport:
        """Steps 4-6: record, acknowledge, move (issue 4, "Order of effects")."""
        verdicts, report = batch.verdicts, batch.report
        ack_ids = await self._record(batch.key, verdicts, report, batch.new_items, batch.now)
        self._crash_point("after_publish")
        if self._acknowledger is not None and ack_ids:
            await self._acknowledger.send_due(ack_ids)
        self._crash_point("before_move")
        destinations = dict(batch.known) | {v.uid: self._destination(v) for v in verdicts}
        await self._move(source, batch.key, destinations, report)
        log_batch(verdicts, report, self._metrics)
        return report

    # -- steps ----------------------------------------------------------------

    async def _publish(
        self, verdicts: Sequence[Verdict], report: PassReport, in_flight: Collection[str]
    ) -> list[Verdict]:
        """Publish the items not published before; await every Kafka acknowledgement."""
        contacts = [(v, v.item) for v in verdicts if v.item is not None]
        ids = [item.item_id for _, item in contacts]
        already = await self._read(lambda repo: repo.published(ids))
        already |= {item_id for item_id in ids if item_id in in_flight}
        new: dict[str, tuple[Verdict, IntakeItem]] = {}
        for verdict, item in contacts:
            if item.item_id in already or item.item_id in new:
                report.outcomes[verdict.uid] = "duplicate"
            else:
                new[item.item_id] = (verdict, item)
                report.outcomes[verdict.uid] = "published"
        pending = [
            await self._items.publish(
                item.model_dump_json().encode(), key=item.partition_key().encode(), no_confirm=True
            )
            for _, item in new.values()
        ]
        await asyncio.gather(*(ack for ack in pending if inspect.isawaitable(ack)))
        return [verdict for verdict, _ in new.values()]

    async def _dead_letter(self, verdicts: Sequence[Verdict]) -> None:
        for verdict in verdicts:
            if verdict.kind == "quarantine":
                await self._dead_letters.publish(
                    reason_code=verdict.reason_code or "rejected",
                    reason=verdict.reason,
                    original_ref=_dead_letter_ref(verdict.source_ref, verdict.uid),
                    payload=verdict.raw,
                )

    async def _record(
        self,
        key: UidKey,
        verdicts: Sequence[Verdict],
        report: PassReport,
        new_items: Sequence[Verdict],
        now: dt.datetime,
    ) -> list[str]:
        """One transaction: decisions by UID, published item ids, acknowledgements due."""
        for verdict in verdicts:
            if verdict.kind != "contact":
                report.outcomes[verdict.uid] = (
                    "automatic" if verdict.kind == "automatic" else "quarantined"
                )
        uids = [
            {
                "account": key.account, "folder": key.folder, "uidvalidity": key.uidvalidity,
                "uid": v.uid, "item_id": v.item.item_id if v.item else None,
                "outcome": report.outcomes[v.uid], "destination": self._destination(v),
                "reason_code": v.reason_code, "recorded_at": now,
            }
            for v in verdicts
        ]  # fmt: skip
        items = [
            {"item_id": v.item.item_id, "content_sha256": v.content_sha256 or "",
             "source_ref": v.source_ref[:1024], "published_at": now}
            for v in new_items if v.item is not None
        ]  # fmt: skip
        acks = [self._acknowledgement_row(v, now) for v in new_items]
        due = [row for row in acks if row is not None]

        async def attempt() -> None:
            async with self._store.transaction() as connection:
                repo = MailRepository(connection, postgres=self._store.is_postgres)
                await repo.record(uids, items, due)

        await retry_store(attempt, max_seconds=self._retry_max_s)
        return [row["item_id"] for row in due]

    def _acknowledgement_row(self, verdict: Verdict, now: dt.datetime) -> dict[str, Any] | None:
        decision, item = verdict.acknowledgement, verdict.item
        if self._acknowledger is None or decision is None or item is None:
            return None
        if not decision.send or decision.recipient is None:
            self._metrics.acknowledgements.labels("skipped").inc()
            log.info("acknowledgement.skipped", item_id=item.item_id, reason=decision.reason)
            return None
        return {
            "item_id": item.item_id,
            "message_id": acknowledgement_message_id(item.item_id, self._from),
            "recipient": decision.recipient,
            "in_reply_to": verdict.in_reply_to,
            "contact_date": item.received_at,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }

    async def _move(
        self, source: MailSource, key: UidKey, destinations: dict[str, str], report: PassReport
    ) -> None:
        by_folder: dict[str, list[str]] = {}
        for uid, folder in destinations.items():
            by_folder.setdefault(folder, []).append(uid)
        for folder, uids in by_folder.items():
            await source.move(uids, folder)
        report.moved = len(destinations)

        async def attempt() -> None:
            async with self._store.transaction() as connection:
                repo = MailRepository(connection, postgres=self._store.is_postgres)
                await repo.mark_moved(key, list(destinations), self._clock())

        await retry_store(attempt, max_seconds=self._retry_max_s)

    # -- helpers --------------------------------------------------------------

    async def _read(self, query: Callable[[MailRepository], Awaitable[T]]) -> T:
        async def attempt() -> T:
            async with self._store.transaction() as connection:
                return await query(MailRepository(connection, postgres=self._store.is_postgres))

        return await retry_store(attempt, max_seconds=self._retry_max_s)

    def _destination(self, verdict: Verdict) -> str:
        if verdict.kind == "contact":
            return self._folders.processed
        if verdict.kind == "automatic":
            return self._folders.automatic
        return self._folders.quarantine

    def _crash_point(self, point: str) -> None:
        """TESTS ONLY (``INTAKE_MAIL_TEST_CRASH_AT``): die here like a crash, SIGKILL."""
        if self._crash_at == point:
            log.warning("test.crash", point=point)
            os.kill(os.getpid(), signal.SIGKILL)
