"""What a batch of mails becomes: one verdict per mail, the batch's report, its folders.

:class:`~services.intake_mail.service.MailIntake` judges a batch into
:class:`Verdict` values, publishes it (:class:`PreparedBatch`), then records,
acknowledges and moves it; :func:`log_batch` counts and logs what it did.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from schemas import IntakeItem
from services.common.logging import get_logger
from services.common.metrics import metrics
from services.intake_mail.adapters.repository import UidKey
from services.intake_mail.domain import Decision
from services.intake_mail.metrics import MailMetrics

__all__ = ["Folders", "Outcome", "PassReport", "PreparedBatch", "Verdict", "log_batch"]

Outcome = Literal["published", "duplicate", "automatic", "quarantined"]
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Folders:
    """Where mail goes: accepted, bad input, automatic."""

    processed: str = "Traités"
    quarantine: str = "Quarantaine"
    automatic: str = "Automatiques"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the domain made of one mail."""

    uid: str
    kind: Literal["contact", "automatic", "quarantine"]
    source_ref: str
    reason: str = ""
    reason_code: str | None = None
    item: IntakeItem | None = None
    content_sha256: str | None = None
    acknowledgement: Decision | None = None
    in_reply_to: str | None = None
    raw: bytes | None = None


@dataclass(slots=True)
class PassReport:
    """What one batch did."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    moved: int = 0

    def count(self, outcome: Outcome) -> int:
        """How many mails of the batch had this outcome."""
        return sum(1 for value in self.outcomes.values() if value == outcome)


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch fetched, judged and published, not yet recorded, acknowledged nor moved."""

    key: UidKey
    known: dict[str, str]
    verdicts: list[Verdict]
    new_items: list[Verdict]
    report: PassReport
    now: dt.datetime

    @property
    def item_ids(self) -> frozenset[str]:
        """The ids of the items this batch published."""
        return frozenset(v.item.item_id for v in self.new_items if v.item is not None)


def log_batch(verdicts: Sequence[Verdict], report: PassReport, mail_metrics: MailMetrics) -> None:
    """Count each mail of a batch by outcome and log it, with its reason (STYLE rule 6)."""
    for verdict in verdicts:
        outcome = report.outcomes.get(verdict.uid, "quarantined")
        mail_metrics.mails.labels(outcome).inc()
        metrics.items_in.labels(channel="email").inc()
        metrics.items_out.labels(channel="email", outcome=outcome).inc()
        item_id = verdict.item.item_id if verdict.item else None
        if verdict.kind == "quarantine":
            mail_metrics.quarantined.labels(verdict.reason_code or "rejected").inc()
            log.warning(
                "mail.quarantined", uid=verdict.uid, reason_code=verdict.reason_code,
                reason=verdict.reason,
            )  # fmt: skip
        elif verdict.kind == "automatic":
            log.info("mail.automatic", uid=verdict.uid, reason=verdict.reason)
        elif outcome == "duplicate":
            log.info("mail.duplicate", uid=verdict.uid, item_id=item_id)
        else:
            log.info("mail.published", uid=verdict.uid, item_id=item_id, reason=verdict.reason)
