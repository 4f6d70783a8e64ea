"""Working-day calendar of a French region, in Europe/Paris time (procedure 4.12).

Working days are Monday to Friday minus the public holidays that the
``holidays`` library knows for the region's department: the national list,
plus Good Friday and 26 December in Alsace-Moselle (57, 67, 68: subdivisions
``57`` and ``6AE``), plus the overseas departments' own days. Public methods
take aware datetimes and return UTC; internally they count in Paris wall-clock
time, so "one working day later" keeps the local hour across daylight-saving
changes (which in France always fall on a Sunday, never on a working day).

Working time is measured against a daily window (``DailyWindow``): a working
day contributes the part of the window it covers. With the full-day window one
working day is 24 wall-clock hours, which is how ``add_working_days`` counts.
A result that lands exactly on the end of a working segment is moved to the
start of the next one, so that a due date always falls on a working day.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Self
from zoneinfo import ZoneInfo

from holidays import country_holidays
from pydantic import BaseModel, ConfigDict, model_validator

__all__ = [
    "FULL_DAY",
    "PARIS",
    "DailyWindow",
    "UnknownRegion",
    "WorkingCalendar",
    "format_paris",
    "holiday_subdivision",
    "normalize_region",
    "public_holidays",
    "region_zone",
]

PARIS = ZoneInfo("Europe/Paris")
_DAY = dt.timedelta(days=1)
_MAX_DAYS = 3660  # ten years: no region has that many consecutive non-working days
_METRO = re.compile(r"^(0[1-9]|1\d|[3-8]\d|9[0-5]|2[1-9]|2A|2B)$")
_SUBDIVISIONS: Mapping[str, str] = MappingProxyType(
    {
        "57": "57",  # Moselle: Good Friday, 26 December
        "67": "6AE",  # Bas-Rhin (Collectivité européenne d'Alsace)
        "68": "6AE",  # Haut-Rhin
        "971": "971",
        "972": "972",
        "973": "973",
        "974": "974",
        "976": "976",
        "975": "PM",
        "977": "BL",
        "978": "MF",
        "984": "TF",
        "986": "WF",
        "987": "PF",
        "988": "NC",
    }
)


# Overseas regions keep their own wall clock: a sending window, a working day and
# the 4.13 end of day are theirs, not Paris's (Réunion is 2 or 3 hours ahead, the
# Antilles 5 or 6 behind). Every other region is on Paris time.
_ZONES: Mapping[str, ZoneInfo] = MappingProxyType(
    {
        "971": ZoneInfo("America/Guadeloupe"),
        "972": ZoneInfo("America/Martinique"),
        "973": ZoneInfo("America/Cayenne"),
        "974": ZoneInfo("Indian/Reunion"),
        "975": ZoneInfo("America/Miquelon"),
        "976": ZoneInfo("Indian/Mayotte"),
        "977": ZoneInfo("America/St_Barthelemy"),
        "978": ZoneInfo("America/Marigot"),
        "984": ZoneInfo("Indian/Kerguelen"),
        "986": ZoneInfo("Pacific/Wallis"),
        "987": ZoneInfo("Pacific/Tahiti"),
        "988": ZoneInfo("Pacific/Noumea"),
    }
)


def region_zone(region: str | None) -> ZoneInfo:
    """The wall clock of a region: its own overseas, Paris's everywhere else."""
    normalized = normalize_region(region)
    return PARIS if normalized is None else _ZONES.get(normalized, PARIS)


class UnknownRegion(ValueError):
    """A region is not a French department code this calendar knows."""


def normalize_region(code: str | None) -> str | None:
    """Validate a French department code and return it in canonical form.

    Rule (4.12: working days follow the region's public holidays): a region is a
    metropolitan department (``01``–``95``, ``2A``, ``2B``; a single digit is
    zero-padded) or an overseas one (``971``–``978``, ``984``, ``986``–``988``).
    ``None`` means the national calendar. Anything else raises ``UnknownRegion``,
    naming the bad code, so that settings fail at start-up.
    """
    if code is None:
        return None
    value = code.strip().upper()
    if len(value) == 1 and value.isdigit():
        value = "0" + value
    if _METRO.match(value) or value in _SUBDIVISIONS:
        return value
    raise UnknownRegion(f"unknown French department code {code!r}")


def holiday_subdivision(region: str | None) -> str | None:
    """Return the ``holidays.France`` subdivision whose holidays apply to a region.

    Rule (4.12): Moselle (57) is subdivision ``57``; Bas-Rhin and Haut-Rhin
    (67, 68) are ``6AE`` (Alsace); overseas departments and collectivities map to
    their own subdivision; every other department uses the national list (None).
    """
    normalized = normalize_region(region)
    return None if normalized is None else _SUBDIVISIONS.get(normalized)


@functools.lru_cache(maxsize=512)
def _holidays(subdivision: str | None, year: int) -> Mapping[dt.date, str]:
    # language is explicit so that holiday names never depend on the environment
    days = country_holidays("FR", subdiv=subdivision, years=year, language="fr")
    return MappingProxyType(dict(days.items()))


def public_holidays(region: str | None, year: int) -> Mapping[dt.date, str]:
    """Return the public holidays (date → French name) of a region for one year.

    Rule (4.12): the holidays of ``holidays.France`` for the region's
    subdivision. The sets are cached per (subdivision, year), so 67 and 68 share
    one entry; the returned mapping is read-only.
    """
    return _holidays(holiday_subdivision(region), year)


class DailyWindow(BaseModel):
    """A daily stretch of Paris wall-clock time, e.g. the 08:00–19:00 sending window.

    The window is closed: both ``start`` and ``end`` belong to it. An ``end`` of
    00:00 means midnight at the end of the day, so 00:00–00:00 is the whole day.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: dt.time
    end: dt.time

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window times are Paris wall-clock times, without a time zone")
        if self.end_offset <= self.start_offset:
            raise ValueError(f"window end {self.end} is not after its start {self.start}")
        return self

    @property
    def start_offset(self) -> dt.timedelta:
        """Time from midnight to the window's start."""
        return _offset(self.start)

    @property
    def end_offset(self) -> dt.timedelta:
        """Time from midnight to the window's end (24 h for an end of 00:00)."""
        return _DAY if self.end == dt.time(0) else _offset(self.end)

    @property
    def length(self) -> dt.timedelta:
        """How much working time one working day contributes through this window."""
        return self.end_offset - self.start_offset


def _offset(value: dt.time) -> dt.timedelta:
    return dt.timedelta(
        hours=value.hour, minutes=value.minute, seconds=value.second, microseconds=value.microsecond
    )


FULL_DAY = DailyWindow(start=dt.time(0), end=dt.time(0))


def format_paris(at: dt.datetime) -> str:
    """Format an instant as Paris wall-clock time for reasons, e.g. ``2026-05-11 10:00``."""
    return at.astimezone(PARIS).strftime("%Y-%m-%d %H:%M")


def _wall(at: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()}: aware datetimes only")
    return at.astimezone(zone).replace(tzinfo=None)


def _utc(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return wall.replace(tzinfo=zone).astimezone(dt.UTC)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0))


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """Working days and working time of one region (None: the national calendar), on the
    region's wall clock (Paris time, or an overseas region's own: ``region_zone``)."""

    region: str | None = None
    zone: ZoneInfo = field(default=PARIS, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "region", normalize_region(self.region))
        object.__setattr__(self, "zone", region_zone(self.region))

    def holiday(self, day: dt.date) -> str | None:
        """Return the public holiday's French name on ``day``, or None.

        Rule (4.12): holidays of the region's ``holidays.France`` subdivision.
        """
        return public_holidays(self.region, day.year).get(day)

    def is_working_day(self, day: dt.date) -> bool:
        """Tell whether ``day`` is a working day: Monday–Friday and not a public holiday (4.12)."""
        return day.weekday() < 5 and day not in public_holidays(self.region, day.year)

    def working_day_on_or_after(self, day: dt.date) -> dt.date:
        """Return ``day`` if it is a working day, else the next working day (4.12)."""
        for _ in range(_MAX_DAYS):
            if self.is_working_day(day):
                return day
            day += _DAY
        raise ValueError(f"no working day within {_MAX_DAYS} days of {day}")

    def add_working_days(self, start: dt.datetime, days: int) -> dt.datetime:
        """Return the instant ``days`` working days after ``start``, in UTC.

        Rule (4.12, "N jours ouvrés"): the same wall-clock time on the N-th
        working day after the start's day; a start on a non-working day counts
        from 00:00 of the next working day. Correct across daylight-saving
        changes: Friday 10:00 CET plus one working day is Monday 10:00 CEST.
        """
        if days < 0:
            raise ValueError(f"cannot add a negative number of working days ({days})")
        return self.add_working_hours(start, days * _DAY, FULL_DAY)

    def add_working_hours(
        self, start: dt.datetime, amount: dt.timedelta, window: DailyWindow
    ) -> dt.datetime:
        """Return the instant when ``amount`` of working time has elapsed since ``start``.

        Rule (4.12, optional "48 h ouvrées" mode): only the part of each working
        day inside ``window`` counts. A zero amount gives the next working
        instant; a result on the end of a working segment moves to the start of
        the next segment. Returns UTC.
        """
        if amount < dt.timedelta(0):
            raise ValueError(f"cannot add negative working time ({amount})")
        remaining = amount
        for seg_start, seg_end in self._segments_forward(_wall(start, self.zone), window):
            if remaining < seg_end - seg_start:
                return _utc(seg_start + remaining, self.zone)
            remaining -= seg_end - seg_start
        raise AssertionError("unreachable: _segments_forward raises first")  # pragma: no cover

    def subtract_working_hours(
        self, end: dt.datetime, amount: dt.timedelta, window: DailyWindow
    ) -> dt.datetime:
        """Return the instant ``amount`` of working time before ``end``, in UTC.

        Rule (4.12, holding-mail lead time): the mirror of ``add_working_hours``;
        "one working day before Monday 10:00" is Friday 10:00 with ``FULL_DAY``.
        """
        if amount < dt.timedelta(0):
            raise ValueError(f"cannot subtract negative working time ({amount})")
        remaining = amount
        for seg_start, seg_end in self._segments_backward(_wall(end, self.zone), window):
            if remaining <= seg_end - seg_start:
                return _utc(seg_end - remaining, self.zone)
            remaining -= seg_end - seg_start
        raise AssertionError("unreachable: _segments_backward raises first")  # pragma: no cover

    def working_time_between(
        self, start: dt.datetime, end: dt.datetime, window: DailyWindow
    ) -> dt.timedelta:
        """Return the working time inside ``window`` from ``start`` to ``end`` (0 if end ≤ start).

        Rule (4.12, third-party pause): this is the "time left" that a paused
        deadline keeps and gets back when the clock restarts.
        """
        wall_start, wall_end = _wall(start, self.zone), _wall(end, self.zone)
        total = dt.timedelta(0)
        if wall_end <= wall_start:
            return total
        for seg_start, seg_end in self._segments_forward(wall_start, window):
            if seg_start >= wall_end:
                break
            total += min(seg_end, wall_end) - seg_start
        return total

    def next_window_instant(self, at: dt.datetime, window: DailyWindow) -> dt.datetime:
        """Return the first instant at or after ``at`` inside ``window`` on a working day.

        Rule (4.12, holding mails go out within a sending window on working
        days): ``at`` itself when it already is inside, else the window's next
        opening. Returns UTC.
        """
        for seg_start, _seg_end in self._segments_forward(_wall(at, self.zone), window):
            return _utc(seg_start, self.zone)
        raise AssertionError("unreachable: _segments_forward raises first")  # pragma: no cover

    def previous_window_instant(
        self, at: dt.datetime, window: DailyWindow, *, not_before: dt.datetime
    ) -> dt.datetime | None:
        """Return the last instant at or before ``at`` inside ``window`` on a working day.

        Rule (4.12, holding mail moved earlier when no slot remains before the
        deadline): ``at`` itself when inside, else the close of the previous
        window; None when that instant is before ``not_before``. Returns UTC.
        """
        floor = _wall(not_before, self.zone)
        for _seg_start, seg_end in self._segments_backward(
            _wall(at, self.zone), window, floor=floor
        ):
            return _utc(seg_end, self.zone)
        return None

    def in_window(self, at: dt.datetime, window: DailyWindow) -> bool:
        """Tell whether ``at`` is inside ``window`` (both ends included) on a working day (4.12)."""
        wall = _wall(at, self.zone)
        since_midnight = wall - _midnight(wall.date())
        closes_yesterday = since_midnight == dt.timedelta(0) and window.end_offset == _DAY
        if closes_yesterday and self.is_working_day(wall.date() - _DAY):
            return True
        return (
            self.is_working_day(wall.date())
            and window.start_offset <= since_midnight <= window.end_offset
        )

    def end_of_working_day(self, at: dt.datetime, day_end: dt.time) -> dt.datetime:
        """Return the end (``day_end``, the region's time) of the working day ``at`` belongs to.

        Rule (4.13, a complaint not resolved within the day): the same day when
        ``at`` is a working day before ``day_end``; otherwise the next working
        day's ``day_end``. Returns UTC.
        """
        wall = _wall(at, self.zone)
        day = wall.date()
        if not self.is_working_day(day) or wall.time() >= day_end:
            day = self.working_day_on_or_after(day + _DAY)
        return _utc(dt.datetime.combine(day, day_end), self.zone)

    def _segments_forward(
        self, wall: dt.datetime, window: DailyWindow
    ) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Working segments (wall time) from ``wall`` on; the first may be cut or empty."""
        day = wall.date()
        for _ in range(_MAX_DAYS):
            if self.is_working_day(day):
                seg_start = max(_midnight(day) + window.start_offset, wall)
                seg_end = _midnight(day) + window.end_offset
                if seg_start <= seg_end:
                    yield seg_start, seg_end
            day += _DAY
        raise ValueError(f"no working day within {_MAX_DAYS} days of {wall.date()}")

    def _segments_backward(
        self, wall: dt.datetime, window: DailyWindow, *, floor: dt.datetime | None = None
    ) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Working segments (wall time) before ``wall``, latest first; stops at ``floor``."""
        day = wall.date()
        for _ in range(_MAX_DAYS):
            if floor is not None and _midnight(day) + _DAY < floor:
                return
            if self.is_working_day(day):
                seg_start = _midnight(day) + window.start_offset
                seg_end = min(_midnight(day) + window.end_offset, wall)
                if floor is not None and seg_end < floor:
                    return
                if seg_start <= seg_end:
                    yield seg_start, seg_end
            day -= _DAY
        raise ValueError(f"no working day within {_MAX_DAYS} days before {wall.date()}")
