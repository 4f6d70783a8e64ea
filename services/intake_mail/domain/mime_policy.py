"""The ``email`` policy intake_mail parses with: compat32 speed, ``policy.default`` readings.

Rule (issue 4, "Parsing"; the throughput part of issue 4): a mail is parsed
into plain ``compat32`` message objects, which store the raw header values
(byte for byte what ``policy.default`` stores). The only header values the
parser and the domain ever *fetch* through the policy are MIME ones
(Content-Type, Content-Disposition, Content-Transfer-Encoding: boundary,
charset, file name): those are read as ``policy.default`` reads them (unfolded,
RFC 2047 and RFC 2231 aware), and memoised, because the ``email`` package
fetches the same Content-Type a dozen times per part and ``policy.default``
re-parses it each time. The address, subject and date fields are read raw by
``headers`` and never go through a policy.

Where ``policy.default`` raises on a header value, that one value is read as
``compat32`` reads it and the failure is noted (``ReadingPolicy.failures``;
``parse_mail`` reports it as the ``DefaultPolicyFailed`` defect).
"""

from __future__ import annotations

import email.errors
import functools
from email.policy import Compat32, compat32, default
from typing import Any

__all__ = ["PARSER_ERRORS", "ReadingPolicy"]

PARSER_ERRORS: tuple[type[BaseException], ...] = (
    email.errors.MessageError,
    ValueError,
    LookupError,
    TypeError,
    IndexError,
    AttributeError,
    AssertionError,
    RecursionError,
    OverflowError,
)
"""What the ``email`` package raises on malformed input (it is not only ``MessageError``)."""

_MEMO_MAX_CHARS = 4096


@functools.lru_cache(maxsize=512)
def _default_reading(name: str, value: str) -> str | None:
    """The value as ``policy.default`` presents it (its ``str``), or None where it raises."""
    try:
        return str(default.header_fetch_parse(name, value))
    except PARSER_ERRORS:
        return None


class ReadingPolicy(Compat32):
    """``compat32`` messages whose fetched header values read as under ``policy.default``.

    One instance per parse: ``failures`` collects the names of the header fields
    ``policy.default`` could not read (they were read as ``compat32`` reads them).
    """

    failures: list[str]

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "failures", [])  # policies are read-only once built

    def header_fetch_parse(self, name: str, value: str) -> Any:
        """The ``policy.default`` reading of the value, memoised; ``compat32``'s where it fails."""
        if not isinstance(value, str):
            return value
        key = name.lower()
        reading = (
            _default_reading(key, value)
            if len(value) <= _MEMO_MAX_CHARS
            else _default_reading.__wrapped__(key, value)
        )
        if reading is not None:
            return reading
        self.failures.append(key)
        return compat32.header_fetch_parse(name, value)
