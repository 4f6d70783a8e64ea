"""Queries on the intake_mail tables, inside the caller's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from services.intake_mail.adapters.tables import mail_acknowledgements, mail_items, mail_uids

__all__ = ["DueAcknowledgement", "MailRepository", "UidKey"]


@dataclass(frozen=True, slots=True)
class UidKey:
    """Account + folder + UIDVALIDITY: the scope in which a UID names one mail."""

    account: str
    folder: str
    uidvalidity: int


@dataclass(frozen=True, slots=True)
class DueAcknowledgement:
    """An acknowledgement to send now."""

    item_id: str
    recipient: str
    in_reply_to: str | None
    contact_date: dt.datetime
    attempts: int


class MailRepository:
    """Reads and writes processed mail, published items and acknowledgement claims."""

    def __init__(self, connection: AsyncConnection, *, postgres: bool) -> None:
        self._connection = connection
        self._postgres = postgres

    async def _insert_ignore(self, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        dialect: Any = postgresql if self._postgres else sqlite
        statement = dialect.insert(table).on_conflict_do_nothing()
        await self._connection.execute(statement, list(rows))

    async def known_uids(self, key: UidKey, uids: Sequence[str]) -> dict[str, str]:
        """UID -> destination folder of the mails already decided in this scope."""
        if not uids:
            return {}
        query = sa.select(mail_uids.c.uid, mail_uids.c.destination).where(
            mail_uids.c.account == key.account,
            mail_uids.c.folder == key.folder,
            mail_uids.c.uidvalidity == key.uidvalidity,
            mail_uids.c.uid.in_(list(uids)),
        )
        return {row.uid: row.destination for row in await self._connection.execute(query)}

    async def last_uidvalidity(self, account: str, folder: str) -> int | None:
        """The UIDVALIDITY of the most recent record of this folder, if any."""
        query = (
            sa.select(mail_uids.c.uidvalidity)
            .where(mail_uids.c.account == account, mail_uids.c.folder == folder)
            .order_by(mail_uids.c.recorded_at.desc())
            .limit(1)
        )
        value = await self._connection.scalar(query)
        return int(value) if value is not None else None

    async def published(self, item_ids: Sequence[str]) -> set[str]:
        """The item ids among ``item_ids`` already published."""
        if not item_ids:
            return set()
        query = sa.select(mail_items.c.item_id).where(mail_items.c.item_id.in_(list(item_ids)))
        return set((await self._connection.scalars(query)).all())

    async def record(
        self,
        uids: Sequence[Mapping[str, Any]],
        items: Sequence[Mapping[str, Any]],
        acknowledgements: Sequence[Mapping[str, Any]],
    ) -> None:
        """Record a batch's decisions, published items and due acknowledgements (idempotent)."""
        await self._insert_ignore(mail_items, items)
        await self._insert_ignore(mail_acknowledgements, acknowledgements)
        await self._insert_ignore(mail_uids, uids)

    async def mark_moved(self, key: UidKey, uids: Sequence[str], now: dt.datetime) -> None:
        """Note that these mails left the mailbox."""
        if not uids:
            return
        await self._connection.execute(
            mail_uids.update()
            .where(
                mail_uids.c.account == key.account,
                mail_uids.c.folder == key.folder,
                mail_uids.c.uidvalidity == key.uidvalidity,
                mail_uids.c.uid.in_(list(uids)),
            )
            .values(moved_at=now)
        )

    # -- acknowledgements --------------------------------------------------

    async def expire_claims(self, claimed_before: dt.datetime, now: dt.datetime) -> list[str]:
        """Claims older than the lease were interrupted mid-send: mark them ``uncertain``."""
        table = mail_acknowledgements
        stale = (
            await self._connection.scalars(
                sa.select(table.c.item_id).where(
                    table.c.status == "sending", table.c.claimed_at < claimed_before
                )
            )
        ).all()
        if stale:
            await self._connection.execute(
                table.update()
                .where(table.c.item_id.in_(stale), table.c.status == "sending")
                .values(status="uncertain", last_error="interrupted during send")
            )
        return list(stale)

    async def due(
        self, now: dt.datetime, limit: int, item_ids: Sequence[str] | None = None
    ) -> list[DueAcknowledgement]:
        """Pending acknowledgements whose time has come, oldest first."""
        table = mail_acknowledgements
        query = (
            sa.select(table)
            .where(table.c.status == "pending", table.c.next_attempt_at <= now)
            .order_by(table.c.created_at, table.c.item_id)
            .limit(limit)
        )
        if item_ids is not None:
            query = query.where(table.c.item_id.in_(list(item_ids)))
        rows = (await self._connection.execute(query)).all()
        return [
            DueAcknowledgement(
                item_id=row.item_id,
                recipient=row.recipient,
                in_reply_to=row.in_reply_to,
                contact_date=row.contact_date,
                attempts=row.attempts,
            )
            for row in rows
        ]

    async def claim(self, item_id: str, now: dt.datetime) -> bool:
        """Claim a pending acknowledgement for sending (compare-and-set); False if taken."""
        table = mail_acknowledgements
        result = await self._connection.execute(
            table.update()
            .where(table.c.item_id == item_id, table.c.status == "pending")
            .values(status="sending", claimed_at=now, attempts=table.c.attempts + 1)
        )
        return bool(result.rowcount)

    async def claim_many(self, item_ids: Sequence[str], now: dt.datetime) -> set[str]:
        """Claim pending acknowledgements at once (compare-and-set); the ids actually claimed."""
        if not item_ids:
            return set()
        table = mail_acknowledgements
        result = await self._connection.execute(
            table.update()
            .where(table.c.item_id.in_(list(item_ids)), table.c.status == "pending")
            .values(status="sending", claimed_at=now, attempts=table.c.attempts + 1)
            .returning(table.c.item_id)
        )
        return set(result.scalars().all())

    async def finish_many(self, outcomes: Sequence[Mapping[str, Any]]) -> None:
        """Close claims at once; each outcome has ``item_id``, ``status``, ``sent_at``,
        ``last_error`` and ``next_attempt_at`` (None keeps the row's)."""
        if not outcomes:
            return
        table = mail_acknowledgements
        statement = (
            table.update()
            .where(table.c.item_id == sa.bindparam("b_item_id"), table.c.status == "sending")
            .values(
                status=sa.bindparam("b_status"),
                last_error=sa.bindparam("b_last_error"),
                sent_at=sa.func.coalesce(
                    sa.bindparam("b_sent_at", type_=table.c.sent_at.type), table.c.sent_at
                ),
                next_attempt_at=sa.func.coalesce(
                    sa.bindparam("b_next_attempt_at", type_=table.c.next_attempt_at.type),
                    table.c.next_attempt_at,
                ),
            )
        )
        await self._connection.execute(
            statement, [{f"b_{key}": value for key, value in row.items()} for row in outcomes]
        )

    async def finish(
        self,
        item_id: str,
        *,
        status: str,
        now: dt.datetime,
        error: str | None = None,
        next_attempt_at: dt.datetime | None = None,
    ) -> None:
        """Close a claim: ``sent``, ``failed``, or back to ``pending`` for a later attempt."""
        values: dict[str, Any] = {"status": status, "last_error": error}
        if status == "sent":
            values["sent_at"] = now
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        await self._connection.execute(
            mail_acknowledgements.update()
            .where(
                mail_acknowledgements.c.item_id == item_id,
                mail_acknowledgements.c.status == "sending",
            )
            .values(**values)
        )
