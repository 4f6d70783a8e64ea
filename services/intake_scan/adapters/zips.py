"""A zipped batch, expanded safely into a batch folder (procedure 4.3; bad input stays out).

Entries are checked before a byte is written: absolute or ``..`` paths (zip
slip), symbolic links, encrypted entries, entries in sub-folders, entries whose
declared size or compression ratio is over the limits. Sizes are counted
again while inflating, since headers can lie. A refused entry is a
``ZipRejection`` (the rest of the batch proceeds); a zip that cannot be read,
or whose totals are over the limits (a zip bomb), is refused as a whole.

Expansion writes into ``<dest>.expanding`` and renames it to ``<dest>`` when
complete, so a crash never leaves a half-expanded batch that looks whole.
"""

from __future__ import annotations

import json
import shutil
import stat
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

from services.intake_scan.domain.batches import strip_common_folder, zip_entry_problem

__all__ = [
    "REJECTIONS_FILE",
    "ZipLimits",
    "ZipRefused",
    "ZipRejection",
    "expand_zip",
    "read_rejections",
]

REJECTIONS_FILE = ".zip-rejections.json"
_CHUNK = 1024 * 1024
_RATIO_EXEMPT_BYTES = 1024 * 1024  # small entries cannot be bombs whatever their ratio
_MAX_NAME_BYTES = 255


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """Limits on a zipped batch: entry count, total and per-entry sizes, compression ratio."""

    max_entries: int = 5000
    max_total_bytes: int = 4 * 1024**3
    max_entry_bytes: int = 100 * 1024**2
    max_ratio: float = 100.0


@dataclass(frozen=True, slots=True)
class ZipRejection:
    """One zip entry that was not extracted, and why (``number`` is its place in the zip)."""

    number: int
    name: str
    reason_code: str
    reason: str


@dataclass(frozen=True, slots=True)
class ZipRefused:
    """The whole zip is refused: unreadable, or a zip bomb."""

    reason_code: str
    reason: str


class _EntryTooLarge(Exception):
    pass


class _TotalTooLarge(Exception):
    pass


def _junk(name: str) -> bool:
    # backslashes first: "..\\x.pdf" is an entry going up, to refuse, not a dot file to skip
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return name.startswith("__MACOSX/") or base.startswith(".") or base == ""


def _entry_problem(
    info: zipfile.ZipInfo, relative: str, seen: set[str], limits: ZipLimits
) -> tuple[str, str] | None:
    problem = zip_entry_problem(info.filename)
    if problem is not None:
        return "unsafe_zip_entry", problem
    if stat.S_ISLNK(info.external_attr >> 16):
        return "unsafe_zip_entry", "symbolic link"
    if "/" in relative:
        return "nested_zip_entry", "entry in a sub-folder; a batch is one flat folder"
    if len(relative.encode("utf-8")) > _MAX_NAME_BYTES:
        return "unsafe_zip_entry", "entry name longer than 255 bytes"
    if relative.casefold() in seen:
        return "duplicate_zip_entry", "two entries with the same name"
    if info.flag_bits & 0x1:
        return "encrypted_zip_entry", "entry is encrypted with a password"
    if info.file_size > limits.max_entry_bytes:
        return "zip_bomb", f"entry would be over {limits.max_entry_bytes} bytes"
    if info.file_size > _RATIO_EXEMPT_BYTES and (
        info.compress_size == 0 or info.file_size / info.compress_size > limits.max_ratio
    ):
        return "zip_bomb", f"compression ratio over {limits.max_ratio:g}"
    return None


def _extract(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, limits: ZipLimits, used: int
) -> int:
    written = 0
    bound = min(info.file_size, limits.max_entry_bytes)
    with archive.open(info) as source, target.open("xb") as sink:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > bound:
                raise _EntryTooLarge
            if used + written > limits.max_total_bytes:
                raise _TotalTooLarge
            sink.write(chunk)
    return written


_ENTRY_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


def _expand_into(
    archive: zipfile.ZipFile, folder: Path, limits: ZipLimits
) -> list[ZipRejection] | ZipRefused:
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        return ZipRefused("zip_bomb", f"more than {limits.max_entries} entries")
    if sum(info.file_size for info in infos) > limits.max_total_bytes:
        return ZipRefused("zip_bomb", f"would expand to over {limits.max_total_bytes} bytes")
    files = [(n, i) for n, i in enumerate(infos) if not i.is_dir() and not _junk(i.filename)]
    safe = [info.filename for _, info in files if zip_entry_problem(info.filename) is None]
    prefix = strip_common_folder(safe)
    rejections: list[ZipRejection] = []
    seen: set[str] = set()
    used = 0
    for number, info in files:
        relative = info.filename.replace("\\", "/").removeprefix(prefix)
        problem = _entry_problem(info, relative, seen, limits)
        if problem is None:
            seen.add(relative.casefold())
            target = folder / relative
            try:
                used += _extract(archive, info, target, limits, used)
                continue
            except _TotalTooLarge:
                return ZipRefused("zip_bomb", f"expands to over {limits.max_total_bytes} bytes")
            except _EntryTooLarge:
                problem = ("zip_bomb", "entry inflates beyond its declared size or the limit")
            except _ENTRY_ERRORS as exc:
                problem = ("corrupt_zip_entry", f"entry cannot be inflated ({type(exc).__name__})")
            target.unlink(missing_ok=True)
        rejections.append(ZipRejection(number, info.filename[:300], *problem))
    return rejections


def expand_zip(zip_path: Path, dest: Path, limits: ZipLimits) -> list[ZipRejection] | ZipRefused:
    """Expand a zipped batch into ``dest`` (4.3); the entries refused, or why the zip is.

    Blocking (file I/O and inflating): call it in a thread. ``__MACOSX/`` and
    dot files are archive junk and are not extracted. When every entry sits in
    one top folder, that folder's content is the batch.
    """
    staging = dest.with_name(dest.name + ".expanding")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            outcome = _expand_into(archive, staging, limits)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        outcome = ZipRefused("corrupt_zip", f"not a readable zip file ({type(exc).__name__})")
    if isinstance(outcome, ZipRefused):
        shutil.rmtree(staging)
        return outcome
    payload = json.dumps([asdict(rejection) for rejection in outcome], ensure_ascii=False)
    (staging / REJECTIONS_FILE).write_text(payload, encoding="utf-8")
    staging.rename(dest)
    return outcome


def read_rejections(batch_dir: Path) -> list[ZipRejection]:
    """The zip entries refused when the batch was expanded (none for a folder batch)."""
    path = batch_dir / REJECTIONS_FILE
    if not path.exists():
        return []
    return [ZipRejection(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))]
