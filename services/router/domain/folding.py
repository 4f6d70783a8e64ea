"""Case, accent and apostrophe folding that remembers where each character came from."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import lru_cache

__all__ = ["fold", "fold_with_offsets"]

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'", "′": "'"})
_LIGATURES = {"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"}


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    ligature = _LIGATURES.get(char)
    if ligature is not None:
        return ligature
    decomposed = unicodedata.normalize("NFKD", char.translate(_APOSTROPHES))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def fold_with_offsets(text: str) -> tuple[str, Sequence[int]]:
    """Fold case and accents and return, for each folded character, its index in ``text``.

    Folding keeps the text searchable whatever the customer's keyboard (missing
    accents, capitals, typographic apostrophes); the offsets let a reason quote
    the customer's own words (STYLE rule 2) rather than the folded form.
    """
    if text.isascii():
        return text.translate(_APOSTROPHES).lower(), range(len(text))
    pieces = [_fold_char(char) for char in text]
    folded = "".join(pieces)
    if len(folded) == len(text) and "" not in pieces:  # every character folded to one
        return folded, range(len(text))
    offsets = [index for index, piece in enumerate(pieces) for _ in piece]
    return folded, offsets


def fold(text: str) -> str:
    """Return ``text`` lower-cased, without accents, ligatures or typographic apostrophes."""
    return fold_with_offsets(text)[0]
