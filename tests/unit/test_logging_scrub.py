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
