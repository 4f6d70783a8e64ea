"""Webhook authentication per platform: HMAC-SHA256 of the raw body, or a bearer token.

A platform is configured with an HMAC secret, a bearer token, or both; a
request passes when it satisfies any configured scheme, and a platform with
neither accepts nothing. The signature header (``X-Aiguillage-Signature`` by
default) carries ``sha256=<hex>`` (or the bare hex) of HMAC-SHA256(secret,
raw body); the token comes as ``Authorization: Bearer <token>``. Every
comparison is constant-time (``hmac.compare_digest``) and a failure says
nothing about why.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from services.intake_phone.settings import IntakePhoneSettings

__all__ = ["WebhookAuth", "sign"]


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    try:
        return hmac.compare_digest(given.encode("ascii"), expected.encode("ascii"))
    except UnicodeEncodeError:
        return False


class WebhookAuth:
    """Checks a webhook request against its platform's configured credentials."""

    def __init__(self, settings: IntakePhoneSettings) -> None:
        self._header = settings.signature_header.lower()
        self._settings = settings

    def configured(self, platform: str) -> bool:
        """True when the platform has at least one credential (else every request is refused)."""
        secret, token = self._settings.credentials(platform)
        return secret is not None or token is not None

    def verify(self, platform: str, headers: Mapping[str, str], body: bytes) -> bool:
        """Say whether the request is authentic for ``platform`` (issue 6, webhook security).

        Rule: a valid HMAC-SHA256 signature of the exact body, or the exact
        bearer token, compared in constant time; no credential configured
        means no request is authentic.
        """
        secret, token = self._settings.credentials(platform)
        if secret is not None:
            given = headers.get(self._header, "").strip()
            if given.lower().startswith("sha256="):
                given = given[len("sha256=") :]
            expected = sign(secret.get_secret_value(), body)[len("sha256=") :]
            if given and _same(given.lower(), expected):
                return True
        if token is not None:
            scheme, _, value = headers.get("authorization", "").partition(" ")
            if (
                scheme.lower() == "bearer"
                and value
                and _same(value.strip(), token.get_secret_value())
            ):
                return True
        return False
