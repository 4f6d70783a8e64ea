"""Charset decoding and HTML-to-text conversion (issue 4, "Parsing": charsets, HTML-only mail)."""

from __future__ import annotations

import pytest

from services.intake_mail.domain import UndecodableCharset
from services.intake_mail.domain.charsets import (
    clean_text,
    codec_for,
    decode_body,
    decode_header_text,
)
from services.intake_mail.domain.html_text import html_to_text


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        pytest.param("ISO-8859-1", "iso8859-1", id="latin1"),
        pytest.param('"windows-1252"', "cp1252", id="quoted"),
        pytest.param("utf8", "utf-8", id="alias"),
        pytest.param("x-unknown", None, id="unknown"),
        pytest.param("base64", None, id="bytes-codec"),
        pytest.param("unicode_escape", None, id="refused"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
    ],
)
def test_codec_for(label: str | None, expected: str | None) -> None:
    assert codec_for(label) == expected


@pytest.mark.parametrize(
    ("data", "label", "expected"),
    [
        pytest.param(b"plain", None, "plain", id="ascii"),
        pytest.param("é€".encode("cp1252"), "iso-8859-15", "é€", id="cp1252-for-latin9"),
        pytest.param(b"\x81\x8d", "iso-8859-1", "\x81\x8d", id="latin1-last-resort"),
        pytest.param("日本".encode("shift_jis"), "shift_jis", "日本", id="shift-jis"),
        pytest.param("é".encode(), "x-unknown", "é", id="unknown-label-utf8"),
    ],
)
def test_decode_body(data: bytes, label: str | None, expected: str) -> None:
    assert decode_body(data, label) == expected


def test_decode_body_rejects_binary_under_unknown_label() -> None:
    with pytest.raises(UndecodableCharset) as caught:
        decode_body(b"\x81\x8d\x8f\x90\x9d", "x-unknown")
    assert caught.value.reason_code == "undecodable_charset"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("=?utf-8?q?caf=C3=A9?=", "café", id="q"),
        pytest.param("Re: =?iso-8859-1?b?ZOlncuh2ZW1lbnQ=?=", "Re: dégrèvement", id="b-mixed"),
        pytest.param("caf\udcc3\udca9", "café", id="surrogate-escaped-utf8"),
        pytest.param("caf\udce9", "café", id="surrogate-escaped-latin1"),
        pytest.param("a\r\n  b", "a b", id="folded"),
        pytest.param("=?utf-8?q?a\x00b?=", "ab", id="control-dropped"),
    ],
)
def test_decode_header_text(raw: str, expected: str) -> None:
    assert decode_header_text(raw) == expected


def test_clean_text_is_utf8_safe() -> None:
    cleaned = clean_text("a\ud800b\u200bc\ufeff\r\nd\re\xa0f")
    assert cleaned == "abc\nd\ne f"
    cleaned.encode("utf-8")


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param("<p>Un</p><p>Deux</p>", "Un\nDeux", id="paragraphs"),
        pytest.param("Un<br>Deux<br/><br>Trois", "Un\nDeux\n\nTrois", id="breaks"),
        pytest.param("<script>alert(1)</script><style>p{}</style>Texte", "Texte", id="scripts"),
        pytest.param("<head><title>T</title></head><body>Corps</body>", "Corps", id="title"),
        pytest.param("a &amp; b &eacute;t&#233;&nbsp;!", "a & b été !", id="entities"),
        pytest.param("<!-- caché -->Vu<!--[if mso]>Outlook<![endif]-->", "Vu", id="comments"),
        pytest.param(
            "<table><tr><td>Nom</td><td>Martin</td></tr></table>", "Nom\tMartin", id="cells"
        ),
        pytest.param("<tr><td></td><td>B</td></tr>", "\tB", id="empty-first-cell"),
        pytest.param(
            "Réponse<blockquote>Ancien<br>texte</blockquote>Fin",
            "Réponse\n> Ancien\n> texte\nFin",
            id="blockquote",
        ),
        pytest.param("<ul><li>un</li><li>deux</li></ul>", "- un\n- deux", id="list"),
        pytest.param("<pre>a  b\n  c</pre>", "a  b\n  c", id="pre"),
        pytest.param("<p>a    b\n\n c</p>", "a b c", id="whitespace"),
        pytest.param("<div><![CDATA[x]]>ok</div>", "ok", id="cdata"),
        pytest.param("<div>non fermé <b>gras", "non fermé gras", id="unclosed-tags"),
        pytest.param("<script>never closed", "", id="unclosed-script"),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected
