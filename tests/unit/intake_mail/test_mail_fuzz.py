"""Hypothesis: any bytes give a ``ParsedMail`` or raise ``MailRejected``, nothing else.

Issue 4, "Tests": random bytes never raise anything but the named rejection
error; mutated corpus messages neither. An accepted mail always yields a valid,
JSON-serialisable ``IntakeItem`` and an acknowledgement decision.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from schemas import IntakeItem, SenderHints
from services.intake_mail.domain import (
    MailRejected,
    ParsedMail,
    acknowledgement_decision,
    build_intake_item,
    item_id_for,
    parse_mail,
)

CORPUS = [
    path.read_bytes()
    for path in sorted((Path(__file__).resolve().parents[2] / "data" / "mail").glob("*.eml"))
    if path.stat().st_size < 50_000
]
FRAGMENTS = [
    b"\r\n", b"\n", b"\r\n\r\n", b"From: a@example.test\r\n", b"From: ", b"Subject: ",
    b"Date: ", b"Message-ID: <", b">", b"Reply-To: ", b"MIME-Version: 1.0\r\n",
    b'Content-Type: multipart/mixed; boundary="b"\r\n', b"Content-Type: multipart/alternative\r\n",
    b"Content-Type: message/rfc822\r\n", b"Content-Type: text/html; charset=", b"utf-8", b"x-bad",
    b"Content-Transfer-Encoding: base64\r\n", b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename*=utf-8''%e9", b"--b\r\n", b"--b--\r\n",
    b"=?utf-8?q?",
    b"=?x?b?", b"?=", b"=E9", b"\xe9", b"\xff\xfe", b"\x00", b"<blockquote>", b"<script>", b"<![",
    b"<td>Nom</td><td>", b"Nom : ", b"Message : ", b"Le 3 mars 2025, X a \xc3\xa9crit :", b"> ",
    b"-- \r\n", b"Cordialement,", b"(((", b'"', b"\\", b";", b"\t",
]  # fmt: skip
OWN = ["service-client@eau.example.org"]
FALLBACK = dt.datetime(2025, 3, 3, 12, 0, tzinfo=dt.UTC)
REASON_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
FUZZ = settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _strings(value: object) -> Iterator[str]:
    """Every string inside a parsed mail, however deeply nested."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, BaseModel):
        yield value.model_dump_json()
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _strings(item)


def _accept_or_reject(raw: bytes) -> None:
    try:
        parsed = parse_mail(raw, max_bytes=200_000)
    except MailRejected as exc:
        rejection = exc
    else:
        _check_accepted(parsed)
        return
    assert REASON_CODE.match(rejection.reason_code)
    assert rejection.reason


def _check_accepted(parsed: ParsedMail) -> None:
    for text in _strings(dataclasses.asdict(parsed)):
        text.encode("utf-8")
    assert parsed.sender != SenderHints()
    assert parsed.date is None or parsed.date.tzinfo is dt.UTC
    item = build_intake_item(
        parsed,
        item_id=item_id_for(parsed.message_id, parsed.content_sha256),
        source_ref="fuzz",
        received_at_fallback=FALLBACK,
        attachments=tuple(attachment.ref() for attachment in parsed.attachments),
    )
    assert IntakeItem.model_validate_json(item.model_dump_json()) == item
    decision = acknowledgement_decision(parsed, OWN)
    assert "@" not in decision.reason


@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes(raw: bytes) -> None:
    _accept_or_reject(raw)


@FUZZ
@given(st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=16), max_size=60))
def test_mime_shaped_noise(pieces: list[bytes]) -> None:
    _accept_or_reject(b"".join(pieces))


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(min_value=1, max_value=10))):
        position = draw(st.integers(min_value=0, max_value=len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        if action == "insert":
            data[position:position] = draw(st.sampled_from(FRAGMENTS) | st.binary(max_size=8))
        elif action == "delete":
            del data[position : position + draw(st.integers(min_value=1, max_value=64))]
        elif action == "replace" and position < len(data):
            data[position] = draw(st.integers(min_value=0, max_value=255))
        else:
            start = draw(st.integers(min_value=0, max_value=len(data)))
            data[position:position] = data[start : start + 200]
    return bytes(data)


@FUZZ
@given(_mutated())
def test_mutated_corpus_messages(raw: bytes) -> None:
    _accept_or_reject(raw)


@FUZZ
@given(st.sampled_from(CORPUS), st.integers(min_value=0, max_value=60_000))
def test_truncated_corpus_messages(raw: bytes, cut: int) -> None:
    _accept_or_reject(raw[:cut])
