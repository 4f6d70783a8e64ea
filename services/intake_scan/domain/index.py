"""The scan provider's index of a batch: one row per scanned letter (procedure 4.3, 5.1.1, 5.1.4).

The index is a CSV file (``;``, ``,`` or tab separated, UTF-8 with or without
BOM, else Windows-1252) with a header row. Columns, by header name (case,
accents, spaces and dashes do not matter; French names are accepted):

- ``file_name`` (fichier): the letter's file in the batch, no folder part;
- ``scanned_at`` (date_numerisation): scan date-time, the contact date J
  (5.1.4); ISO 8601 or ``DD/MM/YYYY HH:MM[:SS]``, in the provider's time zone
  when it carries no offset;
- ``tsa_box`` (tsa): the postal box the envelope was received at (5.1.1;
  60002 is an escalation to the customer-relations director, 4.9 NB);
- ``envelope_id`` (enveloppe): the provider's envelope reference;
- ``page_count`` (nb_pages): pages scanned for the letter.

``file_name`` and ``scanned_at`` are required; the others may be empty. A row
that cannot be read is a problem with its reason, never an exception: the
rest of the batch proceeds.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "COLUMNS",
    "IndexProblem",
    "IndexRow",
    "ParsedIndex",
    "parse_index",
    "parse_scan_datetime",
]

COLUMNS = ("file_name", "scanned_at", "tsa_box", "envelope_id", "page_count")
_REQUIRED = ("file_name", "scanned_at")
_ALIASES = {
    "file_name": ("filename", "file", "fichier", "nom_fichier", "nom_du_fichier", "document"),
    "scanned_at": (
        "scan_datetime", "scan_date", "scanned", "date_scan", "date_numerisation",
        "date_de_numerisation", "horodatage",
    ),
    "tsa_box": ("tsa", "boite_tsa", "box", "boite"),
    "envelope_id": ("envelope", "enveloppe", "id_enveloppe", "numero_enveloppe", "pli"),
    "page_count": ("pages", "nb_pages", "nombre_pages", "nombre_de_pages", "page_nb"),
}  # fmt: skip
MAX_ROWS = 20_000
_MAX_ENVELOPE = 100
_MAX_FILE_NAME = 255


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One letter as the provider listed it; ``line`` is the row's line number in the CSV."""

    line: int
    file_name: str
    scanned_at: dt.datetime
    tsa_box: str | None = None
    envelope_id: str | None = None
    page_count: int | None = None
    raw: str = ""


@dataclass(frozen=True, slots=True)
class IndexProblem:
    """A row that cannot be used, with a stable reason code and a readable reason."""

    line: int
    file_name: str | None
    reason_code: str
    reason: str
    raw: str


@dataclass(frozen=True, slots=True)
class ParsedIndex:
    """The usable rows in index order, the problems, or why the whole index is unreadable."""

    rows: tuple[IndexRow, ...] = ()
    problems: tuple[IndexProblem, ...] = ()
    unreadable: str | None = None


def _key(header: str) -> str:
    folded = unicodedata.normalize("NFKD", header.strip().lower())
    ascii_only = "".join(char for char in folded if not unicodedata.combining(char))
    return re.sub(r"[^a-z0-9]+", "_", ascii_only).strip("_")


def _columns(header: list[str]) -> dict[str, int] | str:
    lookup = {name: name for name in COLUMNS}
    lookup.update({alias: name for name, aliases in _ALIASES.items() for alias in aliases})
    found: dict[str, int] = {}
    for position, cell in enumerate(header):
        name = lookup.get(_key(cell))
        if name is not None and name not in found:
            found[name] = position
    missing = [name for name in _REQUIRED if name not in found]
    if missing:
        return f"header lacks the column(s) {', '.join(missing)}"
    return found


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _delimiter(header_line: str) -> str:
    counts = {sep: header_line.count(sep) for sep in (";", ",", "\t")}
    return max(counts, key=lambda sep: counts[sep])


_FRENCH = re.compile(
    r"^(?P<d>\d{1,2})/(?P<m>\d{1,2})/(?P<y>\d{4})"
    r"(?:[ T](?P<H>\d{1,2})[:h](?P<M>\d{2})(?::(?P<S>\d{2}))?)?$"
)


def parse_scan_datetime(value: str, default_tz: dt.tzinfo) -> dt.datetime | None:
    """Read the provider's scan date-time (5.1.4: the contact date is the scan date J).

    ISO 8601 (``2026-03-05T08:30:00+01:00``, ``2026-03-05 08:30``,
    ``2026-03-05``) or French (``05/03/2026 08:30``). Without an offset the
    value is taken in ``default_tz`` (the provider's local time); a date alone
    is the start of that day. ``None`` when unreadable.
    """
    text = value.strip()
    match = _FRENCH.match(text)
    try:
        if match is not None:
            parsed = dt.datetime(
                int(match["y"]), int(match["m"]), int(match["d"]),
                int(match["H"] or 0), int(match["M"] or 0), int(match["S"] or 0),
            )  # fmt: skip
        else:
            parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=default_tz)
    return parsed


_BOX = re.compile(r"^\d{2} ?\d{3}$")


def _file_name_problem(name: str) -> str | None:
    if not name:
        return "empty file name"
    if len(name.encode("utf-8")) > _MAX_FILE_NAME:
        return "file name longer than 255 bytes"
    if "/" in name or "\\" in name or "\x00" in name:
        return "file name holds a folder part; a batch is one flat folder"
    if name.startswith("."):
        return "file name starts with a dot (hidden or control file)"
    return None


def _row(
    cells: list[str], line: int, columns: dict[str, int], default_tz: dt.tzinfo, raw: str
) -> IndexRow | IndexProblem:
    def cell(name: str) -> str:
        position = columns.get(name)
        return cells[position].strip() if position is not None and position < len(cells) else ""

    name = unicodedata.normalize("NFC", cell("file_name"))
    problem = _file_name_problem(name)
    if problem is not None:
        return IndexProblem(line, name or None, "bad_index_row", problem, raw)
    scanned_at = parse_scan_datetime(cell("scanned_at"), default_tz)
    if scanned_at is None:
        return IndexProblem(line, name, "bad_index_row", "scan date-time unreadable", raw)
    box = cell("tsa_box")
    if box and not _BOX.match(box):
        return IndexProblem(line, name, "bad_index_row", "TSA box is not five digits", raw)
    pages = cell("page_count")
    if pages and not (pages.isascii() and pages.isdigit() and int(pages) > 0):
        return IndexProblem(line, name, "bad_index_row", "page count is not a positive number", raw)
    envelope = cell("envelope_id")[:_MAX_ENVELOPE] or None
    return IndexRow(
        line=line,
        file_name=name,
        scanned_at=scanned_at,
        tsa_box=box.replace(" ", "") or None,
        envelope_id=envelope,
        page_count=int(pages) if pages else None,
        raw=raw,
    )


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    for cells in reader:
        yield reader.line_num, cells


def parse_index(data: bytes, default_tz: dt.tzinfo) -> ParsedIndex:
    """Read a batch index into rows and problems (4.3: every scanned letter is accounted for).

    Blank lines are skipped. A row naming a file already listed is a
    ``duplicate_index_row`` problem (the first row wins); a row that cannot be
    read is a ``bad_index_row`` problem. An index without a usable header, or
    with more than 20,000 rows, is unreadable as a whole (``unreadable`` says why).
    """
    text = _decode(data)
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        return ParsedIndex(unreadable="index is empty")
    delimiter = _delimiter(first)
    rows: list[IndexRow] = []
    problems: list[IndexProblem] = []
    seen: set[str] = set()
    columns: dict[str, int] | None = None
    try:
        for line, cells in _records(text, delimiter):
            if not any(cell.strip() for cell in cells):
                continue
            raw = delimiter.join(cells)
            if columns is None:
                found = _columns(cells)
                if isinstance(found, str):
                    return ParsedIndex(unreadable=found)
                columns = found
                continue
            if len(rows) + len(problems) >= MAX_ROWS:
                return ParsedIndex(unreadable=f"index has more than {MAX_ROWS} rows")
            parsed = _row(cells, line, columns, default_tz, raw)
            if isinstance(parsed, IndexRow) and parsed.file_name.casefold() in seen:
                parsed = IndexProblem(
                    line, parsed.file_name, "duplicate_index_row", "file already listed", raw
                )
            if isinstance(parsed, IndexProblem):
                problems.append(parsed)
            else:
                seen.add(parsed.file_name.casefold())
                rows.append(parsed)
    except csv.Error as error:
        return ParsedIndex(unreadable=f"CSV cannot be parsed ({error})")
    return ParsedIndex(tuple(rows), tuple(problems))
