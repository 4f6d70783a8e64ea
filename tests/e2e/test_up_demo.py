"""``make run``: the embedded default starts, routes the demo contacts, prints them and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.timeout(240)]


def test_up_demo_routes_every_sample_contact(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "LOG_LEVEL"}
    }
    env["COLUMNS"] = "200"
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "up", "--demo", "--var", str(tmp_path / "var")],
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Dossiers (8/8 contacts routed)" in result.stdout
    for expected in (
        "FUITE",
        "RDR",
        "prioritise_multicontact",
        "review_perimeter",
        "sensitive_mail",
    ):
        assert expected in result.stdout
    assert (tmp_path / "var" / "demo.db").exists()
    # Demo data is synthetic, and even so no address or phone number reaches the logs.
    assert "@example.test" not in result.stderr
    assert "+3361234" not in result.stderr
