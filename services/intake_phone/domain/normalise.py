"""One entry point for every telephony platform's payload (procedure 5.1.1).

The webhook endpoint and the ``telephony.raw.v1`` consumer both call
:func:`normalise` with the platform named by the route or the message key,
so both entry points share one pure normaliser.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Final, Protocol, get_args

from services.intake_phone.domain.asterisk import parse_ami
from services.intake_phone.domain.events import Normalised, PayloadRejected, Platform
from services.intake_phone.domain.generic import parse_generic
from services.intake_phone.domain.ringover import parse_ringover
from services.intake_phone.domain.twilio import parse_twilio

__all__ = ["ADAPTERS", "PLATFORMS", "Adapter", "normalise"]


class Adapter(Protocol):
    """A platform adapter: raw payload in, normalised events out, or ``PayloadRejected``."""

    def __call__(
        self, payload: bytes | str, /, *, received_at: dt.datetime | None = None
    ) -> Normalised: ...


ADAPTERS: Final[Mapping[str, Adapter]] = {
    "generic": parse_generic,
    "ringover": parse_ringover,
    "twilio": parse_twilio,
    "asterisk": parse_ami,
}
PLATFORMS: Final[tuple[Platform, ...]] = get_args(Platform)


def normalise(
    platform: str, payload: bytes | str, *, received_at: dt.datetime | None = None
) -> Normalised:
    """Read one raw payload of the named platform into call events and ignored parts.

    Rule of procedure 5.1.1 (every call is received as a contact, whatever the
    telephony platform): dispatch to the platform's adapter; an unknown
    platform name is rejected like a malformed payload (``unknown_platform``).
    ``received_at`` (aware) stands in for an event time the payload lacks.
    """
    adapter = ADAPTERS.get(platform)
    if adapter is None:
        raise PayloadRejected("unknown_platform", "no adapter for this platform")
    return adapter(payload, received_at=received_at)
