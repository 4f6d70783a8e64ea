"""Security limits of mail and telephony, and secrets (issue 9).

- attachments: their number and nesting are bounded, and their bytes never
  exceed the mail's (itself under ``max_message_bytes``);
- HTML from mail is never rendered, only converted to text: no script or
  style content, no markup, no remote reference reaches the item, and no
  module of intake_mail imports a renderer or an HTTP client;
- webhook authentication: no request is authentic without the platform's
  secret or token, whatever its headers;
- secrets: every password, secret or token setting is a ``SecretStr`` and
  shows in no ``repr`` or dump of the settings; files work for mail passwords.

Log events drop secret fields (password, token, secret, authorization) as
they drop personal ones.
"""

from __future__ import annotations

import ast
import base64
import datetime as dt
import importlib
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

import services
from services.common.logging import scrub_personal_data
from services.common.settings import ServiceSettings
from services.intake_mail.domain import build_intake_item, item_id_for, parse_mail
from services.intake_mail.domain.html_text import html_to_text
from services.intake_mail.domain.parts import MAX_DEPTH, MAX_PARTS
from services.intake_mail.settings import IntakeMailSettings
from services.intake_phone.auth import WebhookAuth, sign
from services.intake_phone.settings import IntakePhoneSettings

ROOT = Path(services.__file__).parent
HEAD = (
    b"From: Jeanne Martin <jeanne.martin@example.test>\r\nSubject: Fuite\r\n"
    b"Message-ID: <limits@example.test>\r\nMIME-Version: 1.0\r\n"
)
PROPERTY = settings(max_examples=150, deadline=None, database=None, derandomize=True)


def _multipart(parts: list[bytes], boundary: bytes = b"b") -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return (
        HEAD
        + b'Content-Type: multipart/mixed; boundary="'
        + boundary
        + b'"\r\n\r\n'
        + body
        + b"--"
        + boundary
        + b"--\r\n"
    )


def _attachment(number: int, size: int = 30) -> bytes:
    return (
        b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=p%d.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" % number + base64.b64encode(bytes(size))
    )


# --- attachments ----------------------------------------------------------------------------


def test_limit_mail_attachment_count_is_bounded() -> None:
    text = b"Content-Type: text/plain\r\n\r\nBonjour"
    parsed = parse_mail(_multipart([text, *(_attachment(n) for n in range(MAX_PARTS + 100))]), max_bytes=10**7)  # fmt: skip
    assert len(parsed.attachments) < MAX_PARTS
    assert "TooManyParts" in parsed.defects


def test_limit_mail_nesting_is_bounded() -> None:
    inner = b"Content-Type: text/plain\r\n\r\nBonjour"
    for level in range(MAX_DEPTH + 30):
        boundary = b"n%d" % level
        inner = (
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n--' + boundary
            + b"\r\n" + _attachment(level) + b"\r\n--" + boundary + b"\r\n" + inner
            + b"\r\n--" + boundary + b"--"
        )  # fmt: skip
    parsed = parse_mail(HEAD + inner, max_bytes=10**7)
    assert "NestingTooDeep" in parsed.defects
    assert len(parsed.attachments) <= MAX_DEPTH + 1


def test_limit_mail_attachment_bytes_never_exceed_the_mail() -> None:
    """No decoding amplifies: attachments are bounded by ``max_message_bytes`` through the mail."""
    raw = _multipart([_attachment(n, size=50_000) for n in range(20)])
    parsed = parse_mail(raw, max_bytes=len(raw))
    assert sum(attachment.size for attachment in parsed.attachments) <= len(raw)
    with pytest.raises(Exception, match="over the limit"):
        parse_mail(raw, max_bytes=len(raw) - 1)


# --- HTML is converted to text, never rendered ----------------------------------------------

HOSTILE_HTML = (
    "<html><head><title>T</title><meta http-equiv='refresh' content='0;url=http://evil.example/'>"
    "<link rel=stylesheet href='http://evil.example/s.css'><style>body{background:url(x)}</style>"
    "<script>alert('XSS')</script></head><body onload=\"alert('XSS')\">"
    "<p>Bonjour, ma référence client est 123456789.</p>"
    "<img src='http://tracker.example/pixel.gif'><iframe src='http://evil.example/'>cadre</iframe>"
    "<object data='x.swf'>objet</object><svg><script>alert('XSS')</script></svg>"
    "<a href='javascript:alert(1)'>lien</a><noscript>noscript</noscript>"
    "<template>modèle</template><!-- commentaire --><![CDATA[cdata]]></body></html>"
)


def test_limit_html_mail_becomes_text_only() -> None:
    raw = HEAD + b"Content-Type: text/html; charset=utf-8\r\n\r\n" + HOSTILE_HTML.encode()
    parsed = parse_mail(raw, max_bytes=10**6)
    item = build_intake_item(
        parsed,
        item_id=item_id_for(parsed.message_id, parsed.content_sha256),
        source_ref="limits",
        received_at_fallback=dt.datetime(2026, 3, 9, tzinfo=dt.UTC),
        attachments=(),
    )
    for text in (parsed.text, parsed.body_text, item.text):
        assert "Bonjour, ma référence client est 123456789." in text
        for leak in ("<", "alert", "XSS", "evil.example", "tracker", "background", "commentaire"):
            assert leak not in text
    assert parsed.attachments == ()  # the HTML body is not kept to be opened somewhere


# whole constructs only: an unclosed tag or quote before the element would make it attribute
# text, for html.parser as for a browser (``<img alt=<script>x</script>`` shows "x")
_fragments = st.sampled_from(
    [
        "<p>", "</p>", "<div>", "<td>", "<br>", "<b>", "</b>", "<!-- x -->", "<![CDATA[x]]>",
        "ipt>", "&lt;", "&#60;", ">", " ", "\n", "texte", "é", "</div >", "<br/>",
        "<img src=x onerror=alert(1)>", "<a href='javascript:alert(1)'>", "<?php ?>", "</x>",
    ]
)  # fmt: skip
_hidden = st.sampled_from(["script", "style", "template", "noscript", "title"])


@PROPERTY
@given(
    before=st.lists(_fragments, max_size=20).map("".join),
    tag=_hidden,
    upper=st.booleans(),
    after=st.lists(_fragments, max_size=20).map("".join),
)
def test_limit_html_hidden_content_never_reaches_the_text(
    before: str, tag: str, upper: bool, after: str
) -> None:
    name = tag.upper() if upper else tag
    marker = "SECRETPAYLOAD"
    text = html_to_text(f"{before}<{name} type='x'>{marker}</{name}>{after}")
    assert marker not in text


RENDERERS = {
    "webbrowser", "weasyprint", "pdfkit", "imgkit", "xhtml2pdf", "html2image", "playwright",
    "selenium", "pyppeteer", "PyQt5", "PyQt6", "PySide6", "cefpython3", "requests", "httpx",
    "urllib.request", "http.client", "aiohttp",
}  # fmt: skip


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_limit_intake_mail_imports_no_renderer_nor_http_client() -> None:
    files = sorted((ROOT / "intake_mail").rglob("*.py"))
    assert files
    for path in files:
        for module in _imports(path):
            top = {module, module.split(".")[0]}
            assert not top & RENDERERS, f"{path.relative_to(ROOT)} imports {module}"


# --- webhook authentication -----------------------------------------------------------------

SECRET = "hmac-secret-for-tests"
TOKEN = "bearer-token-for-tests"


def _auth() -> WebhookAuth:
    return WebhookAuth(
        IntakePhoneSettings(
            generic_hmac_secret=SecretStr(SECRET), ringover_bearer_token=SecretStr(TOKEN)
        )
    )


_header_values = st.text(max_size=80) | st.sampled_from(
    ["sha256=", "sha256=" + "0" * 64, "Bearer ", "Bearer " + TOKEN[:-1], "bearer", SECRET, TOKEN]
)


@PROPERTY
@given(
    platform=st.sampled_from(["generic", "ringover", "twilio", "asterisk", "unknown", ""]),
    headers=st.dictionaries(
        st.sampled_from(["x-aiguillage-signature", "authorization", "x-other"]),
        _header_values,
        max_size=3,
    ),
    body=st.binary(max_size=200),
)
def test_limit_webhook_refuses_whatever_headers_without_the_credentials(
    platform: str, headers: dict[str, str], body: bytes
) -> None:
    assert not _auth().verify(platform, headers, body)


@PROPERTY
@given(body=st.binary(min_size=1, max_size=200), flip=st.integers(min_value=0, max_value=199))
def test_limit_webhook_signature_binds_the_exact_body(body: bytes, flip: int) -> None:
    auth = _auth()
    signed = {"x-aiguillage-signature": sign(SECRET, body)}
    assert auth.verify("generic", signed, body)
    changed = bytearray(body)
    changed[flip % len(body)] ^= 0x01
    assert not auth.verify("generic", signed, bytes(changed))
    assert not auth.verify("ringover", signed, body)  # a token platform ignores signatures
    assert not auth.verify("twilio", {"x-aiguillage-signature": sign("", body)}, body)
    assert auth.verify("ringover", {"authorization": f"Bearer {TOKEN}"}, body)


# --- secrets --------------------------------------------------------------------------------

SETTINGS_MODULES = [
    "services.intake_mail.settings", "services.intake_phone.settings",
    "services.intake_scan.settings", "services.router.settings", "services.sla_watch.settings",
    "services.ops.settings",
]  # fmt: skip
SECRET_NAME = re.compile(r"(password|secret|token|api_key|credential)")


def _settings_classes() -> list[type[ServiceSettings]]:
    for module in SETTINGS_MODULES:
        importlib.import_module(module)
    found: list[type[ServiceSettings]] = [ServiceSettings]
    pending = list(ServiceSettings.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda cls: cls.__name__)


def _secret_fields(cls: type[ServiceSettings]) -> list[str]:
    return [
        name for name in cls.model_fields if SECRET_NAME.search(name) and not name.endswith("_file")
    ]


def test_limit_secret_settings_are_secret_strings() -> None:
    classes = _settings_classes()
    assert len(classes) >= 7
    for cls in classes:
        for name in _secret_fields(cls):
            annotation = str(cls.model_fields[name].annotation)
            assert "SecretStr" in annotation, f"{cls.__name__}.{name} is {annotation}"


@pytest.mark.parametrize("cls", _settings_classes(), ids=lambda cls: cls.__name__)
def test_limit_secrets_show_in_no_repr_or_dump(cls: type[ServiceSettings]) -> None:
    values: dict[str, Any] = {name: SecretStr(f"s3cr3t-{name}") for name in _secret_fields(cls)}
    values |= {name: "user" for name in cls.model_fields if name.endswith("_user")}
    built = cls(**values)
    shown = " ".join([repr(built), str(built), built.model_dump_json(), str(built.model_dump())])
    assert "s3cr3t" not in shown


def test_limit_mail_passwords_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "imap").write_text("imap-pass\n", encoding="utf-8")
    (tmp_path / "smtp").write_text("smtp-pass", encoding="utf-8")
    built = IntakeMailSettings(
        imap_password_file=tmp_path / "imap", smtp_password_file=tmp_path / "smtp"
    )
    assert (built.imap_secret(), built.smtp_secret()) == ("imap-pass", "smtp-pass")
    assert "pass" not in repr(built).replace("password", "")


def test_limit_database_password_shows_in_no_repr() -> None:
    url = "postgresql+asyncpg://aiguillage:s3cr3t@db/aiguillage"
    built = ServiceSettings.model_validate({"DATABASE_URL": url})
    assert built.resolved_database_url() == url
    assert "s3cr3t" not in repr(built) + built.model_dump_json()


def test_limit_log_scrubber_drops_secret_fields() -> None:
    event = {"password": "p", "token": "t", "hmac_secret": "s", "authorization": "Bearer t"}
    assert dict(scrub_personal_data(None, "info", event)) == {}
