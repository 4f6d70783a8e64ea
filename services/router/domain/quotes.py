"""Earlier replies quoted under a customer's message: they are not the customer's words."""

from __future__ import annotations

import re

from services.router.domain.folding import fold

__all__ = ["strip_quoted"]

_WROTE = re.compile(r"^\s*(le|on)\b.{0,200}?\b(a\s+ecrit|wrote)\s*:\s*$", re.IGNORECASE)
_WROTE_START = re.compile(r"^\s*le\s+\S.{0,160}$", re.IGNORECASE)
_ORIGINAL = re.compile(
    r"^\s*-{2,}\s*(message d'origine|original message)",
    re.IGNORECASE,
)
_HEADER_FROM = re.compile(r"^\s*\**\s*(de|from)\s*:", re.IGNORECASE)
_HEADER_SENT = re.compile(r"^\s*\**\s*(envoye|sent|date)\s*:", re.IGNORECASE)
_ANY_MARK = re.compile(r">|ecrit|wrote|--|(de|from)\s*:", re.IGNORECASE)
"""What every quoted reply the patterns above recognise holds somewhere (folded).

A text without any of it has nothing to strip; one with it is read line by line.
"""


def _is_wrote_header(folded: list[str], index: int) -> int:
    """Return how many (folded) lines the "Le … a écrit :" header at ``index`` spans (0 if none)."""
    first = folded[index]
    if _WROTE.match(first):
        return 1
    if index + 1 < len(folded) and _WROTE_START.match(first):
        joined = first.rstrip() + " " + folded[index + 1].strip()
        if _WROTE.match(joined):
            return 2
    return 0


def strip_quoted(text: str) -> str:
    """Remove earlier replies quoted under the customer's message (procedure 5.1.5).

    Only the customer's own words qualify a contact: a standard footer of ours
    quoted back ("vous pouvez saisir le Médiateur de l'eau") must not make the
    mail sensitive. Removed: lines starting with ``>``; everything from an
    ``-----Message d'origine-----`` separator or an Outlook ``De : … Envoyé : …``
    header block; everything from a ``Le … a écrit :`` line, unless what follows
    is ``>``-quoted, in which case the customer may answer below and only the
    quoted lines go.
    """
    lines = text.splitlines()
    if _ANY_MARK.search(fold(text)) is None:
        return "\n".join(lines).strip()
    folded = [fold(line) for line in lines]
    kept: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.lstrip().startswith(">"):
            index += 1
            continue
        if _ORIGINAL.match(folded[index]):
            break
        if _HEADER_FROM.match(folded[index]) and any(
            _HEADER_SENT.match(following) for following in folded[index + 1 : index + 4]
        ):
            break
        span = _is_wrote_header(folded, index)
        if span:
            rest = [candidate for candidate in lines[index + span :] if candidate.strip()]
            if rest and rest[0].lstrip().startswith(">"):
                index += span
                continue
            break
        kept.append(line)
        index += 1
    return "\n".join(kept).strip()
