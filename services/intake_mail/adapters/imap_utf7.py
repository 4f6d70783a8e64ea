"""IMAP mailbox names on the wire: modified UTF-7 (RFC 3501 section 5.1.3).

"Traités" is ``Trait&AOk-s`` on the wire: printable ASCII stands for itself
(``&`` becomes ``&-``), any other run of characters is UTF-16BE in base64 with
``,`` for ``/`` and no padding, between ``&`` and ``-``.
"""

from __future__ import annotations

import base64
import re

__all__ = ["decode_mailbox", "encode_mailbox", "quote_mailbox"]

_SHIFTED = re.compile(r"&([^-]*)-")


def _b64(text: str) -> str:
    data = base64.b64encode(text.encode("utf-16-be")).decode("ascii")
    return data.rstrip("=").replace("/", ",")


def encode_mailbox(name: str) -> str:
    """Encode a mailbox name in modified UTF-7 (RFC 3501 section 5.1.3)."""
    out: list[str] = []
    pending: list[str] = []
    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            if pending:
                out.append(f"&{_b64(''.join(pending))}-")
                pending.clear()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    if pending:
        out.append(f"&{_b64(''.join(pending))}-")
    return "".join(out)


def decode_mailbox(wire: str) -> str:
    """Decode a modified UTF-7 mailbox name (RFC 3501 section 5.1.3)."""

    def shifted(match: re.Match[str]) -> str:
        data = match.group(1)
        if not data:
            return "&"
        padded = data.replace(",", "/") + "=" * (-len(data) % 4)
        return base64.b64decode(padded).decode("utf-16-be")

    return _SHIFTED.sub(shifted, wire)


def quote_mailbox(name: str) -> str:
    """The mailbox name as an IMAP quoted string, encoded for the wire."""
    wire = encode_mailbox(name)
    escaped = wire.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
