"""The French holding mail rendered from its Jinja2 templates (4.11, 4.12, 5.1.1, 5.1.7)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from email import policy
from email.parser import BytesParser
from email.policy import SMTP
from zoneinfo import ZoneInfo

import pytest

from services.sla_watch.adapters.composer import MailComposer, french_date, message_id_for
from services.sla_watch.domain import PARIS, HoldingMailFacts

NOW = dt.datetime(2026, 6, 12, 10, 0, tzinfo=PARIS)


def facts(*, apologies: bool, customer_ref: str | None = "200000001") -> HoldingMailFacts:
    return HoldingMailFacts(
        dossier_id="DOS-ABC",
        deadline_id="DOS-ABC:5wd",
        customer_ref=customer_ref,
        received_at=dt.datetime(2026, 6, 1, 9, 0, tzinfo=PARIS),
        due_at=dt.datetime(2026, 6, 15, 8, 0, tzinfo=dt.UTC),
        apologies=apologies,
        reasons=("réclamation",) if apologies else (),
    )


@pytest.mark.parametrize(
    ("at", "text"),
    [
        pytest.param(
            dt.datetime(2026, 6, 1, 7, 5, tzinfo=dt.UTC), "1er juin 2026 à 9 h 05", id="1er"
        ),
        pytest.param(
            dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC),
            "1er janvier 2027 à 0 h 30",
            id="new-year",
        ),
        pytest.param(
            dt.datetime(2026, 8, 15, 12, 0, tzinfo=dt.UTC), "15 août 2026 à 14 h 00", id="summer"
        ),
    ],
)
def test_sla_dates_are_written_in_french_paris_time(at: dt.datetime, text: str) -> None:
    assert french_date(at) == text


def test_sla_an_overseas_customer_reads_the_due_date_on_their_own_clock() -> None:
    """Réunion is two hours ahead of Paris in June: 08:00 UTC is 12 h 00 there."""
    reunion = dataclasses.replace(facts(apologies=False), zone=ZoneInfo("Indian/Reunion"))
    _subject, body = MailComposer(mail_from="Service Client <sc@eau.example>").render(reunion)
    assert "d'ici le 15 juin 2026 à 12 h 00" in body


def test_sla_holding_mail_names_the_dossier_the_due_date_and_the_tsa_address() -> None:
    subject, body = MailComposer(mail_from="Service Client <sc@eau.example>").render(
        facts(apologies=False)
    )
    assert subject == "Votre demande DOS-ABC : nous revenons vers vous prochainement"
    assert "référence DOS-ABC (référence client 200000001)" in body
    assert "le 1er juin 2026" in body
    assert "d'ici le 15 juin 2026 à 10 h 00" in body
    assert "Service Client\nTSA 50001\n36400 La Chatre\n" in body
    assert "excuser" not in body
    assert "{" not in body
    assert "\n\n\n" not in body


def test_sla_holding_mail_apologises_when_the_dossier_carries_a_dysfunction() -> None:
    _subject, body = MailComposer(mail_from="sc@eau.example").render(
        facts(apologies=True, customer_ref=None)
    )
    assert "Nous vous prions de bien vouloir nous excuser" in body
    assert "référence client" not in body
    assert "\n\n\n" not in body


def test_sla_holding_mail_message_is_deterministic_and_auto_submitted() -> None:
    composer = MailComposer(mail_from="Service Client <sc@eau.example>")
    message_id = message_id_for("DOS-ABC:5wd:holding_mail", "eau.example")
    assert message_id == message_id_for("DOS-ABC:5wd:holding_mail", "eau.example")
    assert message_id != message_id_for("DOS-ABC:15wd:holding_mail", "eau.example")
    message = composer.compose(
        facts(apologies=False), recipient="client@example.test", message_id=message_id, now=NOW
    )
    assert message["Message-ID"] == message_id
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["To"] == "client@example.test"
    assert message["Date"] == "Fri, 12 Jun 2026 10:00:00 +0200"
    assert message.as_bytes().isascii()  # quoted-printable body, RFC 2047 subject


@pytest.mark.parametrize(
    ("recipient", "apologies"),
    [
        pytest.param("client@example.test", False, id="plain"),
        pytest.param("jean-marie.o'neil+sav@mail.example.fr", True, id="apologies"),
        pytest.param("Client <client@example.test>", False, id="display-name-fallback"),
    ],
)
def test_sla_encoded_mail_says_what_the_composed_message_says(
    recipient: str, apologies: bool
) -> None:
    composer = MailComposer(mail_from="Service Client <service.client@eau.example>")
    message_id = message_id_for("DOS-ABC:5wd:holding_mail", "eau.example")
    parser = BytesParser(policy=policy.default)
    composed = composer.compose(
        facts(apologies=apologies), recipient=recipient, message_id=message_id, now=NOW
    ).as_bytes(policy=SMTP)
    encoded = composer.encode(
        facts(apologies=apologies), recipient=recipient, message_id=message_id, now=NOW
    )
    parsed, expected = parser.parsebytes(encoded), parser.parsebytes(composed)
    assert list(parsed.items()) == list(expected.items())
    assert parsed.get_content() == expected.get_content()
    assert parsed["Content-Language"] == "fr"
    assert encoded.isascii()
    assert all(len(line) <= 78 for line in encoded.split(b"\r\n"))
    assert b"\n" not in encoded.replace(b"\r\n", b"")  # CRLF lines only
