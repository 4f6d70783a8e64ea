"""No personal data in logs (procedure 7, GDPR): ids only."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.logging import scrub_personal_data


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param({"email": "jeanne.martin@example.test"}, {}, id="email-key-dropped"),
        pytest.param({"first_name": "Jeanne", "last_name": "Martin"}, {}, id="name-keys-dropped"),
        pytest.param({"text": "Bonjour, je suis Mme Martin"}, {}, id="free-text-dropped"),
        pytest.param(
            {"event": "mail from jeanne.martin@example.test failed"},
            {"event": "mail from [redacted] failed"},
            id="email-in-message-masked",
        ),
        pytest.param(
            {"detail": "rappeler le 06 12 34 56 78 ou +33612345678"},
            {"detail": "rappeler le [redacted] ou [redacted]"},
            id="phones-masked",
        ),
        pytest.param(
            {"item_id": "email:3f2a", "dossier_id": "DOS-1", "count": 3},
            {"item_id": "email:3f2a", "dossier_id": "DOS-1", "count": 3},
            id="ids-kept",
        ),
        pytest.param(
            {"reasons": ["« plainte »", "client@example.test"]},
            {"reasons": ["« plainte »", "[redacted]"]},
            id="lists-masked",
        ),
    ],
)
def test_scrub(event: dict[str, Any], expected: dict[str, Any]) -> None:
    assert dict(scrub_personal_data(None, "info", dict(event))) == expected


_TRACEBACKS = """
import logging
from services.common.logging import configure_logging, get_logger
configure_logging("INFO", "json")
try:
    raise ValueError("refused for jeanne.martin@example.test, 06 12 34 56 78")
except ValueError as error:
    logging.getLogger("faststream").exception("handler failed")
    get_logger("aiguillage.test").error("task.crashed", exc_info=error)
"""


def test_tracebacks_are_logged_in_full_and_scrubbed_on_both_logging_paths() -> None:
    # A library's logger.exception (stdlib) and our own exc_info (structlog): the text of
    # the traceback is kept, what its message quotes is masked.
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _TRACEBACKS], capture_output=True, text=True, timeout=60
    )
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert [line["event"] for line in lines] == ["handler failed", "task.crashed"]
    for line in lines:
        assert "Traceback (most recent call last)" in line["exception"]
        assert "ValueError: refused for [redacted], [redacted]" in line["exception"]
    assert "example.test" not in done.stderr
    assert "56 78" not in done.stderr


@pytest.mark.timeout(30)
def test_a_long_token_is_scrubbed_in_linear_time() -> None:
    # An exception quoting a base64 blob goes through the scrub: one 200,000-character token
    # took over a minute with a pattern tried from each of its characters (a few ms now).
    # No timing asserted: the hang guard is far above either.
    blob = "A" * 200_000
    event = {"event": f"bad payload {blob} from jeanne.martin@example.test"}
    assert scrub_personal_data(None, "error", event)["event"].endswith("from [redacted]")
