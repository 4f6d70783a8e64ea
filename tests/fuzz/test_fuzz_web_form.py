"""Bad-input campaign, website contact form: broken form mails only ever raise ``MailRejected``.

The form's mail (text ``Label : value`` lines, or an HTML table read through
``html_to_text``) is built and then broken: labels misspelt, doubled or
without colons, values far too long or full of control characters, e-mail
and mobile fields holding anything, HTML with unclosed tags, entity garbage,
scripts and comments. Each case goes through ``parse_mail`` (the accepted
ones must make a valid ``IntakeItem``), and its text through
``extract_contact_form`` directly, which must never raise.
"""

from __future__ import annotations

import html
import random
from collections.abc import Callable

from test_fuzz_mime import HEAD, check_mail, run  # type: ignore[import-not-found]

from services.intake_mail.domain.form import extract_contact_form
from services.intake_mail.domain.html_text import html_to_text

SEED = 20260310
COUNT = 160

FIELDS = [
    ("Nom", "Martin"), ("Prénom", "Jeanne"), ("Adresse e-mail", "jeanne.martin@example.test"),
    ("Numéro de téléphone mobile", "06 12 34 56 78"), ("Référence client", "123 456 789"),
    ("Adresse", "12 rue des Lilas"), ("Code postal", "69003"), ("Ville", "Lyon"),
    ("Objet", "Fuite"), ("Message", "Bonjour,\nune fuite au compteur.\nMerci"),
]  # fmt: skip
LABEL_NOISE = ["", "*", " (facultatif)", " :", "：", "\t", "_", "**", " (obligatoire)"]
VALUES = [
    "", "x" * 5000, "a@" * 400 + "example.test", "+" + "9" * 40, "06" * 300, "\x00\x01\x7f",
    "\u202e\u200b", "=?utf-8?q?x?=", "<script>alert(1)</script>", "Non renseigné", "@", "..@..",
    "123456789123456789", "0", "\ud7ff\ufffd", "jeanne.martin@example.test" * 20, "\r", "%00",
]  # fmt: skip
HTML_NOISE = [
    "<td>", "</td>", "<tr>", "</table>", "<!--", "-->", "<![CDATA[", "]]>", "&#xFFFFFFFF;",
    "&#0;", "&#55296;", "&amp", "&nosuchentity;", "<script>", "</style>", "<br/>", "<<>>",
    "<td colspan=99999>", "<img src=http://tracker.example/x.png>", "<table><table><table>",
]  # fmt: skip


def _text_form(rng: random.Random) -> str:
    fields = rng.sample(FIELDS, rng.randint(1, len(FIELDS)))
    lines = []
    for label, value in fields:
        label = label if rng.random() < 0.7 else label[: rng.randint(0, len(label))] + "x"
        value = value if rng.random() < 0.6 else rng.choice(VALUES)
        separator = rng.choice([" : ", ":", "\n", " ", " :: ", "\t"])
        lines.append(label + rng.choice(LABEL_NOISE) + separator + value)
        if rng.random() < 0.1:
            lines.append(lines[-1])  # the same field twice
    lines.append(rng.choice(["", "--", "Ce message a été envoyé depuis le formulaire", "> cité"]))
    return "\n".join(lines)


def _html_form(rng: random.Random) -> str:
    rows = []
    for label, value in rng.sample(FIELDS, rng.randint(1, len(FIELDS))):
        value = html.escape(value) if rng.random() < 0.6 else rng.choice(VALUES)
        rows.append(f"<tr><td>{label}</td><td>{value}</td></tr>")
    page = "<html><body><table>" + "".join(rows) + "</table></body></html>"
    for _ in range(rng.randint(0, 8)):
        position = rng.randint(0, len(page))
        page = page[:position] + rng.choice(HTML_NOISE) + page[position:]
    return page


def _as_mail(rng: random.Random, text: str, subtype: bytes) -> bytes:
    charset = rng.choice([b"utf-8", b"iso-8859-1", b"x-bad"])
    body = text.encode("utf-8", errors="surrogatepass")
    head: bytes = HEAD if rng.random() < 0.5 else HEAD.split(b"\r\n", 1)[1]  # no From: a form
    return head + b"Content-Type: text/" + subtype + b"; charset=" + charset + b"\r\n\r\n" + body


def corpus() -> list[tuple[str, str, bytes]]:
    """(case id, form text, the mail carrying it): the same ``COUNT`` forms on every run."""
    rng = random.Random(SEED)
    cases = []
    for n in range(COUNT):
        if n % 2:
            page = _html_form(rng)
            cases.append((f"html-{n}", html_to_text(page), _as_mail(rng, page, b"html")))
        else:
            text = _text_form(rng)
            cases.append((f"text-{n}", text, _as_mail(rng, text, b"plain")))
    return cases


CASES = corpus()


def _check_form_text(text: str) -> str | None:
    try:
        form = extract_contact_form(text)
    except Exception as exc:
        return f"extract_contact_form raised {type(exc).__name__}: {exc}"[:300]
    if form is not None and not isinstance(form.message, str):
        return "form message is not text"
    return None


def test_fuzz_web_form_corpus_is_fixed() -> None:
    assert len(CASES) == COUNT
    assert corpus() == CASES


def test_fuzz_web_form_campaign(exercised: Callable[[str, int], None]) -> None:
    failures = run([(case_id, raw) for case_id, _, raw in CASES], check_mail)
    for case_id, text, _ in CASES:
        problem = _check_form_text(text)
        if problem is not None:
            failures.append(f"{case_id}: {problem}")
    exercised("web_form", len(CASES))
    assert failures == []
