"""sla_watch's settings are validated at start-up; the clocks the service can run on."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.sla_watch.adapters.clock import FileClock, OffsetClock, SystemClock, build_clock
from services.sla_watch.errors import ClockError
from services.sla_watch.settings import SlaWatchSettings


def settings(**values: Any) -> SlaWatchSettings:
    return SlaWatchSettings.model_validate(values)


def test_sla_defaults_follow_the_procedure() -> None:
    config = settings()
    assert config.policy.letter_working_days == 5
    assert config.policy.field_work_working_days == 15
    assert config.policy.email_response == dt.timedelta(hours=48)
    assert config.envelope_sender == "service.client@aiguillage.invalid"
    assert config.apology_dossier_types == ("FAC", "RDR")


def test_sla_environment_reaches_the_policy_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLA_WATCH_POLICY__LETTER_WORKING_DAYS", "6")
    monkeypatch.setenv("SLA_WATCH_POLICY__DEFAULT_REGION", "57")
    monkeypatch.setenv("SLA_WATCH_APOLOGY_DOSSIER_TYPES", "FAC, RDR ,FACTURE")
    monkeypatch.setenv("SLA_WATCH_SMTP_PASSWORD", "s3cret")
    monkeypatch.setenv("SLA_WATCH_SMTP_USER", "sla")
    config = SlaWatchSettings()
    assert config.policy.letter_working_days == 6
    assert config.policy.default_region == "57"
    assert config.apology_dossier_types == ("FAC", "RDR", "FACTURE")
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"smtp_user": "sla"}, "go together", id="user-without-password"),
        pytest.param(
            {"smtp_user": "u", "smtp_password": "p", "smtp_host": "smtp.example.fr"},
            "in clear",
            id="credentials-in-clear",
        ),
        pytest.param({"smtp_timeout_s": 30, "send_lease_s": 60}, "3 x", id="lease-too-short"),
        pytest.param({"mail_from": "Service Client"}, "address", id="bad-from"),
        pytest.param({"smtp_port": 0}, "greater than or equal", id="bad-port"),
        pytest.param({"clock_file": "/tmp/c", "clock_offset": "P1D"}, "not both", id="two-clocks"),
        pytest.param({"policy": {"default_region": "99"}}, "unknown French", id="bad-region"),
        pytest.param(
            {"policy": {"holding_lead_working_days": 5}}, "shorter", id="lead-longer-than-deadline"
        ),
    ],
)
def test_sla_bad_settings_fail_at_start_up(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        settings(**values)


def test_sla_credentials_may_go_in_clear_to_a_local_relay() -> None:
    assert settings(smtp_user="u", smtp_password="p", smtp_host="127.0.0.1").smtp_user == "u"


def test_sla_policy_file_is_validated_and_names_the_bad_entry(tmp_path: Path) -> None:
    good = tmp_path / "policy.yaml"
    good.write_text(
        "letter_working_days: 7\nemail_response: PT24H\nemail_holding_lead: PT4H\n"
        "sending_window: {start: '09:00', end: '18:00'}\n",
        encoding="utf-8",
    )
    policy = settings(policy_file=good).policy
    assert policy.letter_working_days == 7
    assert policy.email_response == dt.timedelta(hours=24)
    assert policy.sending_window.start == dt.time(9)
    bad = tmp_path / "bad.yaml"
    bad.write_text("letter_working_days: 0\nsurprise: 1\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"letter_working_days.*surprise|surprise"):
        settings(policy_file=bad)
    with pytest.raises(ValidationError, match="cannot read"):
        settings(policy_file=tmp_path / "missing.yaml")


def test_sla_file_clock_follows_the_file_and_keeps_the_last_good_instant(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    path.write_text("2026-06-08T10:00:00+02:00", encoding="utf-8")
    clock = FileClock(path)
    assert clock.now() == dt.datetime(2026, 6, 8, 8, 0, tzinfo=dt.UTC)
    temporary = tmp_path / "clock.tmp"
    temporary.write_text("2026-06-12T10:00:00+02:00", encoding="utf-8")
    os.replace(temporary, path)
    assert clock.now() == dt.datetime(2026, 6, 12, 8, 0, tzinfo=dt.UTC)
    path.write_text("garbage", encoding="utf-8")
    assert clock.now() == dt.datetime(2026, 6, 12, 8, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("content", ["2026-06-08T10:00:00", "demain"], ids=["naive", "garbage"])
def test_sla_file_clock_refuses_a_bad_file_at_start_up(tmp_path: Path, content: str) -> None:
    path = tmp_path / "clock"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ClockError):
        FileClock(path)
    with pytest.raises(ClockError):
        FileClock(tmp_path / "missing")


def test_sla_clock_is_chosen_by_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    path.write_text("2026-06-08T10:00:00Z", encoding="utf-8")
    assert isinstance(build_clock(path, dt.timedelta(0)), FileClock)
    shifted = build_clock(None, dt.timedelta(days=2))
    assert isinstance(shifted, OffsetClock)
    assert shifted.now() - SystemClock().now() > dt.timedelta(days=1, hours=23)
    assert isinstance(build_clock(None, dt.timedelta(0)), SystemClock)
