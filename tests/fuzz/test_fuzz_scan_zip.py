"""Bad-input campaign, zipped scan batches: refused entries or a refused zip, never an exception.

The zips are built entry by entry and broken where extractors break: names
going up (``../``), absolute or with a drive letter, backslashes, NUL bytes,
names over 255 bytes, case-folded duplicates, symbolic links, the encrypted
flag, names flagged UTF-8 that are not, zip bombs (high ratio, sizes that lie
in the headers, more entries or bytes than the limits), truncated archives and
flipped bytes in the headers. ``expand_zip`` must return the refused entries
or the refusal of the whole zip, each with its reason, and nothing may be
written outside the batch folder.
"""

from __future__ import annotations

import io
import random
import stat
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from services.intake_scan.adapters.zips import ZipLimits, ZipRefused, expand_zip

SEED = 20260315
COUNT = 150
LIMITS = ZipLimits(max_entries=40, max_total_bytes=4 * 1024**2, max_entry_bytes=2 * 1024**2)
_ZEROS = bytes(3 * 1024**2)
NAMES = [
    "a.pdf", "../escape.pdf", "../../escape.pdf", "/absolute.pdf", "C:/drive.pdf", "C:\\drive.pdf",
    "..\\escape.pdf", "B/../../escape.pdf", "B/a.pdf", "B/sub/a.pdf", "a\x00.pdf", "x" * 300,
    "A.PDF", "index.csv", "__MACOSX/._a.pdf", ".hidden", "B/", "é.pdf", "e\u0301.pdf", "..",
    ".", "B/..", "link.pdf", "//server/share.pdf", "./a.pdf",
]  # fmt: skip


def _entry(archive: zipfile.ZipFile, rng: random.Random, name: str) -> None:
    info = zipfile.ZipInfo(name, date_time=(2026, 3, 5, 8, 30, 0))
    info.compress_type = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
    if name == "link.pdf" or rng.random() < 0.05:
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = rng.choice([b"%PDF-1.4\n%%EOF\n", b"", rng.randbytes(100)])
    if rng.random() < 0.05:  # a bomb: megabytes of zeros in kilobytes
        data = _ZEROS[: rng.choice([1536, 2560]) * 1024]
        info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def _built(rng: random.Random) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are on purpose
        count = rng.choice([1, 3, 8, 45]) if rng.random() < 0.9 else 0
        for _ in range(count):
            _entry(archive, rng, rng.choice(NAMES))
    return buffer.getvalue()


def _patch_headers(data: bytes, rng: random.Random) -> bytes:
    """Lie in the local and central headers: flags, sizes, name lengths, offsets."""
    out = bytearray(data)
    for signature, fields in (
        (b"PK\x03\x04", [(6, "H"), (18, "I"), (22, "I"), (26, "H")]),
        (b"PK\x01\x02", [(8, "H"), (20, "I"), (24, "I"), (28, "H"), (42, "I"), (38, "I")]),
        (b"PK\x05\x06", [(8, "H"), (10, "H"), (12, "I"), (16, "I")]),
    ):
        start = out.find(signature)
        while start != -1 and rng.random() < 0.7:
            at, kind = rng.choice(fields)
            value = rng.choice([0, 1, 0x801, 0xFFFF, 0xFFFFFFFF, 2**31, 7])
            if kind == "H":
                value &= 0xFFFF
            if start + at + struct.calcsize(kind) <= len(out):
                struct.pack_into("<" + kind, out, start + at, value)
            start = out.find(signature, start + 4)
    return bytes(out)


def _case(rng: random.Random) -> bytes:
    data = _built(rng)
    shape = rng.randrange(6)
    if shape == 0 and data:
        return data[: rng.randrange(len(data))]
    if shape == 1 and data:
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 20)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        return bytes(flipped)
    if shape == 2:
        return _patch_headers(data, rng)
    if shape == 3:  # a non-UTF-8 name flagged UTF-8 (bit 11)
        name = b"\xe9\xff.pdf"
        body = zlib.compress(b"x")[2:-4]
        local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0x800, 8, 0, 0, zlib.crc32(b"x"),
                            len(body), 1, len(name), 0) + name + body  # fmt: skip
        central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0x800, 8, 0, 0,
                              zlib.crc32(b"x"), len(body), 1, len(name), 0, 0, 0, 0, 0, 0) + name  # fmt: skip
        end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local), 0)
        return local + central + end
    return data


def corpus() -> list[tuple[str, bytes]]:
    """``COUNT`` broken zipped batches, the same on every run."""
    rng = random.Random(SEED)
    return [(f"zip-{n}", _case(rng)) for n in range(COUNT)]


CASES = corpus()


def check_zip(zip_path: Path, root: Path) -> str | None:
    """Expand one zip under ``root``: ``None`` if all is well, else what went wrong."""
    dest = root / "batch"
    outcome = expand_zip(zip_path, dest, LIMITS)
    outside = sorted(p.name for p in root.iterdir() if p not in (zip_path, dest))
    if outside:
        return f"written outside the batch folder: {outside}"
    if isinstance(outcome, ZipRefused):
        if dest.exists():
            return "refused zip left a batch folder"
        return None if outcome.reason.strip() and outcome.reason_code else "refusal without reason"
    for path in dest.iterdir():
        if path.is_symlink() or not path.is_file():
            return f"extracted something that is not a plain file: {path.name!r}"
    if any(not rejection.reason.strip() for rejection in outcome):
        return "entry rejection without a reason"
    return None


def test_fuzz_scan_zip_corpus_is_fixed() -> None:
    assert len(CASES) == COUNT
    assert corpus() == CASES


def test_fuzz_scan_zip_campaign(tmp_path: Path, exercised: Callable[[str, int], None]) -> None:
    failures = []
    for case_id, data in CASES:
        root = tmp_path / case_id
        root.mkdir()
        zip_path = root / "batch.zip"
        zip_path.write_bytes(data)
        try:
            problem = check_zip(zip_path, root)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"[:300]
        if problem is not None:
            failures.append(f"{case_id}: {problem}")
    escaped = [path for path in tmp_path.rglob("escape*")] + list(tmp_path.rglob("absolute*"))
    exercised("scan_zip", len(CASES))
    assert failures == []
    assert escaped == []
