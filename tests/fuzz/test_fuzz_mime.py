"""Bad-input campaign, mail: structure-aware malformed MIME only ever raises ``MailRejected``.

Unlike ``tests/unit/intake_mail/test_mail_fuzz.py`` (random bytes and byte
mutations of the corpus), the cases here are built as MIME and broken where
parsers break: truncated or lying boundaries, wrong or missing charsets,
encoded-word garbage, ``message/rfc822`` and multipart nesting far past any
real mail, huge headers, bad base64 and quoted-printable, hostile file names,
mixed line endings, mails over the size limit. A fixed seed makes the corpus
the same on every run; a failure names its case.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
import re
from collections.abc import Callable

from schemas import IntakeItem
from services.intake_mail.domain import (
    MailRejected,
    acknowledgement_decision,
    build_intake_item,
    item_id_for,
    parse_mail,
)

SEED = 20260309
PER_KIND = 25
MAX_BYTES = 300_000
REASON_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
FALLBACK = dt.datetime(2026, 3, 9, 12, 0, tzinfo=dt.UTC)

Case = tuple[str, bytes]
HEAD = (
    b"From: Jeanne Martin <jeanne.martin@example.test>\r\n"
    b"To: service-client@eau.example.org\r\n"
    b"Subject: Fuite au compteur\r\n"
    b"Date: Mon, 09 Mar 2026 10:00:00 +0100\r\n"
    b"Message-ID: <fuzz@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
)
TEXT = "Bonjour, ma référence client est 123456789. Merci de rappeler.".encode()
CHARSETS = [
    b"utf-8", b"x-unknown", b"utf-7", b"utf-16", b"utf-32", b"iso-2022-jp", b"cp1252", b"",
    b'"utf-8', b"utf-8\x00", b"rot13", b"hex", b"zlib", b"uu", b"bz2", b"base64", b"idna",
    b"punycode", b"unicode-escape", b"raw-unicode-escape", b"utf-8-sig", b"mbcs", b"ascii",
    b"latin-1''", b"=?utf-8?q?x?=", b"\xff\xfe", b"x" * 300, b"utf_16_be", b"gb18030",
]  # fmt: skip


def _mail(content_type: bytes, body: bytes, *, extra: bytes = b"", head: bytes = HEAD) -> bytes:
    return head + extra + b"Content-Type: " + content_type + b"\r\n\r\n" + body


def _multipart(boundary: bytes, parts: list[bytes], *, close: bool = True) -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return body + (b"--" + boundary + b"--\r\n" if close else b"")


def _text_part(charset: bytes = b"utf-8", body: bytes = TEXT, cte: bytes = b"8bit") -> bytes:
    return (
        b"Content-Type: text/plain; charset=" + charset + b"\r\n"
        b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n" + body
    )


def _pdf_part(payload: bytes, name: bytes = b"facture.pdf") -> bytes:
    return (
        b"Content-Type: application/pdf; name=" + name + b"\r\n"
        b"Content-Disposition: attachment; filename=" + name + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + payload
    )


def _truncated_boundary(rng: random.Random) -> bytes:
    boundary = rng.choice([b"b1", b"=_x", b"a" * 200, b"", b'"', b"b1 b2", b"--", b"\xe9"])
    declared = rng.choice([boundary, b"other", b'"' + boundary, boundary + b'"', b""])
    parts = [_text_part(), _pdf_part(base64.b64encode(b"%PDF-1.4 " * 20))]
    whole = _mail(
        b'multipart/mixed; boundary="' + declared + b'"',
        _multipart(boundary, parts, close=rng.random() < 0.5),
    )
    return whole[: rng.randint(len(HEAD), len(whole))]


def _charset(rng: random.Random) -> bytes:
    body = rng.choice([TEXT, rng.randbytes(rng.randint(1, 300)), "é€".encode("utf-16"), b"\x00"])
    part = _text_part(rng.choice(CHARSETS), body, rng.choice([b"8bit", b"7bit", b"binary"]))
    if rng.random() < 0.5:
        return HEAD + part
    html = b"<p>" + body + b"</p>"
    alternative = [part, _text_part(rng.choice(CHARSETS), html).replace(b"plain", b"html")]
    return _mail(b"multipart/alternative; boundary=alt", _multipart(b"alt", alternative))


_WORDS = [
    b"=?utf-8?B?####?=", b"=?unknown?Q?x?=", b"=?utf-8?X?abc?=", b"=?utf-16?b?QQ?=",
    b"=?utf-8?q?=E9=?=", b"=?=?utf-8?q?a?=?=", b"=?utf-8*fr?q?x?=", b"=??q??=", b"=?utf-8?b?",
    b"=?iso-8859-1?q?caf=E9?=", b"=?rot13?q?x?=", b"=?utf-8?b?" + b"A" * 5000 + b"?=",
    b"\xe9\xff", b"\x00", b"<>@,;:", b'"unterminated', b"(comment (nested", b"a@", b"@b",
]  # fmt: skip


def _encoded_words(rng: random.Random) -> bytes:
    words = b" ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 40)))
    field = rng.choice([b"Subject", b"From", b"Reply-To", b"To", b"Sender", b"Message-ID"])
    head = HEAD if field != b"From" or rng.random() < 0.5 else HEAD.split(b"\r\n", 1)[1]
    return _mail(
        b"text/plain; charset=utf-8", TEXT, extra=field + b": " + words + b"\r\n", head=head
    )


def _nested_rfc822(rng: random.Random) -> bytes:
    depth = rng.choice([1, 5, 19, 20, 21, 40, 80, 150])
    inner = _mail(b"text/plain", TEXT)
    for level in range(depth):
        if rng.random() < 0.5:
            inner = HEAD + b"Content-Type: message/rfc822\r\n\r\n" + inner
        else:
            boundary = b"n%d" % level
            inner = _mail(
                b"multipart/mixed; boundary=" + boundary,
                _multipart(boundary, [_text_part(), inner], close=rng.random() < 0.8),
            )
    return inner


def _huge_headers(rng: random.Random) -> bytes:
    shape = rng.randrange(5)
    if shape == 0:
        extra = b"X-Long: " + b"x" * rng.randint(10_000, 200_000) + b"\r\n"
    elif shape == 1:
        extra = b"".join(b"X-H%d: v\r\n" % n for n in range(rng.randint(1000, 8000)))
    elif shape == 2:
        extra = b"Subject: a" + b"\r\n b" * rng.randint(1000, 20_000) + b"\r\n"
    elif shape == 3:
        params = b"".join(b"; p%d=v" % n for n in range(rng.randint(500, 5000)))
        return _mail(b"text/plain" + params, TEXT)
    else:
        extra = b"To: " + b", ".join(b"a%d@example.test" % n for n in range(5000)) + b"\r\n"
    return _mail(b"text/plain; charset=utf-8", TEXT, extra=extra)[:MAX_BYTES]


def _bad_base64(rng: random.Random) -> bytes:
    good = base64.b64encode(TEXT + rng.randbytes(40))
    payload = rng.choice(
        [
            good[:-1], good + b"====", b"====", b"!!!###", good.replace(b"A", b"*"),
            b"\r\n".join(good[i : i + 7] for i in range(0, len(good), 7)), b"A", b"\x00" * 10,
            good + b"\r\n--not-a-boundary", base64.b64encode(b"\xff\xfe\x00"),
        ]
    )  # fmt: skip
    if rng.random() < 0.5:
        return HEAD + _text_part(rng.choice(CHARSETS[:8]), payload, b"base64")
    parts = [_text_part(), _pdf_part(payload)]
    return _mail(b"multipart/mixed; boundary=b", _multipart(b"b", parts))


def _bad_qp(rng: random.Random) -> bytes:
    payload = rng.choice(
        [
            b"caf=E9", b"=ZZ=", b"=", b"fin=\r\n", b"=\r\n" * 500, b"a" * 20_000, b"=00=00",
            b"=C3", b"=e9=e8", b"=\n=\n", b"soft=  \r\nbreak", b"=3D=3D=3", b"\x00=FF\x00",
        ]
    )  # fmt: skip
    cte = rng.choice([b"quoted-printable", b"QUOTED-PRINTABLE", b"x-unknown", b"base64 qp"])
    return HEAD + _text_part(rng.choice([b"utf-8", b"iso-8859-1", b"x-bad"]), payload, cte)


_NAMES = [
    b"../../etc/passwd", b"/abs/path.pdf", b"C:\\Windows\\x.pdf", b"a\x00b.pdf", b"." * 300,
    b'"unterminated', b"=?utf-8?q?=E9t=E9.pdf?=", b"con.pdf", b"x" * 5000, b"\xe9\xe8.pdf", b"",
]  # fmt: skip


def _file_names(rng: random.Random) -> bytes:
    name = rng.choice(_NAMES)
    disposition = rng.choice(
        [
            b"attachment; filename=" + name,
            b"attachment; filename*=utf-8''" + name.replace(b"\x00", b"%00"),
            b"attachment; filename*0=a; filename*1=" + name,
            b"attachment; filename*=x-bad'fr'%e9%e8",
            b"inline; filename*0*=utf-8''%E9; filename*2=gap",
            b"attachment; filename",
        ]
    )
    part = (
        b"Content-Type: application/octet-stream\r\nContent-Disposition: " + disposition + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(rng.randbytes(64))
    )
    return _mail(b"multipart/mixed; boundary=b", _multipart(b"b", [_text_part(), part]))


def _line_endings(rng: random.Random) -> bytes:
    whole = _mail(b"multipart/mixed; boundary=b", _multipart(b"b", [_text_part(), _text_part()]))
    lines = whole.split(b"\r\n")
    return b"".join(line + rng.choice([b"\r\n", b"\n", b"\r", b"\n\r", b""]) for line in lines)


def _flipped(rng: random.Random) -> bytes:
    data = bytearray(
        _mail(
            b"multipart/mixed; boundary=b",
            _multipart(b"b", [_text_part(), _pdf_part(base64.b64encode(b"%PDF" * 30))]),
        )
    )
    for _ in range(rng.randint(1, 30)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def _over_limit(rng: random.Random) -> bytes:
    return _mail(b"text/plain", TEXT + b"x" * (MAX_BYTES + rng.randint(1, 5000)))


KINDS: dict[str, Callable[[random.Random], bytes]] = {
    "truncated-boundary": _truncated_boundary,
    "charset": _charset,
    "encoded-words": _encoded_words,
    "nested": _nested_rfc822,
    "huge-headers": _huge_headers,
    "bad-base64": _bad_base64,
    "bad-qp": _bad_qp,
    "file-names": _file_names,
    "line-endings": _line_endings,
    "flipped": _flipped,
    "over-limit": _over_limit,
}


def corpus() -> list[Case]:
    """The malformed mails of the campaign: ``PER_KIND`` of each kind, the same on every run."""
    rng = random.Random(SEED)
    return [(f"{kind}-{n}", make(rng)) for kind, make in KINDS.items() for n in range(PER_KIND)]


def check_mail(raw: bytes) -> str | None:
    """Parse one mail: ``None`` if all is well, else what went wrong."""
    try:
        parsed = parse_mail(raw, max_bytes=MAX_BYTES)
    except MailRejected as rejected:
        if not REASON_CODE.match(rejected.reason_code) or not rejected.reason.strip():
            return f"rejection without a proper reason: {rejected!r}"
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300]
    if sum(attachment.size for attachment in parsed.attachments) > len(raw):
        return "attachments hold more bytes than the mail"
    item = build_intake_item(
        parsed,
        item_id=item_id_for(parsed.message_id, parsed.content_sha256),
        source_ref="fuzz",
        received_at_fallback=FALLBACK,
        attachments=tuple(attachment.ref() for attachment in parsed.attachments),
    )
    if IntakeItem.model_validate_json(item.model_dump_json()) != item:
        return "item does not survive a JSON round trip"
    acknowledgement_decision(parsed, ["service-client@eau.example.org"])
    return None


def run(cases: list[Case], check: Callable[[bytes], str | None]) -> list[str]:
    """Every case checked; the failures, each named by its case id (a hang is the timeout's)."""
    failures = []
    for case_id, raw in cases:
        problem = check(raw)
        if problem is not None:
            failures.append(f"{case_id}: {problem}")
    return failures


CASES = corpus()


def test_fuzz_mime_corpus_is_fixed_and_distinct() -> None:
    assert len(CASES) == len(KINDS) * PER_KIND == 275
    assert len({raw for _, raw in CASES}) > 0.9 * len(CASES)
    assert corpus() == CASES  # the same seed gives the same mails


def test_fuzz_mime_campaign(exercised: Callable[[str, int], None]) -> None:
    failures = run(CASES, check_mail)
    exercised("mime", len(CASES))
    assert failures == []
