"""``aiguillage customers import``: what a CSV export becomes, and what it must never do."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from schemas import CustomerRecord
from services.router.cli import BadExport, read_customer_csv

NOW = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)
HEADER = "customer_ref;first_name;last_name;email;mobile;phone;address;postcode;city"


def _read(tmp_path: Path, text: str) -> list[CustomerRecord | str]:
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8")
    return list(read_customer_csv(path, NOW))


def test_a_good_export_normalises_numbers_and_addresses(tmp_path: Path) -> None:
    (record,) = _read(
        tmp_path,
        f"{HEADER}\n400000001;Agathe;Roussel;Agathe.R@Example.test;06 92 12 34 56;"
        "+33 2 62 12 34 56;4 rue Pasteur;97400;Saint-Denis\n",
    )
    assert isinstance(record, CustomerRecord)
    assert (record.email, record.mobile, record.phone) == (
        "agathe.r@example.test",
        "+262692123456",  # a Réunion mobile, not +33
        "+262262123456",  # written +33 in an old export: rewritten to Réunion's code
    )
    assert record.updated_at == NOW
    assert not record.deleted


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("customer_ref;first_name;last_name;email;telephone;phone;adresse;postcode;city", id="french-names"),
        pytest.param("customer_ref;first_name;last_name;email;Mobile;phone;address;postcode;city", id="capitalised"),
        pytest.param("customer_ref;last_name", id="too-few-columns"),
    ],
)  # fmt: skip
def test_a_header_that_does_not_name_every_column_publishes_nothing(
    tmp_path: Path, header: str
) -> None:
    """Each record is a full snapshot on a compacted topic: a column missing from the
    header used to import as empty, wiping that field across the whole directory."""
    with pytest.raises(BadExport, match="header lacks"):
        _read(tmp_path, f"{header}\n400000001;A;B;a@b.test;0612345678;;1 rue X;35000;Rennes\n")


def test_bad_rows_are_refused_each_with_its_line(tmp_path: Path) -> None:
    rows = _read(
        tmp_path,
        f"{HEADER}\n"
        "400000001;A;B;not-an-email;;;;;\n"
        "400000002;A;B\n"
        "400000003;A;B;;;;;;;extra\n"
        "400000004;A;B;;06 XX;;;;\n"
        "40000000X;A;B;;;;;;\n",
    )
    assert rows == [
        "line 2: invalid email",
        "line 3: 9 fields expected",
        "line 4: 9 fields expected",
        "line 5: invalid mobile",
        "line 6: invalid customer_ref",
    ]


def test_an_export_carries_its_own_time_and_erasures(tmp_path: Path) -> None:
    """An older export replayed must not overwrite newer data; a GDPR erasure is a deletion."""
    first, second = _read(
        tmp_path,
        f"{HEADER};updated_at;deleted\n"
        "400000001;A;B;;;;;;;2026-11-01T08:00:00+00:00;\n"
        "400000002;;;bad-email;06 XX;;;;;2026-11-02T08:00:00+00:00;oui\n",
    )
    assert isinstance(first, CustomerRecord)
    assert first.updated_at == dt.datetime(2026, 11, 1, 8, tzinfo=dt.UTC)
    assert isinstance(second, CustomerRecord)
    assert second.deleted


def test_a_file_that_is_not_csv_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BadExport, match="not a CSV"):
        _read(tmp_path, "")
