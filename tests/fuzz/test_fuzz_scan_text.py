"""Bad-input campaign, scan index files and OCR text: parsed into values, never an exception.

The provider's index is read into rows and problems, each problem with its
reason (``parse_index`` raises nothing, ``plan_batch`` neither); the cases
are real index shapes broken: columns missing, moved, doubled or extra,
impossible dates, wrong separators, unbalanced quotes, fields over the CSV
module's size limit, NUL bytes, UTF-16, mixed encodings, rows over the limit.

OCR text is whatever tesseract makes of a page: the cases are letters broken
as OCR breaks them (characters swapped, lines merged or cut, garbage runs)
and shapes that make regular expressions backtrack. Facts are extracted and
the ``IntakeItem`` built within a time bound, and it is always valid.
"""

from __future__ import annotations

import codecs
import datetime as dt
import random
import zoneinfo
from collections.abc import Callable

from schemas import IntakeItem
from services.intake_scan.domain.batches import plan_batch
from services.intake_scan.domain.index import MAX_ROWS, parse_index
from services.intake_scan.domain.letters import build_letter_item, extract_letter_facts
from services.intake_scan.testing import sample_letter_text

SEED = 20260313
INDEX_COUNT = 160
TEXT_COUNT = 140
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
SCANNED_AT = dt.datetime(2026, 3, 5, 8, 30, tzinfo=PARIS)

HEADERS = [
    ["file_name", "scanned_at", "tsa_box", "envelope_id", "page_count"],
    ["Fichier", "Date de numérisation", "Boîte TSA", "Enveloppe", "Nb pages"],
    ["FILE NAME", "SCANNED-AT"],
    ["scanned_at", "file_name", "file_name", "tsa"],
    ["nom", "date"], ["", "", ""], ["file_name"], ["a;b", "c"], ["file_name", "scanned_at"] * 40,
]  # fmt: skip
DATES = [
    "2026-03-05T08:30:00+01:00", "05/03/2026 08h30", "2026-02-30", "31/02/2026", "2026-13-01",
    "0000-01-01", "9999-12-31T23:59:59-23:59", "1/1/1 1:1", "le 5 mars", "", "2026-03-05T25:61",
    "99/99/9999", "2026-03-05T08:30:00+99:00", "\u0661\u0662/03/2026", "2026-03-05 08:30 CET",
]  # fmt: skip
NAMES = [
    "a.pdf", "../a.pdf", "/etc/passwd", "C:\\x.pdf", ".hidden.pdf", "", "a\x00.pdf", "x" * 300,
    "é.pdf", "e\u0301.pdf", "A.PDF", "sub/a.pdf", "\u202egpj.pdf", "con", " a.pdf ", '"a.pdf',
]  # fmt: skip
CELLS = ["60002", "5001", "50 001", "", "0", "-1", "2,5", "9" * 5000, "١", "ENV-1", "x" * 200]


def _index(rng: random.Random) -> bytes:
    header = rng.choice(HEADERS[:3] if rng.random() < 0.7 else HEADERS)
    separator = rng.choice([";", ";", ";", ";", ",", "\t", "|", ";;"])
    rows = [separator.join(header)]
    for _ in range(rng.randint(0, 12)):
        cells = [rng.choice(NAMES), rng.choice(DATES), *rng.sample(CELLS, rng.randint(0, 4))]
        if rng.random() < 0.2:
            rng.shuffle(cells)
        row_separator = rng.choice([";", ",", "\t"]) if rng.random() < 0.2 else separator
        rows.append(row_separator.join(cells))
    text = rng.choice(["\n", "\r\n", "\r"]).join(rows)
    shape = rng.randrange(10)
    if shape == 0:
        position = rng.randrange(len(text) + 1)
        text = text[:position] + rng.choice(['"', '""', '"\n', "\x00", "\ufeff"]) + text[position:]
    elif shape == 1:
        text += "\n" + separator.join(["a.pdf", '"' + "x" * 140_000 + '"', ""])
    encoding = rng.choice(["utf-8", "utf-8-sig", "cp1252", "latin-1"] * 4 + ["utf-16", "utf-32"])
    data = text.encode(encoding, errors="replace")
    if shape == 2:
        data = data[: rng.randrange(len(data) + 1)]
    elif shape == 3:
        data = codecs.BOM_UTF8 + data + "é".encode("cp1252") + "é".encode()
    elif shape == 4:
        position = rng.randrange(len(data) + 1)
        data = data[:position] + rng.randbytes(rng.randint(1, 40)) + data[position:]
    return data


def _too_many_rows(rng: random.Random) -> bytes:
    row = f"{rng.choice(NAMES)};2026-03-05;;;\n"
    return ("file_name;scanned_at;tsa_box;envelope_id;page_count\n" + row * (MAX_ROWS + 1)).encode()


def index_corpus() -> list[tuple[str, bytes]]:
    """``INDEX_COUNT`` broken indexes, the same on every run."""
    rng = random.Random(SEED)
    return [
        (f"index-{n}", _too_many_rows(rng) if n % 40 == 39 else _index(rng))
        for n in range(INDEX_COUNT)
    ]


GARBAGE = ["|", "_", "~", "»", "\u00ad", "\ufffd", "l", "I", "0", "O", "€", "\x0c", "\t", "  "]
BACKTRACK = [
    "1 " * 5000, "Réf client " * 800, "0" * 20_000, "TSA " * 3000, "@" * 5000 + ".fr",
    "a." * 8000, "M. " * 4000, "le 1er " * 3000, "12,34 € " * 3000, "06 " * 6000,
    "-" * 30_000, "\n" * 20_000, "Objet :" * 4000, "A" * 200_000,
]  # fmt: skip


def _ocr_text(rng: random.Random) -> str:
    text = sample_letter_text(customer_ref=rng.choice(["123 456 789", "l23 4S6 7B9", ""]))
    chars = list(text)
    for _ in range(rng.randint(0, 200)):
        position = rng.randrange(len(chars))
        action = rng.randrange(3)
        if action == 0:
            chars[position] = rng.choice(GARBAGE)
        elif action == 1:
            del chars[position]
        else:
            chars.insert(position, rng.choice(["\n", " ", "\r"]))
    text = "".join(chars)
    if rng.random() < 0.4:
        position = rng.randrange(len(text))
        text = text[:position] + rng.choice(BACKTRACK) + text[position:]
    return text


def text_corpus() -> list[tuple[str, str]]:
    """``TEXT_COUNT`` broken OCR texts, the same on every run."""
    rng = random.Random(SEED + 1)
    return [(f"ocr-{n}", _ocr_text(rng)) for n in range(TEXT_COUNT)]


INDEXES = index_corpus()
TEXTS = text_corpus()


def _check_index(data: bytes) -> str | None:
    parsed = parse_index(data, PARIS)
    if parsed.unreadable is not None:
        return None if parsed.unreadable.strip() and not parsed.rows else "unreadable with rows"
    for problem in parsed.problems:
        if not problem.reason.strip() or not problem.reason_code:
            return f"problem without a reason on line {problem.line}"
    for row in parsed.rows:
        if row.scanned_at.utcoffset() is None or "/" in row.file_name or "\\" in row.file_name:
            return f"unsafe row on line {row.line}"
    plan = plan_batch(parsed, ["a.pdf", "é.pdf", "A.PDF", "x.tif"])
    if any(not rejection.reason.strip() for rejection in plan.rejections):
        return "batch rejection without a reason"
    return None


def _check_text(text: str) -> str | None:
    facts = extract_letter_facts(text)
    item = build_letter_item(
        facts,
        item_id="scan:B1:" + "a" * 64,
        source_ref="scan://B1/a.pdf",
        scanned_at=SCANNED_AT,
        tsa_box_from_index=None,
        text=text,
        page_confidences=(42.0,),
        confidence_floor=60.0,
    )
    if IntakeItem.model_validate_json(item.model_dump_json()) != item:
        return "item does not survive a JSON round trip"
    return None


def _run(cases: list[tuple[str, bytes]] | list[tuple[str, str]], check: Callable[..., object]) -> list[str]:  # fmt: skip
    failures = []
    for case_id, value in cases:
        try:
            problem = check(value)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"[:300]
        if problem is not None:
            failures.append(f"{case_id}: {problem}")
    return failures


def test_fuzz_scan_text_corpora_are_fixed() -> None:
    assert (len(INDEXES), len(TEXTS)) == (INDEX_COUNT, TEXT_COUNT)
    assert (index_corpus(), text_corpus()) == (INDEXES, TEXTS)


def test_fuzz_scan_index_campaign(exercised: Callable[[str, int], None]) -> None:
    failures = _run(INDEXES, _check_index)
    exercised("scan_index", len(INDEXES))
    assert failures == []


def test_fuzz_ocr_text_campaign(exercised: Callable[[str, int], None]) -> None:
    failures = _run(TEXTS, _check_text)
    exercised("ocr_text", len(TEXTS))
    assert failures == []
