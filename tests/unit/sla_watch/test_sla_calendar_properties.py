"""Properties of the working-day calendar and of paused deadlines (procedure 4.12)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.dossiers import DossierOpened, ThirdPartyAwaited, ThirdPartyReceived
from schemas.intake import Channel
from services.sla_watch.domain.calendar import FULL_DAY, DailyWindow, WorkingCalendar
from services.sla_watch.domain.deadlines import SlaPolicy, apply

SETTINGS = settings(max_examples=150, deadline=None, database=None)
REGIONS = st.sampled_from([None, "75", "57", "67", "68", "971", "974"])
INSTANTS = st.datetimes(
    min_value=dt.datetime(2020, 1, 1),
    max_value=dt.datetime(2034, 12, 31),
    timezones=st.just(dt.UTC),
)
WINDOWS = st.sampled_from(
    [
        FULL_DAY,
        DailyWindow(start=dt.time(8), end=dt.time(18)),
        DailyWindow(start=dt.time(8), end=dt.time(19)),
        DailyWindow(start=dt.time(9, 30), end=dt.time(12)),
    ]
)
SPANS = st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=30))


def _local_date(at: dt.datetime, calendar: WorkingCalendar) -> dt.date:
    """The calendar day of ``at`` on the region's wall clock (Paris's, or its own overseas)."""
    return at.astimezone(calendar.zone).date()


@SETTINGS
@given(region=REGIONS, start=INSTANTS, days=st.integers(min_value=0, max_value=40))
def test_sla_due_date_never_falls_on_a_weekend_or_holiday(
    region: str | None, start: dt.datetime, days: int
) -> None:
    calendar = WorkingCalendar(region)
    due = calendar.add_working_days(start, days)
    assert due.tzinfo is dt.UTC
    assert due >= start
    assert calendar.is_working_day(_local_date(due, calendar))
    assert _local_date(due, calendar).weekday() < 5
    assert calendar.holiday(_local_date(due, calendar)) is None


@SETTINGS
@given(
    region=REGIONS,
    start=INSTANTS,
    days=st.integers(min_value=0, max_value=30),
    more=st.integers(min_value=0, max_value=30),
)
def test_sla_more_working_days_never_give_an_earlier_date(
    region: str | None, start: dt.datetime, days: int, more: int
) -> None:
    calendar = WorkingCalendar(region)
    assert calendar.add_working_days(start, days + more) >= calendar.add_working_days(start, days)


@SETTINGS
@given(region=REGIONS, first=INSTANTS, delay=SPANS, days=st.integers(min_value=0, max_value=20))
def test_sla_a_later_contact_never_gets_an_earlier_due_date(
    region: str | None, first: dt.datetime, delay: dt.timedelta, days: int
) -> None:
    calendar = WorkingCalendar(region)
    assert calendar.add_working_days(first + delay, days) >= calendar.add_working_days(first, days)


@SETTINGS
@given(region=REGIONS, start=INSTANTS, days=st.integers(min_value=0, max_value=20))
def test_sla_working_days_keep_the_wall_clock_time_of_a_working_day_start(
    region: str | None, start: dt.datetime, days: int
) -> None:
    calendar = WorkingCalendar(region)
    due = calendar.add_working_days(start, days)
    if calendar.is_working_day(_local_date(start, calendar)):
        assert due.astimezone(calendar.zone).time() == start.astimezone(calendar.zone).time()


@SETTINGS
@given(region=REGIONS, start=INSTANTS, amount=SPANS, window=WINDOWS)
def test_sla_working_time_added_is_working_time_measured(
    region: str | None, start: dt.datetime, amount: dt.timedelta, window: DailyWindow
) -> None:
    calendar = WorkingCalendar(region)
    end = calendar.add_working_hours(start, amount, window)
    assert calendar.working_time_between(start, end, window) == amount
    assert calendar.in_window(end, window)
    back = calendar.subtract_working_hours(end, amount, window)
    assert calendar.working_time_between(back, end, window) == amount


@SETTINGS
@given(region=REGIONS, at=INSTANTS, window=WINDOWS)
def test_sla_window_instants_bracket_the_given_instant(
    region: str | None, at: dt.datetime, window: DailyWindow
) -> None:
    calendar = WorkingCalendar(region)
    after = calendar.next_window_instant(at, window)
    before = calendar.previous_window_instant(at, window, not_before=at - dt.timedelta(days=30))
    assert after >= at
    assert calendar.in_window(after, window)
    assert before is not None
    assert before <= at
    assert calendar.in_window(before, window)


def _opened(channel: Channel, contact: dt.datetime, region: str | None) -> DossierOpened:
    return DossierOpened(
        event_id="opened",
        dossier_id="D-prop",
        occurred_at=contact,
        item_id="item",
        channel=channel,
        contact_date=contact,
        dossier_type="X",
        kind="demande",
        urgency="normale",
        service="mtc",
        region=region,
    )


@SETTINGS
@given(
    region=REGIONS,
    channel=st.sampled_from(["email", "letter", "phone"]),
    counting=st.sampled_from(["clock_hours", "working_hours"]),
    contact=INSTANTS,
    pause_after=SPANS,
    pause_length=SPANS,
)
def test_sla_pause_and_resume_never_shorten_the_remaining_time(
    region: str | None,
    channel: Channel,
    counting: str,
    contact: dt.datetime,
    pause_after: dt.timedelta,
    pause_length: dt.timedelta,
) -> None:
    policy = SlaPolicy.model_validate({"email_counting": counting})
    state = apply(None, _opened(channel, contact, region), policy)
    assert state is not None
    assert state.due_at is not None
    due_before = state.due_at
    paused_at = contact + pause_after
    resumed_at = paused_at + pause_length
    awaited = ThirdPartyAwaited(
        event_id="awaited", dossier_id="D-prop", occurred_at=paused_at, third_party="mairie"
    )
    paused = apply(state, awaited, policy)
    assert paused is not None
    assert paused.left is not None
    received = ThirdPartyReceived(event_id="received", dossier_id="D-prop", occurred_at=resumed_at)
    resumed = apply(paused, received, policy)
    assert resumed is not None
    assert resumed.due_at is not None
    assert resumed.due_at >= due_before
    calendar = WorkingCalendar(region)
    if channel == "email" and counting == "clock_hours":
        assert paused.left == max(due_before - paused_at, dt.timedelta(0))
        assert resumed.due_at - resumed_at >= paused.left
    else:
        window = policy.working_hours if channel == "email" else FULL_DAY
        assert paused.left == calendar.working_time_between(paused_at, due_before, window)
        assert calendar.working_time_between(resumed_at, resumed.due_at, window) >= paused.left
