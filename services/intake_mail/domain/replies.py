"""What the customer actually wrote in a plain e-mail: quoted history and signature removed.

Rules (issue 4, "Parsing": plain e-mails). Quoted history: lines starting with
``>``; a French or English reply header ("Le … a écrit :", "On … wrote:",
possibly wrapped over three lines) followed by quoted lines is dropped with
them, and when what follows it is not marked as quoted, everything from it on
is history; Outlook separators ("-----Message d'origine-----", "-----Original
Message-----") and "De : / Envoyé : / À : / Objet :" blocks cut the rest of the
mail. Signature: the "-- " delimiter, phone-app footers ("Envoyé de mon
iPhone") and a short tail (at most six short lines that do not read like
sentences or a P.S.) after a closing formula ("Cordialement,") are trimmed;
the formula itself stays. A reply header must carry a digit (its date).
"""

from __future__ import annotations

import re

__all__ = ["customer_text", "strip_quoted_history", "trim_signature"]

_WROTE = re.compile(
    r"^(?:le|on)\b.{0,300}?\b(?:a\s+[ée]crit|wrote|schrieb)\s*:?\s*$", re.IGNORECASE
)
_WROTE_START = re.compile(r"^(?:le|on)\s", re.IGNORECASE)
_ORIGINAL = re.compile(
    r"^-{2,}\s*(?:message d['’]origine|original message|message original)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^[*_]*(?:de|from)[*_]*\s*:\s*\S", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(r"^[*_]*(?:envoy[ée]|sent|date)[*_]*\s*:", re.IGNORECASE)
_OUTLOOK_TO = re.compile(r"^[*_]*(?:[àa]|to|objet|subject|cc)[*_]*\s*:", re.IGNORECASE)
_RULE = re.compile(r"^(?:_{10,}|-{10,})$")
_SIG_DELIMITER = re.compile(r"^--\s?$")
_APP_FOOTER = re.compile(
    r"^(?:envoy[ée] (?:de|depuis|à partir de) (?:mon|ma|l['’]|un|une) .{0,60}"
    r"|sent from (?:my|mail for) .{0,60}|get outlook for .{0,30}"
    r"|t[ée]l[ée]charger outlook pour .{0,30}|obtenir outlook pour .{0,30})$",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"^(?:(?:bien |tr[eè]s |tr[eè]s bien |tout )?(?:cordialement|cordiales salutations)"
    r"|cdlt|cdt|bien [àa] vous|(?:sinc[eè]res |meilleures |mes )?salutations(?: distingu[ée]es)?"
    r"|sinc[eè]rement|merci(?: beaucoup| d['’]avance| par avance| à vous)?"
    r"|(?:best |kind |warm )?regards|thanks|thank you|best)\b[ ,.!]*(?:\S.{0,40})?$",
    re.IGNORECASE,
)
_POSTSCRIPT = re.compile(r"^p\.?\s?s\b", re.IGNORECASE)
_SENTENCE_WORDS = 5
_MAX_SIG_LINES = 15
_MAX_TAIL_LINES = 6
_MAX_TAIL_WIDTH = 80
_MAX_CLOSING_WIDTH = 60


def _wrote_header_at(lines: list[str], index: int) -> int:
    """Return how many lines the reply header starting at ``index`` spans (0 if none)."""
    first = lines[index].strip()
    if not _WROTE_START.match(first):
        return 0
    joined = first
    for span in range(1, 4):
        if _WROTE.match(joined) and any(char.isdigit() for char in joined):
            return span
        if index + span >= len(lines) or not lines[index + span].strip():
            return 0
        joined = f"{joined} {lines[index + span].strip()}"
    return 0


def _outlook_block_at(lines: list[str], index: int) -> bool:
    stripped = lines[index].strip()
    if _ORIGINAL.match(stripped):
        return True
    if not _OUTLOOK_FROM.match(stripped):
        return False
    window = [line.strip() for line in lines[index + 1 : index + 7] if line.strip()]
    return any(map(_OUTLOOK_SENT.match, window)) and any(map(_OUTLOOK_TO.match, window))


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def strip_quoted_history(text: str) -> str:
    """Remove the quoted history of a reply, keeping inline answers (see module docstring).

    Rule (issue 4, "Parsing": quoted history removed, French, English and
    Outlook reply headers). Returns "" when nothing but history remains.
    """
    lines = text.split("\n")
    kept: list[str] = []
    index = 0
    while index < len(lines):
        if _outlook_block_at(lines, index):
            while kept and (not kept[-1].strip() or _RULE.match(kept[-1].strip())):
                kept.pop()
            break
        span = _wrote_header_at(lines, index)
        if span:
            after = next((line for line in lines[index + span :] if line.strip()), None)
            if after is None or not _is_quoted(after):
                break
            index += span
            continue
        if not _is_quoted(lines[index]):
            kept.append(lines[index])
        index += 1
    return "\n".join(kept).strip()


def _is_content(line: str) -> bool:
    """A tail line that reads like a sentence (or a P.S.) is the customer's, not a signature."""
    if len(line) > _MAX_TAIL_WIDTH or _POSTSCRIPT.match(line):
        return True
    return len(line.split()) >= _SENTENCE_WORDS and line.endswith((".", "?", "!"))


def trim_signature(text: str) -> str:
    """Trim a signature from the customer's text (see module docstring).

    Rule (issue 4, "Parsing": signatures trimmed: "-- " line, "Cordialement," and
    a short tail, "Envoyé de mon iPhone").
    """
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if _SIG_DELIMITER.match(line) and len(lines) - index - 1 <= _MAX_SIG_LINES:
            lines = lines[:index]
            break
    while lines and (not lines[-1].strip() or _APP_FOOTER.match(lines[-1].strip())):
        lines.pop()
    for index in range(len(lines) - 1, max(-1, len(lines) - _MAX_TAIL_LINES - 2), -1):
        line = lines[index].strip()
        if len(line) <= _MAX_CLOSING_WIDTH and _CLOSING.match(line):
            tail = [rest.strip() for rest in lines[index + 1 :] if rest.strip()]
            if len(tail) <= _MAX_TAIL_LINES and not any(map(_is_content, tail)):
                lines = lines[: index + 1]
            break
    return "\n".join(lines).strip()


def customer_text(text: str) -> str:
    """Return what the customer wrote: history removed, then the signature trimmed.

    Rule (issue 4, "Parsing": plain e-mails). If nothing remains (a bare
    forward, a mail that is all quotation), the full text is kept instead:
    nothing the customer sent is lost.
    """
    cleaned = trim_signature(strip_quoted_history(text))
    return cleaned or text.strip()
