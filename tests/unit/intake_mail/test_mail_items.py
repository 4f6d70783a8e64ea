"""From a parsed mail to an ``IntakeItem``: id, contact date, limits (procedure 4.1, issue 4)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from schemas import AttachmentRef, IntakeItem
from services.intake_mail.domain import build_intake_item, contact_date, item_id_for, parse_mail

ARRIVAL = dt.datetime(2025, 3, 3, 12, 0, tzinfo=dt.UTC)
SHA = hashlib.sha256(b"mail").hexdigest()
OTHER_SHA = hashlib.sha256(b"other").hexdigest()


def test_item_id_is_stable_and_depends_on_both_parts() -> None:
    first = item_id_for("<a@example.test>", SHA)
    assert first == item_id_for("<a@example.test>", SHA)
    assert first == item_id_for(" a@example.test ", SHA)
    assert first != item_id_for("<b@example.test>", SHA)
    assert first != item_id_for("<a@example.test>", OTHER_SHA)
    assert item_id_for(None, SHA) == item_id_for("", SHA) == item_id_for("<>", SHA)
    assert item_id_for(None, SHA) != first
    assert first.startswith("mail-")
    assert len(first) == 37
    assert "example" not in first


@pytest.mark.parametrize("digest", ["", "ABC", SHA.upper(), SHA[:-1], SHA + "0"])
def test_item_id_wants_a_sha256(digest: str) -> None:
    with pytest.raises(ValueError, match="content_sha256"):
        item_id_for("<a@example.test>", digest)


@pytest.mark.parametrize(
    ("mail_date", "expected"),
    [
        pytest.param(
            dt.datetime(2025, 3, 3, 9, 15, tzinfo=dt.UTC),
            dt.datetime(2025, 3, 3, 9, 15, tzinfo=dt.UTC),
            id="plausible",
        ),
        pytest.param(
            dt.datetime(2025, 2, 25, 12, 0, tzinfo=dt.UTC),
            dt.datetime(2025, 2, 25, 12, 0, tzinfo=dt.UTC),
            id="seven-days-old",
        ),
        pytest.param(dt.datetime(2025, 2, 20, 12, 0, tzinfo=dt.UTC), ARRIVAL, id="too-old"),
        pytest.param(
            dt.datetime(2025, 3, 3, 12, 10, tzinfo=dt.UTC), ARRIVAL, id="small-skew-capped"
        ),
        pytest.param(dt.datetime(2025, 3, 3, 13, 0, tzinfo=dt.UTC), ARRIVAL, id="future"),
        pytest.param(None, ARRIVAL, id="missing"),
    ],
)
def test_contact_date(mail_date: dt.datetime | None, expected: dt.datetime) -> None:
    assert contact_date(mail_date, ARRIVAL) == expected


def test_contact_date_normalises_fallback_to_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    result = contact_date(None, dt.datetime(2025, 3, 3, 13, 0, tzinfo=paris))
    assert result == ARRIVAL
    assert result.tzinfo is dt.UTC


def test_contact_date_refuses_naive_fallback() -> None:
    with pytest.raises(ValueError, match="aware"):
        contact_date(None, dt.datetime(2025, 3, 3, 12, 0))


def _mail(subject: bytes = b"Facture", body: bytes = b"Bonjour") -> bytes:
    return (
        b"From: Jeanne Martin <jeanne.martin@example.test>\r\nMessage-ID: <m1@example.test>\r\n"
        b"Date: Mon, 3 Mar 2025 10:15:00 +0100\r\nSubject: " + subject + b"\r\n\r\n" + body
    )


def test_build_intake_item() -> None:
    parsed = parse_mail(_mail(), max_bytes=10_000)
    ref = AttachmentRef(sha256=SHA, filename="a.pdf", content_type="application/pdf", size=4)
    item = build_intake_item(
        parsed,
        item_id=item_id_for(parsed.message_id, parsed.content_sha256),
        source_ref="imap://INBOX;UIDVALIDITY=7/;UID=42",
        received_at_fallback=ARRIVAL,
        attachments=(ref,),
    )
    assert item.channel == "email"
    assert item.received_at == dt.datetime(2025, 3, 3, 9, 15, tzinfo=dt.UTC)
    assert item.subject == "Facture"
    assert item.text == "Bonjour"
    assert item.sender.email == "jeanne.martin@example.test"
    assert item.attachments == (ref,)
    assert item.tsa_box is None
    assert not item.internal
    assert item.partition_key() == "jeanne.martin@example.test"


def test_build_intake_item_cuts_to_contract_limits() -> None:
    parsed = parse_mail(_mail(b"S" * 5000, b"T" * 1_200_000), max_bytes=2_000_000)
    item = build_intake_item(
        parsed, item_id="mail-x", source_ref="ref", received_at_fallback=ARRIVAL, attachments=()
    )
    assert item.subject is not None
    assert len(item.subject) == 1000
    assert len(item.text) <= 1_000_000
    assert IntakeItem.model_validate_json(item.model_dump_json()) == item
