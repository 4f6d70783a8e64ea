"""The corpus of unusual and malformed mails: each one ends as an item or a named rejection.

Issue 4, "Tests": at least 30 malformed or unusual messages; none crashes the
parser. ``tests/data/mail/expected.json`` says what each file must become.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from schemas import IntakeItem
from services.intake_mail.domain import (
    MailRejected,
    acknowledgement_decision,
    automatic_reason,
    build_intake_item,
    item_id_for,
    parse_mail,
)

CORPUS = Path(__file__).resolve().parents[2] / "data" / "mail"
EXPECTED: dict[str, Any] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
MESSAGES: dict[str, dict[str, Any]] = EXPECTED["messages"]
FALLBACK = dt.datetime.fromisoformat(EXPECTED["received_at_fallback"])
OWN: list[str] = EXPECTED["own_addresses"]


def _max_bytes(name: str) -> int:
    return int(MESSAGES[name].get("max_bytes", EXPECTED["max_bytes"]))


def test_corpus_is_large_enough_and_fully_described() -> None:
    files = sorted(path.name for path in CORPUS.glob("*.eml"))
    assert len(files) >= 30
    assert files == sorted(MESSAGES)
    outcomes = {spec["outcome"] for spec in MESSAGES.values()}
    assert outcomes == {"item", "rejected"}


REJECTED = sorted(name for name, spec in MESSAGES.items() if spec["outcome"] == "rejected")
ITEMS = sorted(name for name, spec in MESSAGES.items() if spec["outcome"] == "item")


@pytest.mark.parametrize("name", REJECTED)
def test_rejected_with_reason(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    with pytest.raises(MailRejected) as caught:
        parse_mail(raw, max_bytes=_max_bytes(name))
    assert caught.value.reason_code == MESSAGES[name]["reason_code"]
    assert caught.value.reason


def _item(name: str) -> tuple[IntakeItem, Any]:
    parsed = parse_mail((CORPUS / name).read_bytes(), max_bytes=_max_bytes(name))
    item = build_intake_item(
        parsed,
        item_id=item_id_for(parsed.message_id, parsed.content_sha256),
        source_ref=f"INBOX/1/{name}",
        received_at_fallback=FALLBACK,
        attachments=tuple(attachment.ref() for attachment in parsed.attachments),
    )
    return item, parsed


def _check_sender(item: IntakeItem, expected: dict[str, Any]) -> None:
    actual = item.sender.model_dump(mode="json")
    for key, value in expected.items():
        if isinstance(value, dict):
            assert actual[key] is not None, key
            assert {k: actual[key][k] for k in value} == value, key
        else:
            assert actual[key] == value, key


@pytest.mark.parametrize("name", ITEMS)
def test_becomes_item_with_expected_facts(name: str) -> None:
    spec = MESSAGES[name]
    item, parsed = _item(name)
    assert item.channel == "email"
    if "subject" in spec:
        assert item.subject == spec["subject"]
    if "received_at" in spec:
        assert item.received_at == dt.datetime.fromisoformat(spec["received_at"])
    if "text" in spec:
        assert item.text == spec["text"]
    for fragment in spec.get("text_contains", ()):
        assert fragment in item.text
    for fragment in spec.get("text_excludes", ()):
        assert fragment not in item.text
    _check_sender(item, spec.get("sender", {}))
    assert [[a.filename, a.content_type] for a in item.attachments] == spec["attachments"]
    assert (parsed.form is not None) is spec["form"]
    for defect in spec.get("defects", ()):
        assert defect in parsed.defects


@pytest.mark.parametrize("name", ITEMS)
def test_acknowledgement_decision(name: str) -> None:
    spec = MESSAGES[name]
    _, parsed = _item(name)
    decision = acknowledgement_decision(parsed, OWN)
    assert decision.send is spec["acknowledge"], decision.reason
    assert spec.get("ack_reason_contains", "") in decision.reason
    assert (automatic_reason(parsed) is not None) is spec.get("automatic", False)
    if decision.send:
        assert decision.recipient == parsed.reply_address
        assert decision.recipient not in OWN


@pytest.mark.parametrize("name", ITEMS)
def test_item_round_trips_and_is_stable(name: str) -> None:
    first, parsed = _item(name)
    again, _ = _item(name)
    assert first == again
    assert first.item_id.startswith("mail-")
    assert IntakeItem.model_validate_json(first.model_dump_json()) == first
    for attachment in parsed.attachments:
        assert attachment.size == len(attachment.data)


def test_crlf_and_lf_copies_of_a_mail_dedupe_to_one_item() -> None:
    raw = (CORPUS / "reply_french_gmail.eml").read_bytes()
    crlf = parse_mail(raw, max_bytes=10**6)
    lf = parse_mail(raw.replace(b"\r\n", b"\n"), max_bytes=10**6)
    assert item_id_for(crlf.message_id, crlf.content_sha256) == item_id_for(
        lf.message_id, lf.content_sha256
    )
