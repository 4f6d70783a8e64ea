"""Dead letters written through the outbox: a webhook never waits on Kafka to refuse a body.

Built like :class:`services.common.dlq.DeadLetterPublisher`'s (``build_dead_letter``:
id ``<service>:<original_ref>``, bytes base64 and capped), but added to the
outbox in the caller's transaction instead of published at once.
"""

from __future__ import annotations

import datetime as dt

from schemas import DeadLetter
from schemas.topics import DEAD_LETTERS
from services.common.dlq import build_dead_letter
from services.common.outbox import OutboxMessage

__all__ = ["SERVICE", "dead_letter", "outbox_message"]

SERVICE = "intake-phone"


def dead_letter(
    reason_code: str, reason: str, original_ref: str, payload: bytes, now: dt.datetime
) -> DeadLetter:
    """A ``DeadLetter`` of this service with a deterministic id (a retry is a duplicate)."""
    return build_dead_letter(
        SERVICE,
        reason_code=reason_code,
        reason=reason,
        original_ref=original_ref,
        payload=payload,
        now=now,
    )


def outbox_message(letter: DeadLetter) -> OutboxMessage:
    """The outbox row that publishes ``letter`` on ``intake.dlq.v1``, keyed by its reference."""
    return OutboxMessage(
        topic=DEAD_LETTERS, key=letter.original_ref, payload=letter.model_dump_json()
    )
