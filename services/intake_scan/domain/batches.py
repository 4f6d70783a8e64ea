"""What a scan batch holds: letters to read, and what goes to quarantine (procedure 4.3, 5.1.1).

Every file of a batch and every row of its index is accounted for: a row
and its file make a letter; a row without its file and a file without its
row are rejections with their reason (nothing is silently skipped, nothing
is guessed). Identifiers are derived from the batch and the file content so
that re-ingesting a batch never yields a second item.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from services.intake_scan.domain.index import IndexRow, ParsedIndex

__all__ = [
    "BatchPlan",
    "Letter",
    "Rejection",
    "batch_id_problem",
    "file_key",
    "letter_item_id",
    "loggable_batch_id",
    "plan_batch",
    "source_ref",
    "strip_common_folder",
    "zip_entry_problem",
]

_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def batch_id_problem(name: str) -> str | None:
    """Why a batch folder or zip name cannot be a batch id, or ``None`` (4.3 traceability).

    A batch id is 1 to 100 characters among letters, digits, ``.``, ``_`` and
    ``-``, starting with a letter or digit: it goes into item ids and paths.
    """
    if _BATCH_ID.match(name) is None:
        return "batch name must be 1-100 characters among A-Z a-z 0-9 . _ - (no leading dot)"
    return None


def loggable_batch_id(name: str) -> str:
    """The batch name when it is a valid batch id, else a hash of it (logs carry ids only)."""
    if batch_id_problem(name) is None:
        return name
    return (
        "invalid-batch-" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    )


def letter_item_id(batch_id: str, sha256: str) -> str:
    """The item id of a scanned letter: its batch and its content hash (4.1: recorded once).

    The same file in the same batch always gets the same id, so a re-run
    after a crash republishes the same item and consumers drop the repeat.
    """
    if batch_id_problem(batch_id) is not None or _SHA256.match(sha256) is None:
        raise ValueError("batch id or content hash malformed")
    return f"scan:{batch_id}:{sha256}"


def source_ref(batch_id: str, file_name: str, envelope_id: str | None) -> str:
    """Where a letter came from: batch, file and the provider's envelope (4.3 traceability)."""
    ref = f"scan://{batch_id}/{file_name}"
    return f"{ref}?envelope={envelope_id}" if envelope_id else ref


@dataclass(frozen=True, slots=True)
class Letter:
    """An index row and the batch file it names (the file name as found on disk)."""

    row: IndexRow
    file_name: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """Something of a batch that goes to the DLQ (and its file, if any, to quarantine).

    ``key`` is stable within a batch and index (``file:<name>``, ``row:<line>``):
    it records the outcome so that a resumed batch never rejects twice.
    """

    key: str
    reason_code: str
    reason: str
    file_name: str | None = None
    payload: str | None = None


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """Letters in index order and the rejections of one batch."""

    letters: tuple[Letter, ...]
    rejections: tuple[Rejection, ...]


def file_key(file_name: str) -> str:
    """The progress key of a batch file, ``file:<name>`` (rows without a file: ``row:<line>``).

    A name that is not UTF-8 (a Latin-1 upload: lone surrogates in Python) is keyed
    by its bytes escaped (``\\udce9``), which every store can hold; one name always
    gives the same key.
    """
    printable = file_name.encode("utf-8", "backslashreplace").decode("utf-8")
    return f"file:{printable}"


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def plan_batch(index: ParsedIndex, files: Collection[str], done: Collection[str] = ()) -> BatchPlan:
    """Pair index rows with batch files (4.3: every letter scanned is accounted for).

    A file matches its row by exact name, else by the same name ignoring case
    and Unicode form when that is unambiguous. Good rows pick their files
    first; a row with a problem then rejects its file if it is still there.
    A row without its file is ``missing_file``, unless its file is among
    ``done`` (files an earlier pass of this batch run finished and moved
    out); a file no row names is ``unlisted_file``.
    """
    by_fold: dict[str, list[str]] = {}
    for name in files:
        by_fold.setdefault(_fold(name), []).append(name)
    remaining = set(files)
    finished = {_fold(name) for name in done}

    def take(wanted: str | None) -> str | None:
        if wanted is None:
            return None
        if wanted in remaining:
            remaining.discard(wanted)
            return wanted
        candidates = [name for name in by_fold.get(_fold(wanted), []) if name in remaining]
        if len(candidates) == 1:
            remaining.discard(candidates[0])
            return candidates[0]
        return None

    letters: list[Letter] = []
    rejections: list[Rejection] = []
    for row in index.rows:
        present = take(row.file_name)
        if present is None and _fold(row.file_name) in finished:
            continue
        if present is None:
            reason = f"index line {row.line} names {row.file_name!r}, which is not in the batch"
            rejections.append(
                Rejection(f"row:{row.line}", "missing_file", reason, payload=row.raw or None)
            )
        else:
            letters.append(Letter(row, present))
    for problem in index.problems:
        present = take(problem.file_name) if problem.reason_code != "duplicate_index_row" else None
        rejections.append(
            Rejection(
                file_key(present) if present else f"row:{problem.line}",
                problem.reason_code,
                f"index line {problem.line}: {problem.reason}",
                file_name=present,
                payload=problem.raw,
            )
        )
    for name in sorted(remaining):
        reason = f"file {name!r} is not listed in the batch index"
        rejections.append(Rejection(file_key(name), "unlisted_file", reason, file_name=name))
    return BatchPlan(tuple(letters), tuple(rejections))


_DRIVE = re.compile(r"^[A-Za-z]:")


def zip_entry_problem(name: str) -> str | None:
    """Why a zip entry name is unsafe to extract, or ``None`` (bad input stays out, 4.3).

    Absolute paths, drive letters, ``..`` components and NUL bytes would write
    outside the batch folder (zip slip); such entries are never extracted.
    """
    if "\x00" in name:
        return "entry name holds a NUL byte"
    normal = name.replace("\\", "/")
    if normal.startswith("/") or _DRIVE.match(normal):
        return "absolute path"
    if ".." in normal.split("/"):
        return "path goes up out of the batch ('..')"
    return None


def strip_common_folder(names: Sequence[str]) -> str:
    """The single top folder every entry sits in (a zipped folder), or ``""`` if none.

    ``B/index.csv``, ``B/1.pdf`` → ``"B/"``: the batch is the folder's content.
    """
    tops = {name.replace("\\", "/").split("/", 1)[0] for name in names}
    if len(tops) != 1 or not all("/" in name.replace("\\", "/") for name in names):
        return ""
    return f"{next(iter(tops))}/"
