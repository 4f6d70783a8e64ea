"""``make run``: the embedded default starts, routes the demo contacts, prints them and exits 0."""

from __future__ import annotations

import os
import re
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
    routed = re.search(r"Dossiers \((\d+)/(\d+) contacts routed\)", result.stdout)
    assert routed is not None, result.stdout[-3000:]
    # 8 normalised contacts + 2 mails (Maildir) + 1 OCR letter + the in-perimeter sample calls
    assert int(routed.group(1)) == int(routed.group(2)) >= 12
    for expected in (
        "FUITE",
        "RDR",
        "prioritise_multicontact",
        "review_perimeter",
        "sensitive_mail",
    ):
        assert expected in result.stdout
    for channel in ("│ email ", "│ letter ", "│ phone "):
        assert channel in result.stdout
    assert "holding mail" in result.stdout
    assert (tmp_path / "var" / "demo" / "aiguillage.db").exists()
    assert list((tmp_path / "var" / "demo" / "scans" / "archive").rglob("*.png"))
    # Demo data is synthetic, and even so no address or phone number reaches the logs.
    assert "@example.test" not in result.stderr
    assert "+3361234" not in result.stderr
