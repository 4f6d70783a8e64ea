"""Pairing index rows with batch files, identifiers, and zip entry names (pure rules)."""

from __future__ import annotations

import datetime as dt

import pytest

from services.intake_scan.domain.batches import (
    Rejection,
    batch_id_problem,
    letter_item_id,
    loggable_batch_id,
    plan_batch,
    source_ref,
    strip_common_folder,
    zip_entry_problem,
)
from services.intake_scan.domain.index import IndexProblem, IndexRow, ParsedIndex

J = dt.datetime(2026, 3, 5, 8, 30, tzinfo=dt.UTC)
SHA = "ab" * 32


def _row(line: int, name: str) -> IndexRow:
    return IndexRow(line=line, file_name=name, scanned_at=J, raw=f"{name};J")


def test_scan_plan_pairs_rows_and_files_and_rejects_the_rest() -> None:
    index = ParsedIndex(
        rows=(_row(2, "a.pdf"), _row(3, "B.PDF"), _row(4, "absent.pdf")),
        problems=(
            IndexProblem(5, "c.pdf", "bad_index_row", "scan date-time unreadable", "c.pdf;x"),
            IndexProblem(6, "a.pdf", "duplicate_index_row", "file already listed", "a.pdf;J"),
        ),
    )
    plan = plan_batch(index, ["a.pdf", "b.pdf", "c.pdf", "stray.tif"])
    assert [(letter.row.line, letter.file_name) for letter in plan.letters] == [
        (2, "a.pdf"),
        (3, "b.pdf"),  # same name but for case: unambiguous
    ]
    assert plan.rejections == (
        Rejection(
            "row:4",
            "missing_file",
            "index line 4 names 'absent.pdf', which is not in the batch",
            payload="absent.pdf;J",
        ),
        Rejection(
            "file:c.pdf",
            "bad_index_row",
            "index line 5: scan date-time unreadable",
            file_name="c.pdf",
            payload="c.pdf;x",
        ),
        Rejection(
            "row:6",
            "duplicate_index_row",
            "index line 6: file already listed",
            payload="a.pdf;J",
        ),
        Rejection(
            "file:stray.tif",
            "unlisted_file",
            "file 'stray.tif' is not listed in the batch index",
            file_name="stray.tif",
        ),
    )


def test_scan_plan_ambiguous_case_match_is_not_guessed() -> None:
    plan = plan_batch(ParsedIndex(rows=(_row(2, "A.pdf"),)), ["a.pdf", "a.PDF"])
    assert plan.letters == ()
    assert sorted(r.reason_code for r in plan.rejections) == [
        "missing_file",
        "unlisted_file",
        "unlisted_file",
    ]


def test_scan_plan_rows_of_files_done_by_an_earlier_pass_are_not_missing() -> None:
    index = ParsedIndex(rows=(_row(2, "a.pdf"), _row(3, "b.pdf")))
    plan = plan_batch(index, ["b.pdf"], done=["A.pdf"])
    assert [letter.file_name for letter in plan.letters] == ["b.pdf"]
    assert plan.rejections == ()


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        pytest.param("B-2026-03-05_1", True, id="dated"),
        pytest.param("lot.42", True, id="dot"),
        pytest.param("x" * 100, True, id="100-chars"),
        pytest.param("x" * 101, False, id="too-long"),
        pytest.param(".hidden", False, id="leading-dot"),
        pytest.param("lot du 5 mars", False, id="spaces"),
        pytest.param("lot/5", False, id="slash"),
        pytest.param("réception", False, id="accent"),
        pytest.param("", False, id="empty"),
    ],
)
def test_scan_batch_names(name: str, ok: bool) -> None:
    assert (batch_id_problem(name) is None) is ok


def test_scan_item_id_is_the_batch_and_content_hash() -> None:
    assert letter_item_id("B1", SHA) == f"scan:B1:{SHA}"
    with pytest.raises(ValueError, match="malformed"):
        letter_item_id("B1", "not-a-hash")
    with pytest.raises(ValueError, match="malformed"):
        letter_item_id("../B1", SHA)


def test_scan_source_ref_names_batch_file_and_envelope() -> None:
    assert source_ref("B1", "a.pdf", "ENV-9") == "scan://B1/a.pdf?envelope=ENV-9"
    assert source_ref("B1", "a.pdf", None) == "scan://B1/a.pdf"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        pytest.param("a.pdf", None, id="plain"),
        pytest.param("B1/a.pdf", None, id="in-folder"),
        pytest.param("/etc/passwd", "absolute path", id="absolute"),
        pytest.param("\\\\server\\share\\a.pdf", "absolute path", id="unc"),
        pytest.param("C:\\scans\\a.pdf", "absolute path", id="drive"),
        pytest.param("../a.pdf", "('..')", id="parent"),
        pytest.param("B1/../../a.pdf", "('..')", id="parent-deep"),
        pytest.param("B1\\..\\a.pdf", "('..')", id="parent-backslash"),
        pytest.param("a\x00.pdf", "NUL", id="nul"),
        pytest.param("a..b.pdf", None, id="dots-in-name"),
    ],
)
def test_scan_zip_entry_names(name: str, problem: str | None) -> None:
    found = zip_entry_problem(name)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(
    ("names", "prefix"),
    [
        pytest.param(["B/index.csv", "B/a.pdf", "B/"], "B/", id="zipped-folder"),
        pytest.param(["index.csv", "a.pdf"], "", id="flat"),
        pytest.param(["B/index.csv", "C/a.pdf"], "", id="two-folders"),
        pytest.param(["B/index.csv", "a.pdf"], "", id="mixed"),
        pytest.param([], "", id="empty"),
    ],
)
def test_scan_zip_common_folder(names: list[str], prefix: str) -> None:
    assert strip_common_folder(names) == prefix


def test_scan_batch_names_in_logs_are_ids_or_hashes() -> None:
    assert loggable_batch_id("B-2026-03-05") == "B-2026-03-05"
    hidden = loggable_batch_id("Courriers de M. Dupont")
    assert hidden.startswith("invalid-batch-")
    assert "Dupont" not in hidden
