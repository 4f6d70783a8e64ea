"""intake-mail as its own OS process on Dovecot, tansu, SQLite and an aiosmtpd sink.

Issue 4, "Tests (real parts)": N customer mails → exactly N items, mails moved,
N acknowledgements with the right recipient and the TSA address; automatic
mail gets neither; SIGKILL between producing and moving → no duplicate item,
no second acknowledgement, nothing left behind; the corpus → each mail ends
as an item, automatic or in quarantine with its reason, and the service lives.
"""

from __future__ import annotations

import email
import json
from email import policy
from pathlib import Path
from typing import Any

import pytest

from schemas import DeadLetter, IntakeItem, OutboundContact
from schemas.topics import DEAD_LETTERS, INTAKE_ITEMS, OUTBOUND_CONTACTS
from services.common.settings import ServiceSettings
from services.common.testing import ServiceProcess, SmtpSink, eventually, read_topic
from services.intake_mail.acknowledgement_mail import TSA_ADDRESS
from services.intake_mail.domain import MailRejected, parse_mail, triage
from services.intake_mail.testing import ImapMailbox, form_mail, normalised_hash, plain_mail

pytestmark = [pytest.mark.kafka, pytest.mark.imap, pytest.mark.smtp]

CORPUS = Path(__file__).resolve().parents[2] / "data" / "mail"
FOLDERS = ("INBOX", "Traités", "Automatiques", "Quarantaine")


async def _settled(mailbox: ImapMailbox, expected: dict[str, int], timeout: float = 30) -> None:
    async def probe() -> bool:
        return await mailbox.counts(*expected) == expected

    await eventually(probe, timeout=timeout, interval=0.3)


async def _acknowledged(sink: SmtpSink, count: int) -> None:
    async def probe() -> bool:
        return len(sink.messages) >= count

    await eventually(probe, timeout=30)


def _items(values: list[bytes]) -> list[IntakeItem]:
    return [IntakeItem.model_validate_json(value) for value in values]


async def test_customer_mails_become_items_and_are_acknowledged_once(
    topics: ServiceSettings,
    service_env: dict[str, str],
    mailbox: ImapMailbox,
    smtp_sink: SmtpSink,
    kafka: str,
    tmp_path: Path,
) -> None:
    customers = [form_mail(n) for n in range(4)] + [plain_mail(n) for n in range(3)]
    automatic = [(CORPUS / name).read_bytes() for name in ("auto_reply_out_of_office.eml",)]
    automatic.append((CORPUS / "bounce_dsn.eml").read_bytes())
    await mailbox.append(*customers, *automatic)
    service = ServiceProcess("intake-mail", service_env, tmp_path).start()
    try:
        await _settled(mailbox, {"INBOX": 0, "Traités": 7, "Automatiques": 2, "Quarantaine": 0})
        # Arrives while the service waits: IMAP IDLE wakes it well before the 10 s poll.
        await mailbox.append(form_mail(9))
        await _settled(mailbox, {"INBOX": 0, "Traités": 8}, timeout=6)
        items = _items(await read_topic(kafka, INTAKE_ITEMS, expect=8))
        await _acknowledged(smtp_sink, 8)
        traces = await read_topic(kafka, OUTBOUND_CONTACTS, expect=8)
    finally:
        assert service.stop() == 0, service.output()

    assert len(items) == 8
    assert len({item.item_id for item in items}) == 8
    by_address = {item.sender.email: item for item in items}
    expected = {f"client.form{n}@example.test" for n in (0, 1, 2, 3, 9)}
    assert set(by_address) == expected | {f"client.plain{n}@example.test" for n in range(3)}
    assert by_address["client.form2@example.test"].sender.customer_ref == "100000002"
    assert by_address["client.form2@example.test"].sender.mobile == "+33612345602"

    assert len(smtp_sink.messages) == 8
    for (envelope_from, recipients, _), message in zip(
        smtp_sink.messages, smtp_sink.parsed(), strict=True
    ):
        assert envelope_from in ("", "<>")  # null sender (RFC 3834 section 3.3)
        (recipient,) = recipients
        body = message.get_content()
        assert message["To"] == recipient
        assert TSA_ADDRESS in body
        assert by_address[recipient].item_id in body
        assert message["Auto-Submitted"] == "auto-replied"

    contacts = [OutboundContact.model_validate_json(value) for value in traces]
    assert sorted(c.item_id or "" for c in contacts) == sorted(i.item_id for i in items)
    assert {c.purpose for c in contacts} == {"acknowledgement"}
    assert await read_topic(kafka, DEAD_LETTERS, quiet_s=0.5) == []
    logs = service.output()
    assert "client.form" not in logs, "logs carry ids only"
    assert "Martin" not in logs, "logs carry ids only"


@pytest.mark.parametrize("point", ["after_publish", "before_move"])
async def test_killed_between_producing_and_moving_changes_nothing(
    point: str,
    topics: ServiceSettings,
    service_env: dict[str, str],
    mailbox: ImapMailbox,
    smtp_sink: SmtpSink,
    kafka: str,
    tmp_path: Path,
) -> None:
    await mailbox.append(*(form_mail(n) for n in range(3)))
    crashing = ServiceProcess(
        "intake-mail", {**service_env, "INTAKE_MAIL_TEST_CRASH_AT": point}, tmp_path
    ).start()
    assert crashing.process is not None
    assert crashing.process.wait(timeout=40) == -9, crashing.output()
    assert await mailbox.counts("INBOX", "Traités") == {"INBOX": 3, "Traités": 0}
    sent_before_restart = len(smtp_sink.messages)
    assert sent_before_restart == (3 if point == "before_move" else 0)

    service = ServiceProcess("intake-mail", service_env, tmp_path).start()
    try:
        await _settled(mailbox, {"INBOX": 0, "Traités": 3})
        await _acknowledged(smtp_sink, 3)
        items = _items(await read_topic(kafka, INTAKE_ITEMS, expect=3, max_s=10))
        traces = await read_topic(kafka, OUTBOUND_CONTACTS, expect=3, max_s=10)
    finally:
        assert service.stop() == 0, service.output()
    assert len(items) == 3
    assert len({item.item_id for item in items}) == 3
    assert sorted(r[0] for _, r, _ in smtp_sink.messages) == sorted(
        f"client.form{n}@example.test" for n in range(3)
    )
    assert len({OutboundContact.model_validate_json(t).contact_id for t in traces}) == 3


def _expected_folder(raw: bytes, max_bytes: int) -> tuple[str, str | None]:
    try:
        parsed = parse_mail(raw, max_bytes=max_bytes)
    except MailRejected as rejected:
        return "Quarantaine", rejected.reason_code
    return ("Traités" if triage(parsed).customer_contact else "Automatiques"), None


async def test_the_corpus_ends_as_items_automatic_or_quarantined_with_reasons(
    topics: ServiceSettings,
    service_env: dict[str, str],
    mailbox: ImapMailbox,
    kafka: str,
    tmp_path: Path,
) -> None:
    expected_json: dict[str, Any] = json.loads((CORPUS / "expected.json").read_text("utf-8"))
    max_bytes = int(expected_json["max_bytes"])
    files = {path.name: path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))}
    files["generated_over_limit.eml"] = plain_mail(1).rstrip() + b"x" * max_bytes + b"\r\n"
    uids = await mailbox.append(*files.values())
    env = {
        **service_env,
        "INTAKE_MAIL_MAX_MESSAGE_BYTES": str(max_bytes),
        "INTAKE_MAIL_OWN_ADDRESSES": json.dumps(expected_json["own_addresses"]),
        "INTAKE_MAIL_BATCH_SIZE": "16",
    }
    service = ServiceProcess("intake-mail", env, tmp_path).start()
    try:
        await _settled(mailbox, {"INBOX": 0}, timeout=40)
        stored = {f: {normalised_hash(m) for m in await mailbox.messages(f)} for f in FOLDERS}
        expected = {name: _expected_folder(raw, max_bytes) for name, raw in files.items()}
        published = sum(1 for folder, _ in expected.values() if folder == "Traités")
        quarantined = sum(1 for folder, _ in expected.values() if folder == "Quarantaine")
        items = await read_topic(kafka, INTAKE_ITEMS, expect=published)
        letters = [
            DeadLetter.model_validate_json(v)
            for v in await read_topic(kafka, DEAD_LETTERS, expect=quarantined)
        ]
        assert service.process is not None
        assert service.process.poll() is None, "the service is still alive"
    finally:
        assert service.stop() == 0, service.output()

    for name, raw in files.items():
        folder, _ = expected[name]
        assert normalised_hash(raw) in stored[folder], (name, folder)
    assert len(items) == published
    reasons = {letter.original_ref.rsplit("=", 1)[1]: letter.reason_code for letter in letters}
    by_uid = dict(zip(uids, files, strict=True))
    assert {by_uid[uid]: code for uid, code in reasons.items()} == {
        name: code for name, (folder, code) in expected.items() if folder == "Quarantaine"
    }
    assert reasons[uids[-1]] == "over_size_limit"
    for name, spec in expected_json["messages"].items():
        if spec["outcome"] == "rejected" and "max_bytes" not in spec:
            assert expected[name] == ("Quarantaine", spec["reason_code"]), name
        if spec.get("automatic"):
            assert expected[name][0] == "Automatiques", name
    assert "Traceback" not in service.output()
    assert email.message_from_bytes(files["form_text_basic.eml"], policy=policy.default)
