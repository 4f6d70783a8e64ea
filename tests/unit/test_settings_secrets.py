"""Secrets mounted as files (``SECRETS_DIR``) reach the settings, the environment first."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.common.settings import ServiceSettings
from services.intake_phone.settings import IntakePhoneSettings


def test_settings_read_secret_files_named_like_the_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "DATABASE_URL").write_text("postgresql+asyncpg://svc:pw@db/aiguillage\n")
    (tmp_path / "INTAKE_PHONE_GENERIC_HMAC_SECRET").write_text("from-a-file")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("INTAKE_PHONE_GENERIC_HMAC_SECRET", raising=False)

    phone = IntakePhoneSettings()

    assert phone.resolved_database_url() == "postgresql+asyncpg://svc:pw@db/aiguillage"
    assert phone.generic_hmac_secret is not None
    assert phone.generic_hmac_secret.get_secret_value() == "from-a-file"
    assert "from-a-file" not in repr(phone)


def test_the_environment_wins_over_a_secret_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "DATABASE_URL").write_text("sqlite+aiosqlite:///from-file.db")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///from-env.db")

    assert ServiceSettings().resolved_database_url() == "sqlite+aiosqlite:///from-env.db"


def test_without_secrets_dir_no_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "DATABASE_URL").write_text("sqlite+aiosqlite:///from-file.db")
    monkeypatch.delenv("SECRETS_DIR", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)

    assert ServiceSettings().resolved_database_url() != "sqlite+aiosqlite:///from-file.db"


@pytest.mark.parametrize("blank", ["", "   ", "\n"])
def test_a_blank_webhook_credential_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blank: str
) -> None:
    """An empty secrets file used to make the platform look configured, and an HMAC keyed
    with "" is anyone's to compute: every forged webhook was accepted."""
    (tmp_path / "INTAKE_PHONE_GENERIC_HMAC_SECRET").write_text(blank)
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    monkeypatch.delenv("INTAKE_PHONE_GENERIC_HMAC_SECRET", raising=False)
    monkeypatch.setenv("INTAKE_PHONE_TWILIO_BEARER_TOKEN", blank)

    with pytest.raises(ValidationError) as refused:
        IntakePhoneSettings()

    fields = {".".join(map(str, error["loc"])) for error in refused.value.errors()}
    assert {"generic_hmac_secret", "twilio_bearer_token"} <= fields
    assert "cannot be blank" in str(refused.value)
