"""The ``Task`` contract: what a service queue must do about a dossier."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas._base import Contract, UtcDatetime
from schemas.dossiers import Kind, Urgency

__all__ = ["Task", "TaskAction"]

TaskAction = Literal[
    "handle_request",  # treat the new request (4.10)
    "take_part",  # the request concerns this queue too, e.g. an urgent sensitive letter (5.1.4)
    "request_cancelled",  # cancelled by the customer: finalise tasks, cancel field work (5.1.7.2 a)
    "prioritise_multicontact",  # supervisor: a customer came back about an open dossier (4.8)
    "identify_customer",  # nobody matched the sender's hints (5.1.2)
    "review_perimeter",  # not about the water service: check, do not record (5.1.2)
    "outbound_call",  # holding call instead of a holding mail (4.12)
    "sla_breached",  # supervisor: a deadline passed unanswered
]


class Task(Contract):
    """One unit of work on ``tasks.<service>.v1``, keyed by dossier id."""

    task_id: str = Field(min_length=1, max_length=300, description="deterministic, for dedupe")
    dossier_id: str | None = Field(default=None, description="None for perimeter reviews")
    service: str
    action: TaskAction
    created_at: UtcDatetime
    item_id: str | None = None
    dossier_type: str | None = None
    kind: Kind | None = None
    urgency: Urgency = "normale"
    sensitive: tuple[str, ...] = ()
    customer_ref: str | None = None
    due_at: UtcDatetime | None = None
    reasons: tuple[str, ...] = ()
