"""Router commands: customers import, classify, eval."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import phonenumbers
import typer
from pydantic import ValidationError

from schemas import CustomerRecord, PostalAddress
from schemas.phones import french_region
from schemas.topics import CUSTOMERS_DIRECTORY
from services.common.settings import ServiceSettings
from services.common.testing import produce

__all__ = ["customers", "read_customer_csv", "run_classify", "run_eval"]

customers = typer.Typer(
    help="The customer directory (customers.directory.v1).", no_args_is_help=True
)

CSV_COLUMNS = (
    "customer_ref", "first_name", "last_name", "email", "mobile", "phone",
    "address", "postcode", "city",
)  # fmt: skip
OPTIONAL_COLUMNS = ("updated_at", "deleted")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_YES = frozenset({"1", "true", "oui", "yes", "o", "y"})


class BadExport(ValueError):
    """The file is not a directory export this command can read (nothing is published)."""


def read_customer_csv(path: Path, now: dt.datetime) -> Iterator[CustomerRecord | str]:
    """Directory records from a CSV export (``;`` or ``,``); an invalid row yields its error.

    Each record is a full snapshot of the account on a compacted topic: a column
    the export lacks would erase that field of every customer. So the header
    must name every column of ``CSV_COLUMNS`` (``BadExport`` otherwise, before
    any record), and a row with too few or too many fields is refused.
    Optional columns: ``updated_at`` (ISO 8601; the export's time of each
    record, so that replaying an older export never overwrites newer data;
    default now) and ``deleted`` (1/true/oui: a GDPR erasure, published as a
    deletion). Numbers are normalised to E.164 (overseas ones included).
    """
    with path.open(encoding="utf-8-sig", newline="") as handle:
        first_line = handle.readline()
        handle.seek(0)
        delimiter = ";" if first_line.count(";") >= first_line.count(",") else ","
        if not first_line.strip() or first_line.count(delimiter) == 0:
            raise BadExport("not a CSV file with ';' or ',' between fields")
        reader = csv.DictReader(handle, delimiter=delimiter)
        header = [name.strip() for name in reader.fieldnames or ()]
        if missing := [column for column in CSV_COLUMNS if column not in header]:
            raise BadExport(f"the header lacks {', '.join(missing)} (it must name {CSV_COLUMNS})")
        reader.fieldnames = header
        for number, row in enumerate(reader, start=2):
            if None in row or any(row.get(column) is None for column in header):
                yield f"line {number}: {len(header)} fields expected"
                continue
            yield _record(number, row, now)


def _record(number: int, row: dict[str, str], now: dt.datetime) -> CustomerRecord | str:
    values = {
        key: (row.get(key) or "").strip() or None for key in (*CSV_COLUMNS, *OPTIONAL_COLUMNS)
    }
    problems = []
    deleted = (values["deleted"] or "").lower() in _YES
    email = values["email"].lower() if values["email"] else None
    mobile, phone = _e164(values["mobile"]), _e164(values["phone"])
    if deleted:  # an erasure needs the reference only: its other fields never block it
        email = mobile = phone = None
        values.update(first_name=None, last_name=None, address=None, postcode=None, city=None)
    if email is not None and not _EMAIL.match(email):
        problems.append("email")
    problems += [
        key
        for key, got in (("mobile", mobile), ("phone", phone))
        if values[key] and not got and not deleted
    ]
    updated_at = now
    if values["updated_at"]:
        try:
            updated_at = dt.datetime.fromisoformat(values["updated_at"])
        except ValueError:
            problems.append("updated_at")
    try:
        address = PostalAddress(
            lines=(values["address"],) if values["address"] else (),
            postcode=values["postcode"],
            city=values["city"],
        )
        record = CustomerRecord(
            customer_ref=values["customer_ref"] or "",
            first_name=values["first_name"],
            last_name=values["last_name"],
            email=email,
            mobile=mobile,
            phone=phone,
            address=address,
            updated_at=updated_at,
            deleted=deleted,
        )
    except ValidationError as error:
        problems += [str(e["loc"][0]) for e in error.errors()]
        record = None
    if problems or record is None:
        return f"line {number}: invalid {', '.join(sorted(set(problems)))}"
    return record


def _e164(value: str | None) -> str | None:
    """A telephone number in E.164, read as French when national (0692…: Réunion)."""
    if value is None:
        return None
    try:
        number = phonenumbers.parse(value, french_region(value))
        if number.country_code == 33:  # +33 692…: an overseas number written as metropolitan
            national = f"0{number.national_number}"
            if (region := french_region(national)) != "FR":
                number = phonenumbers.parse(national, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@customers.command("import")
def import_customers(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV export")],
) -> None:
    """Publish a CSV export of the directory onto customers.directory.v1 (key = reference)."""
    records: list[CustomerRecord] = []
    errors: list[str] = []
    try:
        for entry in read_customer_csv(path, dt.datetime.now(dt.UTC)):
            (errors if isinstance(entry, str) else records).append(entry)  # type: ignore[arg-type]
    except BadExport as refused:
        typer.echo(f"{path.name}: {refused}; nothing published", err=True)
        raise typer.Exit(2) from refused
    for error in errors:
        typer.echo(error, err=True)
    settings = ServiceSettings()
    published = asyncio.run(
        produce(
            settings.kafka_bootstrap_servers,
            CUSTOMERS_DIRECTORY,
            ((r.customer_ref.encode(), r.model_dump_json().encode()) for r in records),
        )
    )
    typer.echo(f"{published} customers published, {len(errors)} rows rejected")
    if errors:
        raise typer.Exit(1)


DEFAULT_DATASET = Path("tests/data/contacts/labelled.jsonl")


def run_eval(
    dataset: Annotated[Path, typer.Argument(help="labelled JSONL")] = DEFAULT_DATASET,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    rules_dir: Annotated[Path | None, typer.Option(help="rule files to evaluate")] = None,
) -> None:
    """Precision and recall of the qualification rules on a labelled set (issue 3 targets)."""
    import json

    from rich.console import Console
    from rich.table import Table

    from services.router.evaluation import evaluate, load_examples
    from services.router.rules_loader import load_rules

    report = evaluate(load_rules(rules_dir), load_examples(dataset))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        table = Table(title=f"Qualification on {report.examples} contacts")
        for column in ("label", "precision", "recall", "accuracy", "support"):
            table.add_column(column, justify="left" if column == "label" else "right")
        for row in report.rows():
            table.add_row(*row)
        console = Console()
        console.print(table)
        for name, (value, threshold, met) in report.targets().items():
            shown = "-" if value is None else f"{value:.3f}"
            console.print(f"{'✓' if met else '✗'} {name}: {shown} (target ≥ {threshold})")
    if not all(met for _, _, met in report.targets().values()):
        raise typer.Exit(1)


def _read_contact(path: str) -> tuple[str | None, str, str, str | None]:
    """(subject, text, channel, tsa box) of an .eml, a scanned letter, or plain text."""
    import sys

    if path == "-":
        return None, sys.stdin.read(), "email", None
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix == ".eml":
        from services.intake_mail.domain import parse_mail

        parsed = parse_mail(source.read_bytes(), max_bytes=25 * 1024 * 1024)
        return parsed.subject, parsed.body_text, "email", None
    if suffix in {".pdf", ".tif", ".tiff", ".png", ".jpg", ".jpeg"}:
        from services.intake_scan.adapters.text import read_letter
        from services.intake_scan.domain.letters import extract_letter_facts
        from services.intake_scan.domain.text import join_pages

        text = join_pages(read_letter(source).texts)
        facts = extract_letter_facts(text)
        subject = facts.subject.value if facts.subject else None
        box = facts.tsa_box.value if facts.tsa_box else None
        return subject, text, "letter", box
    return None, source.read_text(encoding="utf-8"), "email", None


def run_classify(
    path: Annotated[str, typer.Argument(help=".eml, PDF/image letter, text file, or - for stdin")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    rules_dir: Annotated[Path | None, typer.Option(help="rule files to use")] = None,
) -> None:
    """Qualify one contact and print the decision with its reasons."""
    import json

    from services.router.domain.classification import classify
    from services.router.rules_loader import load_rules

    subject, text, channel, box = _read_contact(path)
    result = classify(
        subject=subject, text=text, channel=channel, tsa_box=box, rules=load_rules(rules_dir)
    )
    if as_json:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"{result.dossier_type} ({result.label}) · {result.kind} · {result.urgency} · "
        f"→ {result.service}"
        + (f" · sensible: {', '.join(result.sensitive)}" if result.sensitive else "")
        + ("" if result.in_perimeter else " · HORS PÉRIMÈTRE")
    )
    for reason in result.reasons:
        typer.echo(f"  - {reason}")
