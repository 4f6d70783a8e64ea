"""Working-day calendar: French public holidays per region, Paris time, DST (procedure 4.12)."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from services.sla_watch.domain.calendar import (
    FULL_DAY,
    PARIS,
    DailyWindow,
    UnknownRegion,
    WorkingCalendar,
    holiday_subdivision,
    normalize_region,
    public_holidays,
)

OFFICE = DailyWindow(start=dt.time(8), end=dt.time(18))
SENDING = DailyWindow(start=dt.time(8), end=dt.time(19))


def paris(day: str, hour: int = 0, minute: int = 0) -> dt.datetime:
    """An aware Paris datetime from an ISO date and a wall-clock hour."""
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, minute), tzinfo=PARIS)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("67", "67", id="bas-rhin"),
        pytest.param(" 2a ", "2A", id="corse-du-sud-lowercase"),
        pytest.param("1", "01", id="ain-zero-padded"),
        pytest.param("75", "75", id="paris"),
        pytest.param("971", "971", id="guadeloupe"),
        pytest.param("988", "988", id="nouvelle-caledonie"),
        pytest.param(None, None, id="national"),
    ],
)
def test_sla_region_codes_are_normalised(code: str | None, expected: str | None) -> None:
    assert normalize_region(code) == expected


@pytest.mark.parametrize("code", ["20", "00", "96", "999", "6AE", "Moselle", "", "2C"])
def test_sla_unknown_region_is_rejected_with_its_code(code: str) -> None:
    with pytest.raises(UnknownRegion, match="unknown French department code"):
        normalize_region(code)


@pytest.mark.parametrize(
    ("region", "subdivision"),
    [
        pytest.param("57", "57", id="moselle"),
        pytest.param("67", "6AE", id="bas-rhin"),
        pytest.param("68", "6AE", id="haut-rhin"),
        pytest.param("75", None, id="paris-national"),
        pytest.param("972", "972", id="martinique"),
        pytest.param("988", "NC", id="nouvelle-caledonie"),
        pytest.param(None, None, id="no-region"),
    ],
)
def test_sla_region_maps_to_holidays_subdivision(
    region: str | None, subdivision: str | None
) -> None:
    assert holiday_subdivision(region) == subdivision


@pytest.mark.parametrize(
    ("region", "day", "holiday"),
    [
        pytest.param(None, "2026-12-25", "Noël", id="christmas-friday"),
        pytest.param(None, "2026-04-06", "Lundi de Pâques", id="easter-monday"),
        pytest.param(None, "2026-05-14", "Ascension", id="ascension-thursday"),
        pytest.param(None, "2026-05-25", "Lundi de Pentecôte", id="whit-monday"),
        pytest.param(None, "2026-07-14", "Fête nationale", id="14-july-tuesday"),
        pytest.param(None, "2026-05-01", "Fête du Travail", id="1-may-friday"),
        pytest.param(None, "2025-05-01", "Fête du Travail", id="1-may-thursday"),
        pytest.param(None, "2026-05-08", "Fête de la Victoire", id="8-may-friday"),
        pytest.param(None, "2026-04-03", None, id="good-friday-worked-nationally"),
        pytest.param("75", "2025-12-26", None, id="26-december-worked-in-paris"),
        pytest.param("57", "2026-04-03", "Vendredi saint", id="good-friday-moselle"),
        pytest.param("67", "2026-04-03", "Vendredi saint", id="good-friday-bas-rhin"),
        pytest.param("68", "2026-04-03", "Vendredi saint", id="good-friday-haut-rhin"),
        pytest.param("57", "2025-12-26", "Saint-Étienne", id="26-december-moselle"),
        pytest.param("67", "2025-12-26", "Saint-Étienne", id="26-december-bas-rhin"),
        pytest.param("68", "2025-12-26", "Saint-Étienne", id="26-december-haut-rhin"),
        pytest.param("971", "2026-05-27", "Abolition de l'esclavage", id="guadeloupe-abolition"),
    ],
)
def test_sla_public_holidays_by_region(region: str | None, day: str, holiday: str | None) -> None:
    calendar = WorkingCalendar(region)
    date = dt.date.fromisoformat(day)
    assert calendar.holiday(date) == holiday
    assert calendar.is_working_day(date) is (holiday is None)


def test_sla_weekends_are_never_working_days() -> None:
    calendar = WorkingCalendar()
    assert not calendar.is_working_day(dt.date(2026, 6, 13))  # Saturday
    assert not calendar.is_working_day(dt.date(2026, 6, 14))  # Sunday
    assert calendar.is_working_day(dt.date(2026, 6, 15))


def test_sla_holiday_sets_are_cached_per_subdivision_and_year() -> None:
    assert public_holidays("67", 2026) is public_holidays("68", 2026)
    assert public_holidays("67", 2026) is not public_holidays("67", 2027)
    assert public_holidays("67", 2026) is not public_holidays("75", 2026)
    assert public_holidays("75", 2026) is public_holidays(None, 2026)


@pytest.mark.parametrize(
    ("region", "start", "days", "expected"),
    [
        pytest.param(None, paris("2026-12-23", 10), 2, paris("2026-12-28", 10), id="christmas"),
        pytest.param(
            None, paris("2025-12-24", 10), 1, paris("2025-12-26", 10), id="xmas-26-worked"
        ),
        pytest.param("67", paris("2025-12-24", 10), 1, paris("2025-12-29", 10), id="xmas-alsace"),
        pytest.param(None, paris("2026-04-02", 10), 1, paris("2026-04-03", 10), id="good-friday"),
        pytest.param(
            "57", paris("2026-04-02", 10), 1, paris("2026-04-07", 10), id="easter-moselle"
        ),
        pytest.param(None, paris("2026-04-02", 10), 2, paris("2026-04-07", 10), id="easter-monday"),
        pytest.param(None, paris("2026-05-13", 10), 1, paris("2026-05-15", 10), id="ascension"),
        pytest.param(None, paris("2026-05-22", 10), 1, paris("2026-05-26", 10), id="whit-monday"),
        pytest.param(None, paris("2026-07-13", 10), 1, paris("2026-07-15", 10), id="14-july"),
        pytest.param(None, paris("2026-04-30", 10), 1, paris("2026-05-04", 10), id="1-may-friday"),
        pytest.param(
            None, paris("2026-05-11", 9), 5, paris("2026-05-19", 9), id="letter-ascension"
        ),
        pytest.param(
            None, paris("2026-07-06", 9), 15, paris("2026-07-28", 9), id="field-work-july"
        ),
        pytest.param(None, paris("2026-06-13", 15), 0, paris("2026-06-15"), id="saturday-plus-0"),
        pytest.param(None, paris("2026-06-13", 15), 1, paris("2026-06-16"), id="saturday-plus-1"),
        pytest.param(None, paris("2026-05-14", 11), 1, paris("2026-05-18"), id="on-a-holiday"),
        pytest.param(None, paris("2026-06-08", 10), 0, paris("2026-06-08", 10), id="zero-days"),
    ],
)
def test_sla_add_working_days(
    region: str | None, start: dt.datetime, days: int, expected: dt.datetime
) -> None:
    result = WorkingCalendar(region).add_working_days(start, days)
    assert result == expected
    assert result.tzinfo is dt.UTC


@pytest.mark.parametrize(
    ("start", "expected", "expected_utc_hour"),
    [
        pytest.param(paris("2026-03-27", 10), paris("2026-03-30", 10), 8, id="spring-forward"),
        pytest.param(paris("2026-10-23", 10), paris("2026-10-26", 10), 9, id="fall-back"),
    ],
)
def test_sla_working_days_keep_paris_wall_time_across_dst(
    start: dt.datetime, expected: dt.datetime, expected_utc_hour: int
) -> None:
    result = WorkingCalendar().add_working_days(start.astimezone(dt.UTC), 1)
    assert result == expected
    assert result.hour == expected_utc_hour


def test_sla_working_days_reject_negative_counts_and_naive_datetimes() -> None:
    calendar = WorkingCalendar()
    with pytest.raises(ValueError, match="negative"):
        calendar.add_working_days(paris("2026-06-08"), -1)
    with pytest.raises(ValueError, match="naive"):
        calendar.add_working_days(dt.datetime(2026, 6, 8, 10), 1)


@pytest.mark.parametrize(
    ("start", "amount", "window", "expected"),
    [
        pytest.param(
            paris("2026-06-12", 16), 4, OFFICE, paris("2026-06-15", 10), id="over-weekend"
        ),
        pytest.param(paris("2026-06-15", 6), 1, OFFICE, paris("2026-06-15", 9), id="before-open"),
        pytest.param(paris("2026-06-12", 20), 1, OFFICE, paris("2026-06-15", 9), id="after-close"),
        pytest.param(paris("2026-06-12", 16), 2, OFFICE, paris("2026-06-15", 8), id="end-boundary"),
        pytest.param(paris("2026-06-11"), 48, FULL_DAY, paris("2026-06-15"), id="48h-full-days"),
        pytest.param(paris("2026-05-13", 17), 2, OFFICE, paris("2026-05-15", 9), id="ascension"),
        pytest.param(paris("2026-03-27", 17), 3, OFFICE, paris("2026-03-30", 10), id="dst-spring"),
    ],
)
def test_sla_add_working_hours(
    start: dt.datetime, amount: int, window: DailyWindow, expected: dt.datetime
) -> None:
    assert (
        WorkingCalendar().add_working_hours(start, dt.timedelta(hours=amount), window) == expected
    )


@pytest.mark.parametrize(
    ("end", "amount", "window", "expected"),
    [
        pytest.param(paris("2026-06-15", 10), 24, FULL_DAY, paris("2026-06-12", 10), id="one-day"),
        pytest.param(
            paris("2026-05-15", 10), 24, FULL_DAY, paris("2026-05-13", 10), id="ascension"
        ),
        pytest.param(paris("2026-06-15", 10), 6, OFFICE, paris("2026-06-12", 14), id="office"),
        pytest.param(paris("2026-06-15", 10), 0, FULL_DAY, paris("2026-06-15", 10), id="zero"),
    ],
)
def test_sla_subtract_working_hours(
    end: dt.datetime, amount: int, window: DailyWindow, expected: dt.datetime
) -> None:
    calendar = WorkingCalendar()
    assert calendar.subtract_working_hours(end, dt.timedelta(hours=amount), window) == expected


def test_sla_working_time_between() -> None:
    calendar = WorkingCalendar()
    friday, monday = paris("2026-06-12", 16), paris("2026-06-15", 10)
    assert calendar.working_time_between(friday, monday, OFFICE) == dt.timedelta(hours=4)
    assert calendar.working_time_between(monday, friday, OFFICE) == dt.timedelta(0)
    wednesday = paris("2026-06-10", 10)
    assert calendar.working_time_between(wednesday, monday, FULL_DAY) == dt.timedelta(days=3)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param(paris("2026-06-13", 10), paris("2026-06-15", 8), id="saturday"),
        pytest.param(paris("2026-06-12", 19, 30), paris("2026-06-15", 8), id="friday-evening"),
        pytest.param(paris("2026-06-16", 7), paris("2026-06-16", 8), id="early-morning"),
        pytest.param(paris("2026-06-16", 12), paris("2026-06-16", 12), id="inside"),
        pytest.param(paris("2026-06-16", 19), paris("2026-06-16", 19), id="closing-instant"),
        pytest.param(paris("2026-05-14", 10), paris("2026-05-15", 8), id="ascension"),
        pytest.param(paris("2026-03-29", 2, 30), paris("2026-03-30", 8), id="dst-sunday"),
    ],
)
def test_sla_next_window_instant(at: dt.datetime, expected: dt.datetime) -> None:
    calendar = WorkingCalendar()
    assert calendar.next_window_instant(at, SENDING) == expected
    assert calendar.in_window(expected, SENDING)


@pytest.mark.parametrize(
    ("at", "not_before", "expected"),
    [
        pytest.param(
            paris("2026-06-14", 4), paris("2026-06-12"), paris("2026-06-12", 19), id="sun"
        ),
        pytest.param(paris("2026-06-14", 4), paris("2026-06-12", 20), None, id="floor"),
        pytest.param(
            paris("2026-06-16", 12), paris("2026-06-16"), paris("2026-06-16", 12), id="in"
        ),
        pytest.param(paris("2026-06-16", 7), paris("2026-06-01"), paris("2026-06-15", 19), id="am"),
        pytest.param(
            paris("2026-05-15", 7), paris("2026-05-01"), paris("2026-05-13", 19), id="asc"
        ),
    ],
)
def test_sla_previous_window_instant(
    at: dt.datetime, not_before: dt.datetime, expected: dt.datetime | None
) -> None:
    calendar = WorkingCalendar()
    assert calendar.previous_window_instant(at, SENDING, not_before=not_before) == expected


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        pytest.param(paris("2026-06-15", 8), True, id="opening"),
        pytest.param(paris("2026-06-15", 19), True, id="closing"),
        pytest.param(paris("2026-06-15", 19, 1), False, id="after-closing"),
        pytest.param(paris("2026-06-15", 7, 59), False, id="before-opening"),
        pytest.param(paris("2026-06-13", 12), False, id="saturday"),
        pytest.param(paris("2026-07-14", 12), False, id="14-july"),
    ],
)
def test_sla_in_window(at: dt.datetime, inside: bool) -> None:
    assert WorkingCalendar().in_window(at, SENDING) is inside


@pytest.mark.parametrize(
    ("region", "at", "expected"),
    [
        pytest.param(None, paris("2026-06-12", 10), paris("2026-06-12", 19), id="same-day"),
        pytest.param(None, paris("2026-06-12", 20), paris("2026-06-15", 19), id="after-hours"),
        pytest.param(None, paris("2026-06-13", 10), paris("2026-06-15", 19), id="saturday"),
        pytest.param(None, paris("2026-05-13", 19), paris("2026-05-15", 19), id="eve-of-holiday"),
        pytest.param("57", paris("2026-04-02", 20), paris("2026-04-07", 19), id="easter-moselle"),
    ],
)
def test_sla_end_of_working_day(region: str | None, at: dt.datetime, expected: dt.datetime) -> None:
    assert WorkingCalendar(region).end_of_working_day(at, dt.time(19)) == expected


def test_sla_calendar_normalises_its_region() -> None:
    assert WorkingCalendar(" 2b").region == "2B"
    with pytest.raises(UnknownRegion):
        WorkingCalendar("99")


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        pytest.param(dt.time(19), dt.time(8), "not after its start", id="reversed"),
        pytest.param(dt.time(8), dt.time(8), "not after its start", id="empty"),
        pytest.param(dt.time(8, tzinfo=dt.UTC), dt.time(19), "without a time zone", id="aware"),
    ],
)
def test_sla_daily_window_validation(start: dt.time, end: dt.time, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DailyWindow(start=start, end=end)


def test_sla_daily_window_lengths() -> None:
    assert FULL_DAY.length == dt.timedelta(days=1)
    assert SENDING.length == dt.timedelta(hours=11)
    assert DailyWindow.model_validate({"start": "08:30", "end": "00:00"}).length == dt.timedelta(
        hours=15, minutes=30
    )


def _local(region: str, day: str, hour: int) -> dt.datetime:
    zone = WorkingCalendar(region).zone
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), tzinfo=zone)


@pytest.mark.parametrize(
    ("region", "zone"),
    [
        pytest.param(None, "Europe/Paris", id="national"),
        pytest.param("2A", "Europe/Paris", id="corsica"),
        pytest.param("971", "America/Guadeloupe", id="guadeloupe"),
        pytest.param("974", "Indian/Reunion", id="reunion"),
        pytest.param("988", "Pacific/Noumea", id="new-caledonia"),
    ],
)
def test_sla_each_region_keeps_its_own_wall_clock(region: str | None, zone: str) -> None:
    assert str(WorkingCalendar(region).zone) == zone


def test_sla_overseas_windows_and_days_are_local() -> None:
    """A holding mail to Guadeloupe goes out in Guadeloupe's sending window (it used to be
    Paris's: 02:00 local), a Réunion day ends at 19:00 Réunion time (4.13)."""
    guadeloupe = WorkingCalendar("971")
    assert guadeloupe.in_window(_local("971", "2026-06-15", 18), SENDING)  # 00:00 in Paris
    assert not guadeloupe.in_window(_local("971", "2026-06-15", 2), SENDING)  # 08:00 in Paris
    assert guadeloupe.next_window_instant(_local("971", "2026-06-15", 2), SENDING) == _local(
        "971", "2026-06-15", 8
    )
    # 27 May (abolition of slavery) is Guadeloupe's holiday on Guadeloupe's calendar day
    assert guadeloupe.add_working_days(_local("971", "2026-05-26", 20), 1) == _local(
        "971", "2026-05-28", 20
    )
    reunion = WorkingCalendar("974")
    assert reunion.end_of_working_day(_local("974", "2026-06-15", 10), dt.time(19)) == (
        _local("974", "2026-06-15", 19)
    )
