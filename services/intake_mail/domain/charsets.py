"""Turning the bytes of real mail into clean text: charsets, encoded words, 8-bit headers.

Rule (issue 4, "Parsing"): real mail declares its charset wrongly or not at all.
Latin-family labels (US-ASCII, ISO-8859-1/15, windows-1252, UTF-8 or none) are
decoded as UTF-8 when the bytes are valid UTF-8, else as windows-1252 (what the
WHATWG encoding standard does with a Latin-1 label), else as Latin-1. Other
known labels are tried first, then UTF-8 and windows-1252 (a fallback full of
control characters is binary, not text). Text that none of these decodes is
rejected (``UndecodableCharset``) rather than stored as noise.
Headers are never rejected: they fall back to replacement characters.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from email.errors import HeaderParseError
from email.header import decode_header

from services.intake_mail.domain.rejections import UndecodableCharset

__all__ = ["clean_text", "codec_for", "decode_body", "decode_header_text", "undo_8bit"]

_LATIN_CODECS = frozenset({"ascii", "latin-1", "iso8859-1", "iso8859-15", "cp1252", "utf-8"})
_REFUSED_CODECS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "mbcs", "oem"}
)
_MAX_REPLACEMENT_RATIO = 0.02
_MAX_HEADER_CHARS = 16_384

_INVISIBLE = re.compile("[\u200b-\u200d\u2060\ufeff\ud800-\udfff]")
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BINARY = re.compile("[\x00-\x08\x0b\x0e-\x1f]")
_SPACES = re.compile("[\xa0\u2000-\u200a\u202f\u205f\u3000]")
_MANY_BLANKS = re.compile(r"\n{3,}")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_SURROGATE = re.compile("[\ud800-\udfff]")


def codec_for(label: str | None) -> str | None:
    """Return Python's codec name for a MIME charset label, or None when unknown or unsafe.

    Rule (issue 4, "Parsing", charsets): labels are matched case-insensitively,
    quotes stripped; codecs that are not real text charsets are refused.
    """
    if not label:
        return None
    cleaned = label.strip().strip("\"'").strip().lower()
    if not cleaned or len(cleaned) > 64:
        return None
    try:
        info = codecs.lookup(cleaned)
    except (LookupError, ValueError):
        return None
    if info.name.replace("_", "-") in _REFUSED_CODECS:
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def _try(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeError, LookupError, ValueError):
        return None


def decode_body(data: bytes, declared: str | None) -> str:
    """Decode the bytes of a text part, repairing missing or wrong charsets.

    Rule (issue 4, "Parsing"; "Bad input" for the rejection): see the module
    docstring for the order of attempts. Raises ``UndecodableCharset`` when the
    label is unknown or wrong and no fallback decodes the bytes.
    """
    codec = codec_for(declared)
    if codec in (None, *_LATIN_CODECS) and data.isascii():
        return data.decode("ascii")
    latin = codec in _LATIN_CODECS or (codec is None and not declared)
    attempts = ["utf-8", "cp1252"] if latin or codec is None else [codec, "utf-8", "cp1252"]
    for attempt in attempts:
        text = _try(data, attempt)
        if text is not None and (attempt == codec or _plausible(text)):
            return text
    if latin:
        return data.decode("latin-1")
    if codec is not None:
        text = data.decode(codec, errors="replace")
        if text.count("\ufffd") <= max(1.0, len(text) * _MAX_REPLACEMENT_RATIO):
            return text
    label = "missing" if not declared else "unknown" if codec is None else "wrong"
    raise UndecodableCharset(f"text part with a {label} charset label could not be decoded")


def _plausible(text: str) -> bool:
    """A fallback decoding full of control characters is binary read as text: not plausible."""
    return len(_BINARY.findall(text)) <= len(text) * _MAX_REPLACEMENT_RATIO


def _decode_lenient(data: bytes, declared: str | None) -> str:
    try:
        return decode_body(data, declared)
    except UndecodableCharset:
        return data.decode("utf-8", errors="replace")


def undo_8bit(value: str) -> str:
    """Recover raw 8-bit header bytes (kept by the parser as surrogate escapes) as text.

    Rule (issue 4, "Parsing": 8-bit headers): UTF-8 when valid, else windows-1252.
    """
    if not _has_surrogates(value):
        return value
    try:
        data = value.encode("utf-8", errors="surrogateescape")
    except UnicodeError:
        return value.encode("utf-8", errors="replace").decode("utf-8")
    return _decode_lenient(data, None)


def _has_surrogates(value: str) -> bool:
    return not value.isascii() and _SURROGATE.search(value) is not None


def decode_header_text(raw: str) -> str:
    """Decode a header value: unfold, recover 8-bit bytes, decode RFC 2047 encoded words.

    Rule (issue 4, "Parsing": encoded-word headers, 8-bit headers). Never raises:
    an unknown charset in an encoded word falls back to UTF-8/windows-1252.
    """
    value = _FOLD.sub("", raw[:_MAX_HEADER_CHARS])
    value = undo_8bit(value)
    if "=?" in value:
        try:
            chunks = decode_header(value)
        except (HeaderParseError, ValueError, LookupError, IndexError, AssertionError):
            chunks = [(value, None)]
        parts: list[str] = []
        for chunk, charset in chunks:
            if isinstance(chunk, bytes):
                parts.append(_decode_lenient(chunk, charset))
            else:
                parts.append(chunk)
        value = "".join(parts)
    return " ".join(clean_text(value).split())


def clean_text(text: str) -> str:
    """Normalise decoded text: newlines, NFC, no control, invisible or lone surrogate characters.

    Rule (issue 4, "Parsing"): the text must be safe to serialise as UTF-8 JSON
    and pleasant to read; paragraphs are kept, runs of blank lines collapse to one.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    text = unicodedata.normalize("NFC", text)
    text = _SPACES.sub(" ", text)
    text = _CONTROLS.sub("", text)
    lines = [line.rstrip() for line in text.split("\n")]
    return _MANY_BLANKS.sub("\n\n", "\n".join(lines)).strip("\n")
