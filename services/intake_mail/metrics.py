"""intake_mail counters (Prometheus), one registry per app.

What the issue asks to count: mails by outcome (published, duplicate,
automatic, quarantined), quarantine reasons, acknowledgements by status, and
failed passes. Labels are stable codes, never mail data.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest

__all__ = ["MailMetrics"]


class MailMetrics:
    """The service's counters, on a private registry (several apps may live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.mails = Counter(
            "aiguillage_mail_mails",
            "Mails handled, by outcome (published, duplicate, automatic, quarantined)",
            ("outcome",),
            registry=self.registry,
        )
        self.quarantined = Counter(
            "aiguillage_mail_quarantined",
            "Mails sent to quarantine, by reason code",
            ("reason_code",),
            registry=self.registry,
        )
        self.acknowledgements = Counter(
            "aiguillage_mail_acknowledgements",
            "Acknowledgements by status (sent, retry, failed, uncertain, skipped)",
            ("status",),
            registry=self.registry,
        )
        self.failed_passes = Counter(
            "aiguillage_mail_failed_passes",
            "Mailbox passes interrupted by an infrastructure error, by error class",
            ("error",),
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every counter."""
        return generate_latest(self.registry)
