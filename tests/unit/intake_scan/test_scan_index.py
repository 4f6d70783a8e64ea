"""The provider's batch index: columns, separators, encodings, date-times, row problems."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake_scan.domain.index import IndexRow, parse_index, parse_scan_datetime

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
HEADER = "file_name;scanned_at;tsa_box;envelope_id;page_count\n"


def test_scan_index_rows_in_order() -> None:
    data = (
        HEADER
        + "a.pdf;2026-03-05T08:30:00+01:00;60002;ENV-1;2\n"
        + "\n"
        + "b.tif;2026-03-05 09:00;50 001;;\n"
    ).encode()
    parsed = parse_index(data, PARIS)
    assert parsed.unreadable is None
    assert parsed.problems == ()
    first, second = parsed.rows
    assert first == IndexRow(
        line=2,
        file_name="a.pdf",
        scanned_at=dt.datetime(2026, 3, 5, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        tsa_box="60002",
        envelope_id="ENV-1",
        page_count=2,
        raw="a.pdf;2026-03-05T08:30:00+01:00;60002;ENV-1;2",
    )
    assert (second.line, second.tsa_box, second.envelope_id, second.page_count) == (
        4,
        "50001",
        None,
        None,
    )
    assert second.scanned_at.utcoffset() == dt.timedelta(hours=1)  # Paris in March


@pytest.mark.parametrize(
    ("data", "expected_name"),
    [
        pytest.param(
            b"\xef\xbb\xbfFichier,Date de num\xc3\xa9risation,TSA\nr\xc3\xa9clam.pdf,05/03/2026 08:30,60002\n",
            "réclam.pdf",
            id="utf8-bom-comma-french-headers",
        ),
        pytest.param(
            b"Nom du fichier;Horodatage;Bo\xeete TSA\nr\xe9clam.pdf;05/03/2026 08h30;60002\n",
            "réclam.pdf",
            id="windows-1252-semicolon",
        ),
        pytest.param(
            b"FILE NAME\tSCANNED-AT\tPages\nr\xc3\xa9clam.pdf\t2026-03-05T08:30\t1\n",
            "réclam.pdf",
            id="tabs-upper-case",
        ),
    ],
)
def test_scan_index_formats_providers_write(data: bytes, expected_name: str) -> None:
    parsed = parse_index(data, PARIS)
    (row,) = parsed.rows
    assert row.file_name == expected_name
    assert row.scanned_at == dt.datetime(2026, 3, 5, 8, 30, tzinfo=PARIS)


@pytest.mark.parametrize(
    ("line", "code", "reason_part"),
    [
        pytest.param("a.pdf;le 5 mars;50001;;", "bad_index_row", "date-time", id="bad-date"),
        pytest.param("a.pdf;2026-02-30;50001;;", "bad_index_row", "date-time", id="no-such-day"),
        pytest.param("a.pdf;2026-03-05;5001;;", "bad_index_row", "TSA", id="bad-box"),
        pytest.param("a.pdf;2026-03-05;50001;;0", "bad_index_row", "page count", id="zero-pages"),
        pytest.param("a.pdf;2026-03-05;50001;;2,5", "bad_index_row", "page count", id="pages-nan"),
        pytest.param("../a.pdf;2026-03-05;;;", "bad_index_row", "folder", id="dot-dot"),
        pytest.param("sub/a.pdf;2026-03-05;;;", "bad_index_row", "folder", id="folder"),
        pytest.param(".a.pdf;2026-03-05;;;", "bad_index_row", "dot", id="hidden"),
        pytest.param(";2026-03-05;;;", "bad_index_row", "empty", id="no-name"),
    ],
)
def test_scan_index_row_problems(line: str, code: str, reason_part: str) -> None:
    parsed = parse_index((HEADER + line + "\nok.pdf;2026-03-05;;;\n").encode(), PARIS)
    (problem,) = parsed.problems
    assert (problem.line, problem.reason_code) == (2, code)
    assert reason_part in problem.reason
    assert problem.raw == line
    assert [row.file_name for row in parsed.rows] == ["ok.pdf"]  # the rest proceeds


def test_scan_index_duplicate_row_keeps_the_first() -> None:
    data = (HEADER + "a.pdf;2026-03-05;60002;;\nA.PDF;2026-03-06;50001;;\n").encode()
    parsed = parse_index(data, PARIS)
    assert [row.tsa_box for row in parsed.rows] == ["60002"]
    assert [(p.line, p.reason_code) for p in parsed.problems] == [(3, "duplicate_index_row")]


@pytest.mark.parametrize(
    ("data", "reason_part"),
    [
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"\n \n", "empty", id="blank"),
        pytest.param(b"a.pdf;2026-03-05\n", "file_name, scanned_at", id="no-header"),
        pytest.param(b"file_name;tsa_box\na.pdf;60002\n", "scanned_at", id="no-date-column"),
    ],
)
def test_scan_unreadable_index(data: bytes, reason_part: str) -> None:
    parsed = parse_index(data, PARIS)
    assert parsed.rows == ()
    assert parsed.unreadable is not None
    assert reason_part in parsed.unreadable


def test_scan_index_row_limit() -> None:
    data = (HEADER + "a.pdf;2026-03-05;;;\n" * 20_001).encode()
    parsed = parse_index(data, PARIS)
    assert parsed.unreadable == "index has more than 20000 rows"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2026-03-05T08:30:00Z", dt.datetime(2026, 3, 5, 8, 30, tzinfo=dt.UTC), id="z"),
        pytest.param("2026-07-01", dt.datetime(2026, 7, 1, tzinfo=PARIS), id="date-only"),
        pytest.param("1/7/2026 7:05:09", dt.datetime(2026, 7, 1, 7, 5, 9, tzinfo=PARIS), id="fr"),
        pytest.param("31/02/2026", None, id="impossible"),
        pytest.param("", None, id="empty"),
    ],
)
def test_scan_datetime_forms(value: str, expected: dt.datetime | None) -> None:
    assert parse_scan_datetime(value, PARIS) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.binary(max_size=400), st.text(max_size=400).map(lambda t: (HEADER + t).encode()))
)
def test_scan_any_index_bytes_parse_without_error(data: bytes) -> None:
    parsed = parse_index(data, PARIS)
    for row in parsed.rows:
        assert row.scanned_at.utcoffset() is not None
        assert "/" not in row.file_name
