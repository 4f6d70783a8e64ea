"""intake_phone counters (Prometheus text on ``GET /metrics``), one registry per app.

What the issue asks to count: unknown event types (ignored, not errors),
calls out of the perimeter (not routed), and what the webhook answered.
Labels are platform names and stable reason codes, never call data.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest

__all__ = ["PhoneMetrics"]


class PhoneMetrics:
    """The service's counters, on a private registry (several apps may live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "aiguillage_phone_webhook_requests",
            "Webhook requests by platform and HTTP status",
            ("platform", "status"),
            registry=self.registry,
        )
        self.events = Counter(
            "aiguillage_phone_events",
            "Call events by platform and outcome (folded, duplicate, late)",
            ("platform", "outcome"),
            registry=self.registry,
        )
        self.ignored = Counter(
            "aiguillage_phone_ignored",
            "Well-formed payload parts that are not call events (unknown types…)",
            ("platform", "reason"),
            registry=self.registry,
        )
        self.rejected = Counter(
            "aiguillage_phone_rejected",
            "Payloads no adapter could read (dead-lettered)",
            ("platform", "reason"),
            registry=self.registry,
        )
        self.calls = Counter(
            "aiguillage_phone_calls",
            "Completed calls by platform, routed or not, and perimeter reason",
            ("platform", "routed", "reason"),
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every counter."""
        return generate_latest(self.registry)
