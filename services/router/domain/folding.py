"""Case, accent and apostrophe folding that remembers where each character came from."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

__all__ = ["fold", "fold_with_offsets"]

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'", "′": "'"})
_LIGATURES = {"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"}
_CHANGING = re.compile("[A-Z`\u0080-\U0010ffff]")
"""The characters folding may change: every other one (ASCII) folds to itself."""


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    ligature = _LIGATURES.get(char)
    if ligature is not None:
        return ligature
    decomposed = unicodedata.normalize("NFKD", char.translate(_APOSTROPHES))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _fold_match(match: re.Match[str]) -> str:
    return _fold_char(match.group())


def fold_with_offsets(text: str) -> tuple[str, Sequence[int]]:
    """Fold case and accents and return, for each folded character, its index in ``text``.

    Folding keeps the text searchable whatever the customer's keyboard (missing
    accents, capitals, typographic apostrophes); the offsets let a reason quote
    the customer's own words (STYLE rule 2) rather than the folded form. Each
    character is folded on its own, so only the characters ASCII does not fold
    to themselves are looked at.
    """
    if text.isascii():
        return text.translate(_APOSTROPHES).lower(), range(len(text))
    regular = True

    def fold_one(match: re.Match[str]) -> str:
        nonlocal regular
        piece = _fold_char(match.group())
        if len(piece) != 1:
            regular = False
        return piece

    folded = _CHANGING.sub(fold_one, text)
    if regular:  # every character folded to exactly one
        return folded, range(len(text))
    # a ligature ("œ" → "oe") or a lone accent (decomposed text): count per character
    offsets = [index for index, char in enumerate(text) for _ in _fold_char(char)]
    return folded, offsets


def fold(text: str) -> str:
    """Return ``text`` lower-cased, without accents, ligatures or typographic apostrophes."""
    if text.isascii():
        return text.translate(_APOSTROPHES).lower()
    return _CHANGING.sub(_fold_match, text)
