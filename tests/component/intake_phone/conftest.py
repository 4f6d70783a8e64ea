"""Fixtures of intake_phone's component tests: a clock the test moves, the service on a store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from services.common.store import Store
from services.intake_phone.metrics import PhoneMetrics
from services.intake_phone.service import CallPolicy, PhoneService
from services.intake_phone.testing import Clock

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def make_service(store: Store, clock: Clock) -> Callable[..., PhoneService]:
    """A service over the test's store (60 s grace, 1 h max open); call again to 'restart'."""

    def make(own_numbers: tuple[str, ...] = (), settle_s: float = 0) -> PhoneService:
        policy = CallPolicy(
            grace=dt.timedelta(seconds=60),
            max_open=dt.timedelta(hours=1),
            settle=dt.timedelta(seconds=settle_s),
            own_numbers=own_numbers,
            out_of_perimeter_codes=("HORS_PERIMETRE",),
        )
        return PhoneService(store, policy, PhoneMetrics(), clock=clock, retry_max_s=5)

    return make
