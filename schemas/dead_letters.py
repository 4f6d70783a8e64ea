"""The ``DeadLetter`` contract on ``intake.dlq.v1``: bad input, kept with its reason."""

from __future__ import annotations

from pydantic import Field

from schemas._base import Contract, UtcDatetime

__all__ = ["DeadLetter"]


class DeadLetter(Contract):
    """Something a service could not process, with why, where from and who refused it.

    Nothing is lost: the original bytes travel base64-encoded (capped) so that
    ``aiguillage dlq replay`` can put a fixed message back on its topic.
    """

    dead_letter_id: str = Field(min_length=1, max_length=300)
    reason_code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="stable, for counting")
    reason: str = Field(max_length=4000)
    original_topic: str | None = Field(default=None, description="None for files and mails")
    original_partition: int | None = None
    original_offset: int | None = None
    original_key: str | None = None
    original_ref: str = Field(description="topic/partition@offset, mailbox UID, file path…")
    payload_b64: str | None = Field(default=None, description="the original bytes, base64")
    payload_truncated: bool = False
    service: str
    service_version: str
    occurred_at: UtcDatetime
