"""What every consumer group of the pipeline asks of the broker (``consumer_options``)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.common.kafka import consumer_options
from services.common.settings import ServiceSettings


def test_the_fetch_wait_comes_from_the_shared_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_FETCH_MAX_WAIT_MS", "35")

    options = consumer_options(ServiceSettings(), "aiguillage-router")

    assert options["fetch_max_wait_ms"] == 35
    assert options["group_id"] == "aiguillage-router"


def test_by_default_a_fetch_waits_far_less_than_kafkas_half_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # tansu holds every fetch for the whole wait, records or not: each hop of the
    # pipeline would add up to Kafka's default 500 ms to the intake→task latency.
    monkeypatch.delenv("KAFKA_FETCH_MAX_WAIT_MS", raising=False)

    assert consumer_options(ServiceSettings(), "g")["fetch_max_wait_ms"] <= 50


def test_a_fetch_wait_of_zero_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_FETCH_MAX_WAIT_MS", "0")

    with pytest.raises(ValidationError, match="KAFKA_FETCH_MAX_WAIT_MS"):
        ServiceSettings()
