"""Dead-letter selection and idempotent replay onto the original topic.

A replay puts the letter's bytes (or an operator's corrected payload) back on
its original topic with its original key, so per-customer order and
partitioning hold. It is idempotent: the replay marker (``ops_dlq_replays``,
primary key = dead letter id) is written in the transaction that waits for
Kafka's acknowledgement, so a letter is replayed once unless forced; a second
operator replaying at the same time hits the primary key and is told so. A
crash between the ack and the commit may replay a letter twice: consumers
drop the duplicate by item id / command id. The replayed message carries
``aiguillage-replay-of: <dead letter id>`` for tracing.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from pydantic import TypeAdapter, ValidationError

from schemas import (
    AccountAction,
    CustomerRecord,
    DeadLetter,
    DossierCommandAdapter,
    DossierEventAdapter,
    IntakeItem,
    OutboundContact,
    Task,
)
from schemas.topics import (
    ACCOUNT_ACTIONS,
    CUSTOMERS_DIRECTORY,
    DOSSIER_COMMANDS,
    DOSSIER_EVENTS,
    INTAKE_ITEMS,
    OUTBOUND_CONTACTS,
    SERVICE_QUEUES,
    task_topic,
)
from services.common.logging import get_logger
from services.common.store.engine import Store
from services.ops.adapters.dlq_topic import StoredLetter
from services.ops.adapters.tables import dlq_replays

__all__ = [
    "REPLAY_HEADER",
    "InvalidCorrection",
    "Publisher",
    "ReplayResult",
    "ReplayService",
    "Selection",
    "check_contract",
    "not_replayable_reason",
]

REPLAY_HEADER = "aiguillage-replay-of"
Outcome = Literal["replayed", "already_replayed", "not_replayable", "would_replay"]
log = get_logger(__name__)

_CONTRACTS: dict[str, TypeAdapter[Any]] = {
    INTAKE_ITEMS: TypeAdapter(IntakeItem),
    DOSSIER_COMMANDS: DossierCommandAdapter,
    DOSSIER_EVENTS: DossierEventAdapter,
    ACCOUNT_ACTIONS: TypeAdapter(AccountAction),
    OUTBOUND_CONTACTS: TypeAdapter(OutboundContact),
    CUSTOMERS_DIRECTORY: TypeAdapter(CustomerRecord),
    **{task_topic(service): TypeAdapter(Task) for service in SERVICE_QUEUES},
}


class InvalidCorrection(ValueError):
    """A corrected payload does not satisfy its topic's contract."""


def check_contract(topic: str, payload: bytes) -> None:
    """Validate a corrected payload against the contract of ``topic`` (when one is known)."""
    adapter = _CONTRACTS.get(topic)
    if adapter is None:
        return
    try:
        adapter.validate_json(payload)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in error.errors()
        )
        raise InvalidCorrection(
            f"payload does not satisfy the {topic} contract: {problems}"
        ) from error


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters to act on: every given criterion must hold (ids: any of them)."""

    ids: frozenset[str] = field(default_factory=frozenset)
    reason_codes: frozenset[str] = field(default_factory=frozenset)
    services: frozenset[str] = field(default_factory=frozenset)
    topics: frozenset[str] = field(default_factory=frozenset)
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @property
    def is_empty(self) -> bool:
        """True when nothing narrows the selection (replaying everything is refused)."""
        return not (
            self.ids
            or self.reason_codes
            or self.services
            or self.topics
            or self.since
            or self.until
        )

    def matches(self, letter: DeadLetter) -> bool:
        """Whether ``letter`` is selected."""
        return (
            (not self.ids or letter.dead_letter_id in self.ids)
            and (not self.reason_codes or letter.reason_code in self.reason_codes)
            and (not self.services or letter.service in self.services)
            and (not self.topics or letter.original_topic in self.topics)
            and (self.since is None or letter.occurred_at >= self.since)
            and (self.until is None or letter.occurred_at < self.until)
        )

    def select(self, letters: Iterable[StoredLetter]) -> list[StoredLetter]:
        """The selected letters, in the given order."""
        return [stored for stored in letters if self.matches(stored.letter)]


def not_replayable_reason(letter: DeadLetter, *, corrected: bool = False) -> str | None:
    """Why a letter cannot go back on a topic, or None when it can."""
    if letter.original_topic is None:
        return "no original topic (a file or a mail): re-ingest it at its source"
    if corrected:
        return None
    if letter.payload_b64 is None:
        return "no payload kept: replay it with a corrected payload"
    if letter.payload_truncated:
        return "payload was truncated: replay it with a corrected payload"
    return None


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What happened to one selected dead letter."""

    dead_letter_id: str
    outcome: Outcome
    detail: str = ""


class Publisher(Protocol):
    """Publishes one message and returns once the broker acknowledged it."""

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes, headers: Mapping[str, str]
    ) -> None:
        """Publish and wait for the acknowledgement."""
        ...


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ReplayService:
    """Replays dead letters once each, recording the replay marker with the publish."""

    def __init__(
        self, store: Store, publish: Publisher, *, clock: Callable[[], dt.datetime] = _utcnow
    ) -> None:
        self._store = store
        self._publish = publish
        self._clock = clock

    async def replay(
        self,
        letters: Sequence[StoredLetter],
        *,
        corrected: bytes | None = None,
        force: bool = False,
        dry_run: bool = False,
    ) -> list[ReplayResult]:
        """Replay each letter (``corrected`` replaces the payload of a single letter)."""
        if corrected is not None and len(letters) != 1:
            raise ValueError("a corrected payload applies to exactly one dead letter")
        return [
            await self._replay_one(stored.letter, corrected, force=force, dry_run=dry_run)
            for stored in letters
        ]

    async def _replay_one(
        self, letter: DeadLetter, corrected: bytes | None, *, force: bool, dry_run: bool
    ) -> ReplayResult:
        letter_id = letter.dead_letter_id
        why = not_replayable_reason(letter, corrected=corrected is not None)
        if why is not None or letter.original_topic is None:
            return ReplayResult(letter_id, "not_replayable", why or "")
        payload = corrected if corrected is not None else base64.b64decode(letter.payload_b64 or "")
        if dry_run:
            count = await self._replay_count(letter_id)
            if count and not force:
                return ReplayResult(letter_id, "already_replayed", f"{count} time(s)")
            return ReplayResult(letter_id, "would_replay", letter.original_topic)
        now = self._clock()
        try:
            async with self._store.transaction() as connection:
                query = sa.select(dlq_replays.c.replay_count).where(
                    dlq_replays.c.dead_letter_id == letter_id
                )
                if self._store.is_postgres:
                    query = query.with_for_update()
                previous: int | None = (await connection.execute(query)).scalar()
                if previous is not None and not force:
                    return ReplayResult(letter_id, "already_replayed", f"{previous} time(s)")
                await connection.execute(
                    _marker(letter, payload, corrected is not None, now, previous)
                )
                await self._publish(
                    letter.original_topic,
                    letter.original_key.encode() if letter.original_key is not None else None,
                    payload,
                    {REPLAY_HEADER: letter_id, "aiguillage-replayed-at": now.isoformat()},
                )
        except sa.exc.IntegrityError:
            return ReplayResult(letter_id, "already_replayed", "replayed concurrently")
        log.info(
            "dlq.replayed",
            dead_letter_id=letter_id,
            topic=letter.original_topic,
            corrected=corrected is not None,
        )
        return ReplayResult(letter_id, "replayed", letter.original_topic)

    async def _replay_count(self, letter_id: str) -> int:
        query = sa.select(dlq_replays.c.replay_count).where(
            dlq_replays.c.dead_letter_id == letter_id
        )
        async with self._store.engine.connect() as connection:
            return int((await connection.execute(query)).scalar() or 0)


def _marker(
    letter: DeadLetter, payload: bytes, corrected: bool, now: dt.datetime, count: int | None
) -> sa.Executable:
    values = {
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "corrected": corrected,
        "replayed_at": now,
    }
    if count is not None:
        return (
            dlq_replays.update()
            .where(dlq_replays.c.dead_letter_id == letter.dead_letter_id)
            .values(**values, replay_count=count + 1)
        )
    return dlq_replays.insert().values(
        **values,
        dead_letter_id=letter.dead_letter_id,
        original_topic=letter.original_topic,
        original_key=letter.original_key,
        reason_code=letter.reason_code[:100],
        replay_count=1,
        first_replayed_at=now,
    )
