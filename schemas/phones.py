"""French telephone numbers as the contracts carry them (E.164), overseas ones included.

Trunks and forms give numbers in the national format, ``0X XX XX XX XX``, whose
first digits say where they ring (ARCEP's plan): ``0262``/``0263``/``0692``/
``0693`` Réunion (+262), ``0269``/``0639`` Mayotte (+262), ``0590``/``0690``/
``0691`` Guadeloupe and the northern islands (+590), ``0596``/``0696``/``0697``
Martinique (+596), ``0594``/``0694`` Guyane (+594). Read as metropolitan
numbers (+33) they were wrong: a Réunion mobile was stored as +33692…, its
owner never recognised (procedure 5.1.2), no SMS could reach them.
"""

from __future__ import annotations

import re
from types import MappingProxyType

__all__ = ["OVERSEAS_PREFIXES", "french_region"]

OVERSEAS_PREFIXES = MappingProxyType(
    {
        **dict.fromkeys(("0262", "0263", "0692", "0693"), "RE"),
        **dict.fromkeys(("0269", "0639"), "YT"),
        **dict.fromkeys(("0590", "0690", "0691"), "GP"),
        **dict.fromkeys(("0596", "0696", "0697"), "MQ"),
        **dict.fromkeys(("0594", "0694"), "GF"),
    }
)
"""National ``0…`` prefixes of the overseas departments, and their ``phonenumbers`` region."""

_NON_DIGITS = re.compile(r"\D")


def french_region(candidate: str) -> str:
    """The region to read a number written in the French national format with: an
    overseas department's by its prefix, else ``FR`` (international numbers carry their
    own country code, which wins whatever the region)."""
    digits = _NON_DIGITS.sub("", candidate)
    if len(digits) == 10 and digits.startswith("0") and not candidate.lstrip().startswith("+"):
        return OVERSEAS_PREFIXES.get(digits[:4], "FR")
    return "FR"
