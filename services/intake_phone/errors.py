"""intake_phone errors: one base, named subclasses; bad input among them goes to the DLQ."""

from __future__ import annotations

from services.common.dlq import PoisonMessage
from services.intake_phone.domain import PayloadRejected

__all__ = [
    "IntakePhoneError",
    "ListenFailed",
    "RecordingBusy",
    "RejectedTelephonyPayload",
]


class IntakePhoneError(Exception):
    """Base of intake_phone's own errors."""


class RejectedTelephonyPayload(PoisonMessage, IntakePhoneError):
    """A ``telephony.raw.v1`` message no adapter can read (it is dead-lettered, then acked)."""

    @classmethod
    def from_rejection(cls, rejected: PayloadRejected) -> RejectedTelephonyPayload:
        """Carry the adapter's stable reason code and field-level reason."""
        return cls(rejected.reason_code, rejected.reason)


class RecordingBusy(IntakePhoneError):
    """The store did not record a webhook's events in the bounded time (answered 503)."""


class ListenFailed(IntakePhoneError):
    """The webhook server could not bind its address."""

    def __init__(self, host: str, port: int, error: OSError) -> None:
        super().__init__(f"cannot listen on {host}:{port}: {error.strerror or error}")
