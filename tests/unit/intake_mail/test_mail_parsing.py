"""``parse_mail``: charsets, headers, dates, attachments, rejections (issue 4, "Parsing")."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest

from services.intake_mail.domain import (
    MailRejected,
    MailTooLarge,
    NoUsableSender,
    ParsedMail,
    UndecodableCharset,
    UnparseableMime,
    parse_mail,
)

FROM = b"From: Jeanne Martin <jeanne.martin@example.test>\r\n"


def _mail(body: bytes = b"Bonjour", *, headers: bytes = b"", sender: bytes = FROM) -> bytes:
    return sender + b"To: service-client@eau.example.org\r\n" + headers + b"\r\n" + body


def _parse(raw: bytes) -> ParsedMail:
    return parse_mail(raw, max_bytes=1_000_000)


def _text_part(content_type: bytes, body: bytes, encoding: bytes = b"8bit") -> bytes:
    headers = b"Content-Type: " + content_type + b"\r\nContent-Transfer-Encoding: " + encoding
    return _mail(body, headers=headers + b"\r\n")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            _text_part(b"text/plain; charset=iso-8859-1", "Fuite réparée".encode("latin-1")),
            "Fuite réparée",
            id="iso-8859-1",
        ),
        pytest.param(
            _text_part(b"text/plain; charset=windows-1252", "l’eau 45 €".encode("cp1252")),
            "l’eau 45 €",
            id="windows-1252",
        ),
        pytest.param(
            _text_part(b"text/plain; charset=iso-8859-1", "l’eau 45 €".encode("cp1252")),
            "l’eau 45 €",
            id="latin1-label-cp1252-bytes",
        ),
        pytest.param(
            _text_part(b"text/plain; charset=utf-8", "été".encode("latin-1")),
            "été",
            id="utf8-label-latin1-bytes",
        ),
        pytest.param(
            _text_part(b"text/plain; charset=us-ascii", "Noël".encode()),
            "Noël",
            id="ascii-label-utf8-bytes",
        ),
        pytest.param(
            _text_part(b"text/plain; charset=iso-8859-1", "Noël".encode()),
            "Noël",
            id="latin1-label-utf8-bytes",
        ),
        pytest.param(
            _text_part(b"text/plain", "Hélène".encode("latin-1")), "Hélène", id="no-charset"
        ),
        pytest.param(
            _text_part(b'text/plain; charset="UTF-8"', "Zoé".encode()), "Zoé", id="quoted-label"
        ),
        pytest.param(
            _text_part(b"text/plain; charset=x-unknown", "Zoé".encode()),
            "Zoé",
            id="unknown-label-utf8-bytes",
        ),
        pytest.param(
            _text_part(b"text/plain; charset=koi8-r", "Привет".encode("koi8-r")),
            "Привет",
            id="koi8-r",
        ),
        pytest.param(
            _text_part(b"text/plain; charset=utf-16", "Bonjour é".encode("utf-16")),
            "Bonjour é",
            id="utf-16",
        ),
        pytest.param(
            _text_part(
                b"text/plain; charset=iso-8859-1", b"r=E9gl=E9 =\r\nhier", b"quoted-printable"
            ),
            "réglé hier",
            id="quoted-printable",
        ),
        pytest.param(
            _text_part(b"text/plain; charset=utf-8", base64.b64encode("Payé".encode()), b"base64"),
            "Payé",
            id="base64",
        ),
        pytest.param(
            _text_part(b"text/plain; charset=utf-8", b"a\x00b\x07c\xe2\x80\x8bd"),
            "abcd",
            id="controls-and-zero-width-removed",
        ),
        pytest.param(
            _text_part(b"text/plain; charset=utf-8", b"un\r\n\r\n\r\n\r\ndeux"),
            "un\n\ndeux",
            id="blank-lines-collapsed",
        ),
        pytest.param(
            _text_part(b"text/plain; charset=utf-8", b"e\xcc\x81t\xc3\xa9"), "été", id="nfc"
        ),
    ],
)
def test_body_charsets_and_encodings(raw: bytes, expected: str) -> None:
    assert _parse(raw).text == expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        pytest.param(b"=?utf-8?q?R=C3=A9clamation?=", "Réclamation", id="q-word"),
        pytest.param(b"=?UTF-8?B?UsOpY2xhbWF0aW9u?=", "Réclamation", id="b-word"),
        pytest.param(b"=?utf-8?q?Fuite?= =?utf-8?q?_d=27eau?=", "Fuite d'eau", id="adjacent-words"),
        pytest.param(b"Relev\xc3\xa9 d'index", "Relevé d'index", id="8bit-utf8"),
        pytest.param(b"Relev\xe9 d'index", "Relevé d'index", id="8bit-latin1"),
        pytest.param(b"=?x-klingon?q?R=C3=A9gl=C3=A9?=", "Réglé", id="unknown-word-charset"),
        pytest.param(
            b"=?utf-8?b?!!!notbase64?=", "=?utf-8?b?!!!notbase64?=", id="broken-word-kept"
        ),
        pytest.param(b"Un sujet\r\n  sur deux lignes", "Un sujet sur deux lignes", id="folded"),
        pytest.param(b"   ", None, id="blank"),
    ],
)
def test_subject_decoding(subject: bytes, expected: str | None) -> None:
    assert _parse(_mail(headers=b"Subject: " + subject + b"\r\n")).subject == expected


def test_missing_subject_is_none() -> None:
    assert _parse(_mail()).subject is None


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        pytest.param(
            b"Mon, 3 Mar 2025 10:15:00 +0100",
            dt.datetime(2025, 3, 3, 9, 15, tzinfo=dt.UTC),
            id="with-offset",
        ),
        pytest.param(
            b"3 Mar 2025 10:15:00 -0000",
            dt.datetime(2025, 3, 3, 10, 15, tzinfo=dt.UTC),
            id="unknown-zone-is-utc",
        ),
        pytest.param(
            b"Mon, 3 Mar 2025 10:15:00 EST",
            dt.datetime(2025, 3, 3, 15, 15, tzinfo=dt.UTC),
            id="obsolete-zone-name",
        ),
        pytest.param(b"le 32 du mois", None, id="garbage"),
        pytest.param(b"Thu, 1 Jan 1970 00:00:00 +0000", None, id="epoch-is-garbage"),
        pytest.param(b"Mon, 3 Mar 2025 25:61:00 +0100", None, id="impossible-time"),
        pytest.param(b"", None, id="empty"),
    ],
)
def test_date_is_aware_utc_or_none(date: bytes, expected: dt.datetime | None) -> None:
    parsed = _parse(_mail(headers=b"Date: " + date + b"\r\n"))
    assert parsed.date == expected
    assert parsed.date is None or parsed.date.tzinfo is dt.UTC


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(b"Message-ID: <abc@example.test>\r\n", "<abc@example.test>", id="bracketed"),
        pytest.param(b"Message-ID:  abc@example.test \r\n", "<abc@example.test>", id="bare"),
        pytest.param(
            b"Message-Id: (comment) <x$1@example.test>\r\n", "<x$1@example.test>", id="comment"
        ),
        pytest.param(b"Message-ID: not an id\r\n", None, id="garbage"),
        pytest.param(b"", None, id="missing"),
        # PostgreSQL refuses NUL in text: such an id failed the whole mailbox pass for ever
        pytest.param(b"Message-ID: <a\x00b@example.test>\r\n", None, id="nul-bracketed"),
        pytest.param(b"Message-ID: a\x00b@example.test\r\n", None, id="nul-bare"),
        pytest.param(b"Message-ID: <a\x7fb@example.test>\r\n", None, id="del"),
    ],
)
def test_message_id(header: bytes, expected: str | None) -> None:
    assert _parse(_mail(headers=header)).message_id == expected


@pytest.mark.parametrize(
    ("sender", "extra", "address", "reply"),
    [
        pytest.param(
            b"From: Jeanne.Martin@Example.TEST\r\n",
            b"",
            "jeanne.martin@example.test",
            "jeanne.martin@example.test",
            id="lower-cased",
        ),
        pytest.param(
            b"From: a@example.test, b@example.test\r\n",
            b"",
            "a@example.test",
            "a@example.test",
            id="first-of-several",
        ),
        pytest.param(
            b"From: nobody\r\n",
            b"Sender: sec@example.test\r\n",
            "sec@example.test",
            "sec@example.test",
            id="sender-when-from-unusable",
        ),
        pytest.param(
            FROM,
            b"Reply-To: other@example.test\r\n",
            "jeanne.martin@example.test",
            "other@example.test",
            id="reply-to-for-answers",
        ),
        pytest.param(
            b'From: "Martin, Jeanne" <j@example.test>\r\n',
            b"",
            "j@example.test",
            "j@example.test",
            id="comma-in-quoted-name",
        ),
    ],
)
def test_from_and_reply_address(sender: bytes, extra: bytes, address: str, reply: str) -> None:
    parsed = _parse(_mail(headers=extra, sender=sender))
    assert parsed.from_address == address
    assert parsed.sender.email == address
    assert parsed.reply_address == reply


def test_to_addresses_and_display_name() -> None:
    raw = _mail(
        headers=b"To: A <a@example.test>, b@example.test, not-an-address\r\n",
        sender=b"From: =?iso-8859-1?q?H=E9l=E8ne_ROCHE?= <h@example.test>\r\n",
    )
    parsed = _parse(raw)
    assert parsed.to_addresses[-2:] == ("a@example.test", "b@example.test")
    assert parsed.from_name == "Hélène ROCHE"
    assert (parsed.sender.first_name, parsed.sender.last_name) == ("Hélène", "ROCHE")


def _multipart(*parts: bytes, subtype: bytes = b"mixed") -> bytes:
    body = b"".join(b"--B\r\n" + part + b"\r\n" for part in parts) + b"--B--\r\n"
    return _mail(body, headers=b"Content-Type: multipart/" + subtype + b'; boundary="B"\r\n')


PLAIN = (
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nLe texte du client, assez long pour compter."
)
HTML_TEXT = "Le texte HTML du client, bien plus long que le texte de remplacement."
HTML = (
    b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    b"<p>Le texte <b>HTML</b> du client, bien plus long que le texte de remplacement.</p>"
)
STUB = b"Content-Type: text/plain\r\n\r\nVoir HTML."


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            _multipart(PLAIN, HTML, subtype=b"alternative"),
            "Le texte du client, assez long pour compter.",
            id="plain-preferred",
        ),
        pytest.param(
            _multipart(STUB, HTML, subtype=b"alternative"), HTML_TEXT, id="stub-plain-loses-to-html"
        ),
        pytest.param(_multipart(HTML), HTML_TEXT, id="html-only"),
        pytest.param(
            _multipart(PLAIN, b"Content-Type: image/png\r\n\r\nx", PLAIN),
            "Le texte du client, assez long pour compter.\n\n"
            "Le texte du client, assez long pour compter.",
            id="text-parts-joined",
        ),
    ],
)
def test_body_part_selection(raw: bytes, expected: str) -> None:
    assert _parse(raw).text == expected


ATTACHMENT = (
    b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="../../etc/fac:ture.pdf"\r\n\r\n'
    + base64.b64encode(b"%PDF-1.4 test")
)
TEXT_FILE = (
    b'Content-Type: text/plain\r\nContent-Disposition: inline; filename="notes.txt"\r\n\r\nnotes'
)
INLINE_IMAGE = b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo="


def test_attachments_carry_bytes_hash_and_size() -> None:
    parsed = _parse(_multipart(PLAIN, ATTACHMENT, TEXT_FILE, INLINE_IMAGE))
    names = [(a.filename, a.content_type) for a in parsed.attachments]
    assert names == [
        ("fac_ture.pdf", "application/pdf"),
        ("notes.txt", "text/plain"),
        ("part-5.png", "image/png"),
    ]
    pdf = parsed.attachments[0]
    assert pdf.data == b"%PDF-1.4 test"
    assert pdf.sha256 == hashlib.sha256(b"%PDF-1.4 test").hexdigest()
    assert pdf.size == len(pdf.data)
    assert pdf.ref().model_dump()["sha256"] == pdf.sha256
    assert "notes" not in parsed.text


def test_loop_headers_are_kept_and_decoded() -> None:
    raw = _mail(
        headers=b"Auto-Submitted: auto-replied\r\nList-Id: <l.example.org>\r\nReturn-Path: <>\r\n"
    )
    parsed = _parse(raw)
    assert parsed.header("Auto-Submitted") == "auto-replied"
    assert parsed.header("return-path") == "<>"
    assert parsed.has_header("list-id")
    assert not parsed.has_header("precedence")
    assert parsed.header("precedence") is None


@pytest.mark.parametrize(
    ("raw", "max_bytes", "error", "code"),
    [
        pytest.param(b"", 100, UnparseableMime, "unparseable_mime", id="empty"),
        pytest.param(b" \r\n\t ", 100, UnparseableMime, "unparseable_mime", id="whitespace"),
        pytest.param(
            b"\x89PNG\r\n\x1a\n\x00\x00", 100, UnparseableMime, "unparseable_mime", id="binary"
        ),
        pytest.param(
            b"juste du texte sans en-tete",
            100,
            UnparseableMime,
            "unparseable_mime",
            id="no-headers",
        ),
        pytest.param(_mail(), 10, MailTooLarge, "over_size_limit", id="over-size"),
        pytest.param(_mail(sender=b""), 1000, NoUsableSender, "no_usable_sender", id="no-from"),
        pytest.param(
            _mail(sender=b"From: <>\r\n"), 1000, NoUsableSender, "no_usable_sender", id="null-from"
        ),
        pytest.param(
            _text_part(b"text/plain; charset=x-unknown", b"\x81\x8d\x90\x9d"),
            1000,
            UndecodableCharset,
            "undecodable_charset",
            id="unknown-charset",
        ),
        pytest.param(
            _text_part(b"text/plain; charset=utf-16", b"\x00\xd8\x00\xd8" * 20),
            1000,
            UndecodableCharset,
            "undecodable_charset",
            id="broken-utf16",
        ),
    ],
)
def test_rejections(raw: bytes, max_bytes: int, error: type[MailRejected], code: str) -> None:
    with pytest.raises(error) as caught:
        parse_mail(raw, max_bytes=max_bytes)
    assert caught.value.reason_code == code
    assert isinstance(caught.value, MailRejected)


def test_size_limit_is_inclusive() -> None:
    raw = _mail()
    assert parse_mail(raw, max_bytes=len(raw)).size == len(raw)


def test_form_mail_without_from_is_usable_through_its_fields() -> None:
    body = "Nom : Martin\r\nPrénom : Jeanne\r\nMobile : 06 12 34 56 78\r\nMessage : Fuite".encode()
    parsed = _parse(_mail(body, headers=b"Content-Type: text/plain; charset=utf-8\r\n", sender=b""))
    assert parsed.sender.mobile == "+33612345678"
    assert parsed.reply_address is None
    assert parsed.text == "Fuite"


def test_content_hash_ignores_line_endings_only() -> None:
    crlf = _parse(_mail(b"Bonjour\r\nmadame"))
    lf = _parse(_mail(b"Bonjour\r\nmadame").replace(b"\r\n", b"\n"))
    other = _parse(_mail(b"Bonjour\r\nmonsieur"))
    assert crlf.content_sha256 == lf.content_sha256 != other.content_sha256


def test_labelled_plain_mail_without_message_field_keeps_its_text() -> None:
    body = "Nom : Dupont\r\nTéléphone : 06 12 34 56 78\r\nAdresse : 1 rue Haute 75001 Paris\r\n\r\n"
    body += "Bonjour, je n'ai plus d'eau.\r\n"
    parsed = _parse(_mail(body.encode(), headers=b"Content-Type: text/plain; charset=utf-8\r\n"))
    assert parsed.form is not None
    assert parsed.sender.mobile == "+33612345678"
    assert parsed.sender.email == "jeanne.martin@example.test"
    assert parsed.text.endswith("Bonjour, je n'ai plus d'eau.")


def test_falls_back_to_compat32_where_default_policy_raises() -> None:
    # policy.default raises IndexError on a Content-Disposition ending in "filename*".
    raw = _multipart(
        PLAIN,
        b"Content-Type: application/pdf; name=a.pdf\r\n"
        b"Content-Disposition: attachment; filename*\r\n\r\n%PDF",
    )
    parsed = _parse(raw)
    assert "DefaultPolicyFailed" in parsed.defects
    assert [a.filename for a in parsed.attachments] == ["a.pdf"]
    assert parsed.text == "Le texte du client, assez long pour compter."


@pytest.mark.parametrize(
    ("fields", "usable"),
    [
        pytest.param("Nom : Martin\r\nPrénom : Jeanne\r\nMessage : x", False, id="names-only"),
        pytest.param(
            "Nom : Martin\r\nPrénom : Jeanne\r\nAdresse : 1 rue Haute 75001 Paris\r\nMessage : x",
            True,
            id="name-and-address",
        ),
        pytest.param(
            "Nom : Martin\r\nRéférence client : 123456789\r\nMessage : x", True, id="customer-ref"
        ),
        pytest.param(
            "Nom : Martin\r\nTéléphone : 01 23 45 67 89\r\nMessage : x", True, id="landline"
        ),
    ],
)
def test_form_without_from_needs_someone_to_identify(fields: str, usable: bool) -> None:
    raw = _mail(fields.encode(), headers=b"Content-Type: text/plain; charset=utf-8\r\n", sender=b"")
    if usable:
        assert _parse(raw).form is not None
    else:
        with pytest.raises(NoUsableSender):
            _parse(raw)


def test_the_same_mail_delivered_twice_hashes_the_same() -> None:
    """An MTA retry after a lost reply, an alias delivering again: the copies differ only
    in what each hop added. They used to be two items, two acknowledgements."""
    headers = b"Message-ID: <dup@example.test>\r\nSubject: Facture\r\n"
    first = (
        b"Return-Path: <jeanne.martin@example.test>\r\n"
        b"Received: from mx1.example.test by imap.eau.example.org; Mon, 2 Nov 2026 10:00:00\r\n"
        b"\tfor <service-client@eau.example.org>\r\n" + _mail(b"Ma facture", headers=headers)
    )
    second = (
        b"Delivered-To: service-client@eau.example.org\r\n"
        b"Received: from mx2.example.test by imap.eau.example.org; Mon, 2 Nov 2026 10:05:00\r\n"
        b"Authentication-Results: mx2; spf=pass\r\n" + _mail(b"Ma facture", headers=headers)
    )
    other = _mail(b"Ma facture, encore", headers=headers)
    assert _parse(first).content_sha256 == _parse(second).content_sha256
    assert _parse(first).content_sha256 != _parse(other).content_sha256
