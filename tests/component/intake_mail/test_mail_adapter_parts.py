"""The small parts around the pass: modified UTF-7 folder names, IMAP response reading, the
triage rule, the acknowledgement message, settings, the attachment store."""

from __future__ import annotations

import datetime as dt
import email
from email import policy
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.intake_mail.acknowledgement_mail import (
    TSA_ADDRESS,
    AcknowledgementRenderer,
    french_date,
)
from services.intake_mail.adapters.attachments import FileAttachmentStore
from services.intake_mail.adapters.imap_responses import (
    internal_date,
    parse_fetch,
    parse_search,
    response_code,
    uid_set,
    uidvalidity,
)
from services.intake_mail.adapters.imap_utf7 import decode_mailbox, encode_mailbox, quote_mailbox
from services.intake_mail.domain import parse_mail, triage
from services.intake_mail.settings import IntakeMailSettings
from services.intake_mail.testing import form_mail

CORPUS = Path(__file__).resolve().parents[2] / "data" / "mail"


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        pytest.param("INBOX", "INBOX", id="ascii"),
        pytest.param("Traités", "Trait&AOk-s", id="accent"),
        pytest.param("Quarantaine", "Quarantaine", id="quarantine"),
        pytest.param("A&B", "A&-B", id="ampersand"),
        pytest.param("Réclamations/Été", "R&AOk-clamations/&AMk-t&AOk-", id="hierarchy"),
        pytest.param("日本語", "&ZeVnLIqe-", id="rfc3501-example"),
    ],
)
def test_mailbox_names_in_modified_utf7(name: str, wire: str) -> None:
    assert encode_mailbox(name) == wire
    assert decode_mailbox(wire) == name


@given(st.text(max_size=40))
def test_modified_utf7_round_trips_and_stays_printable_ascii(name: str) -> None:
    wire = encode_mailbox(name)
    assert all(0x20 <= ord(char) <= 0x7E for char in wire)
    assert decode_mailbox(wire) == name


def test_quoted_mailbox_escapes_quotes_and_backslashes() -> None:
    assert quote_mailbox('Dossier "A"\\B') == '"Dossier \\"A\\"\\\\B"'


def test_uid_sets_are_compact() -> None:
    assert uid_set(["5", "1", "2", "3", "7", "8", "10"]) == "1:3,5,7:8,10"
    assert uid_set(["4"]) == "4"


def test_responses_are_read_from_aioimaplib_lines() -> None:
    select = [b"3 EXISTS", b"OK [UIDVALIDITY 1795677322] UIDs valid", b"Select completed"]
    assert uidvalidity(select) == 1795677322
    assert parse_search([b"1 2 10", b"Search completed (0.001 + 0.000 secs)."]) == ["1", "2", "10"]
    assert parse_search([b"Search completed (0.001 + 0.000 secs)."]) == []
    assert response_code([b"[ALREADYEXISTS] Mailbox already exists (0.001 secs)."]) == (
        "ALREADYEXISTS"
    )
    fetch: list[bytes | bytearray] = [
        b'1 FETCH (UID 5 INTERNALDATE "26-Nov-2026 07:15:21 +0100" BODY[] {4}',
        bytearray(b"abcd"),
        b")",
        b'2 FETCH (INTERNALDATE " 3-Mar-2025 10:00:00 +0000" BODY[] {2}',
        bytearray(b"xy"),
        b" UID 9)",
        b"3 FETCH (UID 12 RFC822.SIZE 3500)",
        b"Fetch completed (0.001 + 0.000 secs).",
    ]
    records = parse_fetch(fetch)
    assert [(r.uid, r.body, r.size) for r in records] == [
        ("5", b"abcd", None), ("9", b"xy", None), ("12", None, 3500),
    ]  # fmt: skip
    assert records[0].arrived_at == dt.datetime(2026, 11, 26, 6, 15, 21, tzinfo=dt.UTC)
    assert records[1].arrived_at == dt.datetime(2025, 3, 3, 10, tzinfo=dt.UTC)
    assert internal_date("31-Feb-2025 10:00:00 +0000") is None
    assert internal_date("garbage") is None


@pytest.mark.parametrize(
    ("name", "customer"),
    [
        pytest.param("form_text_basic.eml", True, id="form"),
        pytest.param("reply_french_gmail.eml", True, id="plain-reply"),
        pytest.param("own_address_loop.eml", True, id="own-copy-is-not-a-robot"),
        pytest.param("auto_reply_out_of_office.eml", False, id="out-of-office"),
        pytest.param("x_autoreply.eml", False, id="x-autoreply"),
        pytest.param("bounce_dsn.eml", False, id="bounce"),
        pytest.param("read_receipt_mdn.eml", False, id="read-receipt"),
        pytest.param("mailing_list.eml", False, id="list"),
        pytest.param("precedence_bulk.eml", False, id="bulk"),
    ],
)
def test_triage_tells_customers_from_machines(name: str, customer: bool) -> None:
    parsed = parse_mail((CORPUS / name).read_bytes(), max_bytes=10**6)
    sorting = triage(parsed)
    assert sorting.customer_contact is customer
    assert "@" not in sorting.reason


def test_a_contact_form_is_a_customer_even_when_its_robot_says_auto_generated() -> None:
    raw = b"Auto-Submitted: auto-generated\r\n" + form_mail(5)
    sorting = triage(parse_mail(raw, max_bytes=10**6))
    assert sorting.customer_contact
    assert "Auto-Submitted" in sorting.reason


def test_the_acknowledgement_is_french_loop_safe_and_carries_tsa_and_reference() -> None:
    renderer = AcknowledgementRenderer("Service Client <service-client@eau.example.org>")
    now = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    rendered = renderer.render(
        item_id="mail-0123456789abcdef0123456789abcdef",
        recipient="jeanne.martin@example.test",
        contact_date=dt.datetime(2025, 3, 3, 9, 15, tzinfo=dt.UTC),
        in_reply_to="<form-1@www.eau.example.org>",
        now=now,
    )
    message = email.message_from_bytes(rendered.data, policy=policy.default)
    body = message.get_content()
    assert TSA_ADDRESS in body
    assert "mail-0123456789abcdef0123456789abcdef" in body
    assert "3 mars 2025 à 10 h 15" in body
    assert "48 heures" in body
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["In-Reply-To"] == "<form-1@www.eau.example.org>"
    assert message["Message-ID"] == rendered.message_id
    assert rendered.message_id == "<mail-0123456789abcdef0123456789abcdef.ar@eau.example.org>"
    assert "référence mail-0123456789abcdef0123456789abcdef" in message["Subject"]
    again = renderer.render(
        item_id="mail-0123456789abcdef0123456789abcdef",
        recipient="jeanne.martin@example.test",
        contact_date=dt.datetime(2025, 3, 3, 9, 15, tzinfo=dt.UTC),
        in_reply_to="<bad id\r\nBcc: x@y>",
        now=now,
    )
    resent = email.message_from_bytes(again.data, policy=policy.default)
    assert resent["Message-ID"] == rendered.message_id, "deterministic per item"
    assert resent["In-Reply-To"] is None
    assert resent["Bcc"] is None


def test_no_header_can_be_injected_through_the_recipient() -> None:
    renderer = AcknowledgementRenderer("Service Client <service-client@eau.example.org>")
    with pytest.raises(ValueError, match="line break in the To header"):
        renderer.render(
            item_id="mail-1",
            recipient="a@example.test\r\nBcc: b@example.test",
            contact_date=dt.datetime(2025, 3, 3, tzinfo=dt.UTC),
            in_reply_to=None,
            now=dt.datetime(2025, 3, 3, tzinfo=dt.UTC),
        )


def test_french_dates_are_in_paris_time() -> None:
    assert french_date(dt.datetime(2025, 8, 1, 22, 5, tzinfo=dt.UTC)) == "2 août 2025 à 0 h 05"


def test_settings_defaults_ports_secrets_and_own_addresses(tmp_path: Path) -> None:
    secret = tmp_path / "imap-password"
    secret.write_text("s3cret\n", encoding="utf-8")
    settings = IntakeMailSettings.model_validate(
        {
            "imap_host": "imap.example.test",
            "imap_user": "Service-Client@eau.example.org",
            "imap_password_file": str(secret),
            "smtp_host": "smtp.example.test",
            "from_address": "Service Client <noreply@eau.example.org>",
            "own_addresses": "accueil@eau.example.org, @agence.example.org",
        }
    )
    assert settings.processed_folder == "Traités"
    assert settings.quarantine_folder == "Quarantaine"
    assert settings.max_message_bytes == 25 * 1024 * 1024
    assert (settings.resolved_imap_port(), settings.resolved_smtp_port()) == (993, 587)
    assert settings.imap_secret() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.acknowledgements_enabled
    assert settings.mailbox_configured
    assert settings.own_address_set() == (
        "accueil@eau.example.org",
        "@agence.example.org",
        "noreply@eau.example.org",
        "service-client@eau.example.org",
    )
    with pytest.raises(ValueError, match="from_address"):
        IntakeMailSettings.model_validate({"from_address": "Service Client"})


async def test_attachments_are_content_addressed_and_written_once(tmp_path: Path) -> None:
    parsed = parse_mail((CORPUS / "rfc2231_attachment_name.eml").read_bytes(), max_bytes=10**6)
    store = FileAttachmentStore(tmp_path)
    refs = await store.save(parsed.attachments)
    assert refs == tuple(a.ref() for a in parsed.attachments)
    path = store.path_for(refs[0].sha256)
    assert path.read_bytes() == parsed.attachments[0].data
    mtime = path.stat().st_mtime_ns
    assert await store.save(parsed.attachments) == refs
    assert path.stat().st_mtime_ns == mtime
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]
