"""Test harness of intake_scan: the real service on an in-memory broker that captures output.

Used by the component tests (``TestKafkaBroker`` + SQLite) and handy when
trying the batch runner by hand; production code never imports it.
"""

from __future__ import annotations

import shutil
import stat
import struct
import zipfile
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from faststream.kafka import KafkaBroker

from schemas import DeadLetter, IntakeItem
from services.common.store import Store
from services.common.testing import ServiceProcess, eventually
from services.intake_scan.adapters.reader import InlineReader
from services.intake_scan.app import inbox_for, scan_runtime
from services.intake_scan.inbox import Inbox
from services.intake_scan.ports import ItemSink, LetterReader
from services.intake_scan.service import ScanService
from services.intake_scan.settings import ScanSettings

__all__ = [
    "BAD_FOLDER_FILES",
    "BAD_FOLDER_ROWS",
    "BAD_ZIP_ENTRIES",
    "Captured",
    "ScanFolders",
    "ScanHarness",
    "TapSink",
    "bad_folder_batch",
    "bad_zip_batch",
    "wait_started",
]


@dataclass
class Captured:
    """What the service published: items with their Kafka keys, and dead letters."""

    items: list[tuple[bytes | None, IntakeItem]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)

    @property
    def item_ids(self) -> list[str]:
        """Item ids in publishing order."""
        return [item.item_id for _, item in self.items]

    def codes(self) -> list[str]:
        """Dead-letter reason codes, sorted."""
        return sorted(letter.reason_code for letter in self.dead)


@dataclass
class ScanHarness:
    """Folders under ``root``, a SQLite store and an in-memory broker that captures output."""

    root: Path
    url: str
    store: Store
    broker: KafkaBroker
    captured: Captured

    @property
    def inbox_dir(self) -> Path:
        """The drop folder."""
        return self.root / "inbox"

    @property
    def archive_dir(self) -> Path:
        """The content-addressed archive."""
        return self.root / "archive"

    @property
    def quarantine_dir(self) -> Path:
        """The quarantine folder."""
        return self.root / "quarantine"

    @property
    def work_dir(self) -> Path:
        """The per-instance working folders."""
        return self.root / "work"

    def settings(self, **overrides: Any) -> ScanSettings:
        """Settings for these folders and store (no topic creation, no settle time)."""
        values: dict[str, Any] = {
            "KAFKA_BOOTSTRAP_SERVERS": "in-memory:9092",
            "KAFKA_CREATE_TOPICS": "false",
            "DATABASE_URL": self.url,
            "LOG_FORMAT": "json",
            "inbox_dir": self.inbox_dir,
            "work_dir": self.work_dir,
            "archive_dir": self.archive_dir,
            "quarantine_dir": self.quarantine_dir,
            "settle_s": 0.0,
            "poll_interval_s": 0.05,
            "instance_id": "test-a",
        }
        values.update(overrides)
        return ScanSettings.model_validate(values)

    def drop(self, staged: Path) -> Path:
        """Move a staged batch (folder or zip) into the inbox, as the provider would."""
        self.inbox_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.move(staged, self.inbox_dir / staged.name))

    @asynccontextmanager
    async def service(
        self,
        settings: ScanSettings | None = None,
        *,
        reader: LetterReader | None = None,
        sink: Callable[[ItemSink], ItemSink] | None = None,
        inbox: Inbox | None = None,
    ) -> AsyncIterator[ScanService]:
        """The service on the in-memory broker, reading in a thread unless told otherwise."""
        settings = settings or self.settings()
        async with scan_runtime(
            settings,
            self.broker,
            inbox=inbox or inbox_for(settings),
            reader=reader or InlineReader(settings.read_options()),
            wrap_sink=sink,
        ) as service:
            yield service

    async def rows(self, table: sa.Table) -> list[sa.Row[Any]]:
        """Every row of a table."""
        async with self.store.engine.connect() as connection:
            return list((await connection.execute(sa.select(table))).all())

    def files(self, folder: Path) -> list[str]:
        """Files (and links) under ``folder``, relative, sorted."""
        if not folder.exists():
            return []
        return sorted(
            str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() or p.is_symlink()
        )


class TapSink:
    """Wraps a sink and calls ``after_item(n)`` once the n-th item was acknowledged.

    Tests stop the service or simulate a crash between Kafka's acknowledgement
    and the recording of the outcome by raising from ``after_item``.
    """

    def __init__(self, inner: ItemSink, after_item: Callable[[int], None]) -> None:
        self._inner = inner
        self._after_item = after_item
        self.published = 0

    async def publish_item(self, item: IntakeItem) -> None:
        """Publish through the wrapped sink, then call the tap."""
        await self._inner.publish_item(item)
        self.published += 1
        self._after_item(self.published)

    async def dead_letter(
        self, *, reason_code: str, reason: str, original_ref: str, payload: bytes | None = None
    ) -> None:
        """Dead-letter through the wrapped sink."""
        await self._inner.dead_letter(
            reason_code=reason_code, reason=reason, original_ref=original_ref, payload=payload
        )


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` x ``height`` pixels, with almost no data (a bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )  # fmt: skip


BAD_FOLDER_FILES = {
    "corrupt.pdf": "corrupt_pdf",
    "encrypted.pdf": "encrypted_pdf",
    "notes.pdf": "unsupported_type",
    "three-pages.pdf": "too_many_pages",
    "huge.png": "too_many_pixels",
    "index-pages.pdf": "too_many_pages",
    "big.pdf": "file_too_large",
    "stray.pdf": "unlisted_file",
    "baddate.pdf": "bad_index_row",
    "sub": "nested_folder",
    "link.pdf": "unsafe_entry",
}
"""Files of ``bad_folder_batch`` that go to quarantine, with their reason code."""
BAD_FOLDER_ROWS = ("missing_file", "duplicate_index_row")
"""Rows of ``bad_folder_batch`` without a file to quarantine: dead-lettered only."""


def bad_folder_batch(folder: Path, letter: str) -> list[str]:
    """A batch with one good letter and every kind of bad file and row (run it with
    ``max_pages=2`` and ``max_file_mb=1``); returns the good files. Text layers only: no OCR.
    """
    from services.intake_scan.testing import index_row, make_text_pdf, write_index

    folder.mkdir(parents=True)
    make_text_pdf(letter, folder / "good.pdf")
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\nnot a pdf\n")
    make_text_pdf(letter, folder / "encrypted.pdf", user_password="secret")  # noqa: S106
    (folder / "notes.pdf").write_bytes(b"PK\x03\x04" + b"\x00" * 64)  # a .docx, misnamed
    make_text_pdf("\f".join([letter] * 3), folder / "three-pages.pdf")
    _png_header_only(folder / "huge.png", 20_000, 20_000)
    good = (folder / "good.pdf").read_bytes()
    for name in ("index-pages.pdf", "stray.pdf", "baddate.pdf"):
        (folder / name).write_bytes(good + f"%{name}\n".encode())
    (folder / "big.pdf").write_bytes(good + b"%" * (1024 * 1024 + 1))
    (folder / "sub").mkdir()
    (folder / "sub" / "inside.pdf").write_bytes(b"%PDF-1.4\n")
    (folder / "link.pdf").symlink_to(folder / "good.pdf")
    names = ("good.pdf", "corrupt.pdf", "encrypted.pdf", "notes.pdf", "three-pages.pdf",
             "huge.png", "big.pdf", "absent.pdf")  # fmt: skip
    rows = [index_row(name) for name in names]
    rows += [
        index_row("index-pages.pdf", page_count="99"),
        index_row("baddate.pdf", scanned_at="le 5 mars"),
        index_row("good.pdf"),
    ]
    write_index(folder / "index.csv", rows)
    return ["good.pdf"]


BAD_ZIP_ENTRIES = (
    "unsafe_zip_entry",  # absolute path
    "unsafe_zip_entry",  # '..'
    "nested_zip_entry",
    "zip_bomb",
    "unsafe_zip_entry",  # symbolic link
    "encrypted_zip_entry",
)
"""Reason codes of the entries ``bad_zip_batch`` refuses (dead-lettered, zip kept as evidence)."""


def _flag_encrypted(path: Path, entry: str) -> None:
    # zipfile cannot encrypt: set the "encrypted" flag bit of one entry in both its headers
    data = bytearray(path.read_bytes())
    for signature, flag_at, length_at, name_at in (
        (b"PK\x03\x04", 6, 26, 30),
        (b"PK\x01\x02", 8, 28, 46),
    ):
        start = data.find(signature)
        while start != -1:
            length = int.from_bytes(data[start + length_at : start + length_at + 2], "little")
            if data[start + name_at : start + name_at + length] == entry.encode():
                data[start + flag_at] |= 0x1
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))


def bad_zip_batch(path: Path, good_pdf: bytes) -> list[str]:
    """A zipped batch (one top folder) with one good letter and every kind of unsafe entry."""
    from services.intake_scan.testing import index_row, write_index

    folder = path.stem
    index = write_index(path.with_suffix(".csv"), [index_row("good.pdf")])
    link = zipfile.ZipInfo(f"{folder}/link.pdf")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    entries: list[tuple[zipfile.ZipInfo | str, bytes]] = [
        (f"{folder}/index.csv", index.read_bytes()),
        (f"{folder}/good.pdf", good_pdf),
        ("/etc/absolute.pdf", b"%PDF-1.4\n"),
        (f"{folder}/../../escape.pdf", b"%PDF-1.4\n"),
        (f"{folder}/sub/nested.pdf", b"%PDF-1.4\n"),
        (f"{folder}/bomb.pdf", b"\x00" * (20 * 1024 * 1024)),
        (link, b"/etc/passwd"),
        (f"{folder}/locked.pdf", b"%PDF-1.4\n"),
        (f"__MACOSX/{folder}/._good.pdf", b"junk"),
    ]
    index.unlink()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries:
            archive.writestr(name, content)
    _flag_encrypted(path, f"{folder}/locked.pdf")
    return ["good.pdf"]


@dataclass(frozen=True)
class ScanFolders:
    """The drop folders of a test run of the service as a process, and a staging folder."""

    root: Path

    @property
    def inbox(self) -> Path:
        """The drop folder."""
        return self.root / "inbox"

    @property
    def work(self) -> Path:
        """The per-instance working folders."""
        return self.root / "work"

    @property
    def archive(self) -> Path:
        """The content-addressed archive."""
        return self.root / "archive"

    @property
    def quarantine(self) -> Path:
        """The quarantine folder."""
        return self.root / "quarantine"

    @property
    def staging(self) -> Path:
        """Where tests prepare batches before dropping them."""
        return self.root / "staging"

    def env(self) -> dict[str, str]:
        """``INTAKE_SCAN_*`` variables for these folders, polling fast."""
        return {
            "INTAKE_SCAN_INBOX_DIR": str(self.inbox),
            "INTAKE_SCAN_WORK_DIR": str(self.work),
            "INTAKE_SCAN_ARCHIVE_DIR": str(self.archive),
            "INTAKE_SCAN_QUARANTINE_DIR": str(self.quarantine),
            "INTAKE_SCAN_POLL_INTERVAL_S": "0.2",
            "INTAKE_SCAN_SETTLE_S": "0.5",
            "INTAKE_SCAN_OCR_WORKERS": "2",
        }

    def drop(self, name: str) -> None:
        """Move a staged batch into the inbox in one rename, as a careful provider does."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        shutil.move(self.staging / name, self.inbox / name)

    def files(self, folder: Path) -> list[Path]:
        """Every file under ``folder``, lock files of live instances left out."""
        if not folder.exists():
            return []
        return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != ".lock")


async def wait_started(process: ServiceProcess, timeout: float = 30) -> None:
    """Until the service logged ``service.started`` (broker connected, watcher running)."""

    async def started() -> bool:
        assert process.process is not None
        assert process.process.poll() is None, process.output()
        return "service.started" in process.output()

    await eventually(started, timeout=timeout, interval=0.1)
