"""The bad-input campaign's bookkeeping: inputs exercised per channel, and a stand-in tesseract.

Every campaign test reports how many malformed inputs it fed its parser
through the ``exercised`` fixture. The terminal summary lists them per
channel; when every channel's campaign ran (the whole of ``tests/fuzz``) and
the total is under ``CAMPAIGN_MINIMUM``, the session fails (issue 9: at least
1,000 malformed inputs across channels).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytesseract
import pytest

CAMPAIGN_MINIMUM = 1000
CHANNELS = frozenset(
    {
        "mime",
        "web_form",
        "scan_index",
        "ocr_text",
        "scan_pdf",
        "scan_image",
        "scan_zip",
        "phone_generic",
        "phone_ringover",
        "phone_twilio",
        "phone_asterisk",
        "contracts",
    }
)
_EXERCISED: Counter[str] = Counter()


@pytest.fixture(scope="session")
def exercised() -> Callable[[str, int], None]:
    """Record that a campaign test fed ``count`` malformed inputs to the ``channel``'s parser."""

    def record(channel: str, count: int) -> None:
        assert channel in CHANNELS, channel
        _EXERCISED[channel] += count

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List the malformed inputs exercised per channel."""
    if not _EXERCISED:
        return
    terminalreporter.section("bad-input campaign")
    for channel in sorted(_EXERCISED):
        terminalreporter.write_line(f"{channel:<16} {_EXERCISED[channel]:>6}")
    terminalreporter.write_line(f"{'total':<16} {sum(_EXERCISED.values()):>6}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail a run of the whole campaign that exercised fewer than ``CAMPAIGN_MINIMUM`` inputs."""
    total = sum(_EXERCISED.values())
    if set(_EXERCISED) == CHANNELS and total < CAMPAIGN_MINIMUM and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def no_tesseract(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Stand in for tesseract (no OCR here): every page reads as nothing; the files it got."""
    given: list[str] = []

    def data(image: Any, **_: Any) -> dict[str, list[Any]]:
        given.append(str(image))
        return {"text": [], "conf": [], "block_num": [], "par_num": [], "line_num": []}

    def osd(image: Any, **_: Any) -> dict[str, Any]:
        return {"rotate": 0, "orientation_conf": 0.0}

    monkeypatch.setattr(pytesseract, "image_to_data", data)
    monkeypatch.setattr(pytesseract, "image_to_osd", osd)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return given
