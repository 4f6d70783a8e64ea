"""The intake_mail repository on both backends (SQLite and PostgreSQL): idempotent records,
dedupe by item id, and acknowledgement claims that only one sender can take."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from services.common.store import Store
from services.intake_mail.adapters.repository import MailRepository, UidKey

NOW = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
KEY = UidKey("imap://svc@host", "INBOX", 17)


def _uid(uid: str, item_id: str | None, outcome: str = "published") -> dict[str, Any]:
    return {
        "account": KEY.account, "folder": KEY.folder, "uidvalidity": KEY.uidvalidity,
        "uid": uid, "item_id": item_id, "outcome": outcome, "destination": "Traités",
        "reason_code": None, "recorded_at": NOW,
    }  # fmt: skip


def _item(item_id: str) -> dict[str, Any]:
    return {"item_id": item_id, "content_sha256": "0" * 64, "source_ref": "x", "published_at": NOW}


def _ack(item_id: str, *, minutes: int = 0) -> dict[str, Any]:
    return {
        "item_id": item_id, "message_id": f"<{item_id}.ar@x>", "recipient": f"{item_id}@example.test",
        "in_reply_to": None, "contact_date": NOW, "status": "pending", "attempts": 0,
        "next_attempt_at": NOW + dt.timedelta(minutes=minutes),
        "created_at": NOW + dt.timedelta(seconds=len(item_id)),
    }  # fmt: skip


async def _with_repo(store: Store, work: Any) -> Any:
    async with store.transaction() as connection:
        return await work(MailRepository(connection, postgres=store.is_postgres))


async def test_records_are_idempotent_and_answer_dedupe_queries(store: Store) -> None:
    async def record(repo: MailRepository) -> None:
        await repo.record(
            [_uid("1", "mail-a"), _uid("2", None, "quarantined")],
            [_item("mail-a")],
            [_ack("mail-a")],
        )

    await _with_repo(store, record)
    await _with_repo(store, record)  # a second pass over the same batch changes nothing

    async def read(repo: MailRepository) -> tuple[Any, ...]:
        return (
            await repo.known_uids(KEY, ["1", "2", "3"]),
            await repo.published(["mail-a", "mail-b"]),
            await repo.last_uidvalidity(KEY.account, KEY.folder),
            await repo.known_uids(UidKey(KEY.account, KEY.folder, 18), ["1"]),
        )

    known, published, validity, other_validity = await _with_repo(store, read)
    assert known == {"1": "Traités", "2": "Traités"}
    assert published == {"mail-a"}
    assert validity == 17
    assert other_validity == {}


async def test_a_claim_is_taken_once_and_stale_claims_become_uncertain(store: Store) -> None:
    await _with_repo(
        store,
        lambda repo: repo.record(
            [], [], [_ack("mail-a"), _ack("mail-b"), _ack("mail-c", minutes=5)]
        ),
    )
    due = await _with_repo(store, lambda repo: repo.due(NOW, 10))
    assert [row.item_id for row in due] == ["mail-a", "mail-b"]
    only = await _with_repo(store, lambda repo: repo.due(NOW, 10, ["mail-b"]))
    assert [row.item_id for row in only] == ["mail-b"]

    claims = await asyncio.gather(
        _with_repo(store, lambda repo: repo.claim("mail-a", NOW)),
        _with_repo(store, lambda repo: repo.claim("mail-a", NOW)),
    )
    assert sorted(claims) == [False, True]
    await _with_repo(store, lambda repo: repo.claim("mail-b", NOW))
    await _with_repo(store, lambda repo: repo.finish("mail-b", status="sent", now=NOW))
    later = NOW + dt.timedelta(minutes=10)
    stale = await _with_repo(store, lambda repo: repo.expire_claims(later, later))
    assert stale == ["mail-a"]
    assert [row.item_id for row in await _with_repo(store, lambda repo: repo.due(later, 10))] == [
        "mail-c"
    ]
