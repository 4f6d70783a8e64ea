"""Amounts in euros and the letter's own date, written the French way (5.1.4, 5.1.7.1).

The letter's own date ("Lyon, le 3 mars 2026") is kept as a fact only: the
contact date of a letter is its scan date J (5.1.4), never the date the
customer wrote on it.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from services.intake_scan.domain.facts import Found

__all__ = ["find_amounts", "find_letter_date", "parse_french_date"]

_AMOUNT_NUMBER = (
    r"(?P<{p}int>[0-9]{{1,3}}(?:[ .][0-9]{{3}})+|[0-9]{{1,9}})(?:[,.](?P<{p}dec>[0-9]{{1,2}}))?"
)
_AMOUNT = re.compile(
    r"(?<![0-9,.])"
    + _AMOUNT_NUMBER.format(p="a")
    + r" ?(?P<cur>€|EUR\b|euros?\b)"
    + r"|(?:€|(?<!\w)EUR\b) ?"
    + _AMOUNT_NUMBER.format(p="b")
    + r"(?![0-9])",
    re.I,
)


def find_amounts(text: str) -> tuple[Found[Decimal], ...]:
    """Find euro amounts such as "1 234,56 €", "45 euros", "1.234,56 EUR" (5.1.7.1 billing).

    Spaces or dots group thousands, a comma (or a dot before one or two
    digits) marks cents. Amounts are kept in order of appearance, repeats too.
    """
    found: list[Found[Decimal]] = []
    for match in _AMOUNT.finditer(text):
        prefix = "a" if match.group("aint") is not None else "b"
        whole = re.sub(r"[ .]", "", match.group(prefix + "int"))
        cents = (match.group(prefix + "dec") or "0").ljust(2, "0")
        if prefix == "a":
            euro_sign = match.group("cur") == "€"
            reason = "number followed by " + ("a euro sign" if euro_sign else "'euros'")
        else:
            reason = "number after a euro sign"
        found.append(Found(Decimal(f"{whole}.{cents}"), reason))
    return tuple(found)


_MONTHS = {
    "janvier": 1,
    "fevrier": 2,
    "février": 2,
    "mars": 3,
    "avril": 4,
    "mai": 5,
    "juin": 6,
    "juillet": 7,
    "aout": 8,
    "août": 8,
    "aoüt": 8,
    "septembre": 9,
    "octobre": 10,
    "novembre": 11,
    "decembre": 12,
    "décembre": 12,
}
_DATE = (
    r"(?P<day>[0-9]{1,2})(?:er|e)?[ ]?(?P<month>janvier|f[ée]vrier|mars|avril|mai|juin|juillet"
    r"|ao[uûü]t|septembre|octobre|novembre|d[ée]cembre)[ ]?(?P<year>[0-9]{4})"
    r"|(?P<nday>[0-9]{1,2})[ ]?[/.\-][ ]?(?P<nmonth>[0-9]{1,2})[ ]?[/.\-][ ]?(?P<nyear>[0-9]{4})"
)
_WEEKDAY = r"(?:(?:lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)[ ])?"
_PLACE_DATE = re.compile(
    r"^(?:fait[ ][àa][ ])?(?P<place>[^\W\d_][^\W\d_' -]*(?:[ '-][^\W\d_]+){0,5})"
    r"(?:[ ]?,[ ]?(?:le[ ])?|[ ]le[ ])" + _WEEKDAY + r"(?:" + _DATE + r")[ ]?\.?$",
    re.I | re.M,
)
_DATE_LINE = re.compile(r"^(?:le[ ])?" + _WEEKDAY + r"(?:" + _DATE + r")[ ]?\.?$", re.I | re.M)
_ANY_DATE = re.compile(_DATE, re.I)
_YEARS = range(1900, 2200)


def _to_date(match: re.Match[str]) -> dt.date | None:
    if match.group("day") is not None:
        day, year = int(match.group("day")), int(match.group("year"))
        month = _MONTHS.get(match.group("month").lower(), 0)
    else:
        day, month, year = (int(match.group(g)) for g in ("nday", "nmonth", "nyear"))
    if year not in _YEARS:
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def parse_french_date(text: str) -> dt.date | None:
    """Parse one French date, "3 mars 2026", "1er août 2026" or "03/03/2026" (5.1.4 dates)."""
    match = _ANY_DATE.search(text)
    return None if match is None else _to_date(match)


def find_letter_date(text: str) -> Found[dt.date] | None:
    """Find the date the customer wrote the letter, from its "Lyon, le 3 mars 2026" line (5.1.4).

    Only a line that holds nothing but a place and a date, or nothing but a
    date, counts: dates inside sentences ("ma facture du 12 janvier") are
    about something else.
    """
    for pattern, reason in (
        (_PLACE_DATE, "place-and-date line"),
        (_DATE_LINE, "line holding only a date"),
    ):
        for match in pattern.finditer(text):
            date = _to_date(match)
            if date is not None:
                return Found(date, reason)
    return None
