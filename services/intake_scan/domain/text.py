"""Letter text clean-up shared by the extraction rules (procedure 4.3: scanned letters).

OCR and PDF text layers write the same letter in slightly different ways:
non-breaking spaces before ``€`` and ``:``, curly apostrophes, ligatures,
decomposed accents, doubled spaces. Rules match on the normalised text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

__all__ = ["MAX_SCANNED_CHARS", "join_pages", "lines_of", "normalise"]

MAX_SCANNED_CHARS = 200_000
"""Rules read at most this many characters (about 60 dense pages); the item keeps the whole text."""

_TRANSLATE = str.maketrans(
    {
        "\u00a0": " ",  # no-break space
        "\u202f": " ",  # narrow no-break space (French typography before : ; ! ? €)
        "\u2007": " ",
        "\u2009": " ",
        "\t": " ",
        "\r": "\n",
        "\f": "\n",
        "\v": "\n",
        "\u2019": "'",
        "\u2018": "'",
        "\u02bc": "'",
        "\u00b4": "'",
        "\u2013": "-",
        "\u2010": "-",
        "\u2011": "-",
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\u00ba": "°",  # masculine ordinal, often read for the degree sign in "N°"
    }
)
_SPACES = re.compile(r" {2,}")
# OCR reads specks and edges as stray marks at the start or end of a line: "| 69003 Lyon _"
_EDGE_JUNK = " |_.:;,…'\"`~•·*—=-"


def normalise(text: str) -> str:
    """Return the letter text in the one shape the rules expect (4.3 scanned letters).

    NFC accents, plain spaces and apostrophes, no ligatures, one space between
    words, no stray OCR marks ("|", "_", "…") at either end of a line, no
    trailing spaces, ``\\n`` line ends; pages become lines.
    """
    text = unicodedata.normalize("NFC", text[:MAX_SCANNED_CHARS]).translate(_TRANSLATE)
    return "\n".join(_SPACES.sub(" ", line).strip(_EDGE_JUNK) for line in text.split("\n"))


def lines_of(text: str) -> list[str]:
    """Split normalised text into lines (blank lines kept: they separate paragraphs)."""
    return text.split("\n")


def join_pages(pages: Sequence[str]) -> str:
    """Join a letter's page texts into the item text, pages separated by a form feed (4.3)."""
    return "\n\f\n".join(page.strip("\n") for page in pages)
