"""``aiguillage sla due``: when is a contact due, and when does its holding mail go out."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from services.sla_watch.cli import cli

RUNNER = CliRunner()


def test_sla_due_prints_deadline_and_holding_mail_in_paris_time() -> None:
    result = RUNNER.invoke(cli, ["due", "--channel", "letter", "--received", "2026-06-08T10:00"])
    assert result.exit_code == 0, result.output
    assert "2026-06-15 10:00 (Europe/Paris)  [5wd]" in result.output
    assert "2026-06-12 10:00 (Europe/Paris)" in result.output


@pytest.mark.parametrize(
    ("args", "due", "mail"),
    [
        pytest.param(
            ["--channel", "email", "--received", "2026-06-09T10:00:00+02:00"],
            "2026-06-11T10:00:00+02:00",
            "2026-06-11T08:00:00+02:00",
            id="email-48h",
        ),
        pytest.param(
            ["--channel", "letter", "--received", "2026-04-02T10:00", "--field-work"],
            "2026-04-24T10:00:00+02:00",
            "2026-04-23T10:00:00+02:00",
            id="field-work-national",
        ),
        pytest.param(
            ["--channel=letter", "--received=2026-04-02T10:00", "--field-work", "--region=57"],
            "2026-04-27T10:00:00+02:00",
            "2026-04-24T10:00:00+02:00",
            id="field-work-moselle-good-friday",
        ),
    ],
)
def test_sla_due_json(args: list[str], due: str, mail: str) -> None:
    result = RUNNER.invoke(cli, ["due", *args, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["due_at_paris"] == due
    assert document["holding_mail_at_paris"] == mail


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--channel", "letter", "--received", "hier"], id="bad-date"),
        pytest.param(["--channel", "fax", "--received", "2026-06-08T10:00"], id="bad-channel"),
        pytest.param(
            ["--channel", "letter", "--received", "2026-06-08T10:00", "--region", "99"],
            id="bad-region",
        ),
    ],
)
def test_sla_due_rejects_bad_input(args: list[str]) -> None:
    result = RUNNER.invoke(cli, ["due", *args])
    assert result.exit_code == 2
