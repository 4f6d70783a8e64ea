"""intake_scan's reading: text-layer PDF pages/s, OCR pages/s against the tesseract CLI, peak RSS.

Inputs are generated in a temporary folder by ``services.intake_scan.testing``
before anything is timed: ``text_letters`` text-layer PDFs (``make_text_pdf``
on ``sample_letter_text`` with varied customers; every fourth letter has a
second page; 24 distinct files at most, copied to the count), and A4 pages at
300 dpi as greyscale PNG files carrying their 300 dpi (``render_letter_pages``,
saved as ``render_letter_png`` saves them): four distinct pages — a clean
one-page letter, one speckled (0.1 %) and turned 0.3°, and both pages of a
two-page letter speckled (0.2 %) and turned −0.5° — copied to
``image_pages`` files.

The reading path is the service's own: one ``PoolReader`` (spawned process
pool, ``workers`` processes, one per core by default, each with
``OMP_THREAD_LIMIT=1``) with the service's default ``ReadOptions`` (300 dpi,
``fra``, default limits), fed as ``LetterFlow`` feeds it: a window of
``2 × workers`` letters in flight (the default ``INTAKE_SCAN_READ_AHEAD``),
results taken in order, the next letter sent as each one comes back. The pool
is warmed first (workers spawned and imports done, as in the running
service), so spawning is not timed. Every result is checked: no rejection,
the expected page count, text on every page.

What is measured:

1. Text-layer PDF pages/s: all the text-layer PDFs through the reader
   (``read_letter``: pdfplumber, no OCR), pages counted from the results, from
   the first letter sent to the last result back.
2. Image pages/s, ``ocr_rounds`` rounds over the same ``image_pages`` PNG
   files, alternating ABBA (service then CLI, then CLI then service…) so that
   drift in the machine's load falls on both sides:

   - the service: the PNG files through the reader (``read_letter`` →
     ``ocr_pages``: Pillow decode, greyscale, pytesseract ``image_to_data``
     in French, orientation check only under 70 confidence);
   - the CLI alone: ``tesseract <page>.png - -l fra`` with
     ``OMP_THREAD_LIMIT=1``, as many at once as the reader has workers
     (asyncio subprocesses behind a semaphore), text read from stdout.

   Each side's pages/s is its pages over its summed wall time; the ratio is
   service / CLI (target ≥ 0.95).
3. Peak RSS, in MiB:

   - the reading process (this one, where the service's ``PoolReader``
     lives): its VmHWM, reset through ``/proc/self/clear_refs`` once the
     inputs are generated (on a kernel refusing the reset it covers the
     process's life);
   - the largest pool worker's VmHWM (the reader's spawned children, read
     before the pool closes);
   - the reading tree: the sum of VmRSS over this process and all its
     descendants (pool workers, the multiprocessing resource tracker and the
     ``tesseract`` processes pytesseract starts), sampled every 100 ms while
     the service reads (text and image passes); sampling may miss a
     short-lived peak, so it is a lower bound.

Run alone: ``python -m bench.scan [image_pages [text_letters]]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import Figure, peak_rss_mb
from services.intake_scan.adapters.reader import PoolReader, ReadOptions
from services.intake_scan.adapters.text import LetterRejected, LetterText
from services.intake_scan.testing import (
    DPI,
    make_text_pdf,
    render_letter_pages,
    sample_letter_text,
)

__all__ = ["run"]

_CITIES = (
    ("69003", "Lyon"),
    ("37000", "Tours"),
    ("36400", "La Châtre"),
    ("13008", "Marseille"),
    ("59000", "Lille"),
    ("33000", "Bordeaux"),
)
_SECOND_PAGE = """Suite de mon courrier du 3 mars 2026

Pour mémoire, voici les relevés de mon compteur depuis l'an dernier :
relevé du 15 mars 2025 : 1 204 m³ ; relevé du 14 septembre 2025 : 1 251 m³ ;
relevé du 10 février 2026 : 1 398 m³, soit 147 m³ en cinq mois.

Le plombier intervenu le 20 février a constaté une fuite sur le joint situé
juste après le compteur, dans le regard du jardin. Vous trouverez ci-joint sa
facture (n° 2026-118) et l'attestation de réparation, conformément à la loi
Warsmann du 17 mai 2011 sur les fuites après compteur.

Je vous remercie de bien vouloir plafonner ma facture au double de ma
consommation moyenne et de suspendre le prélèvement jusqu'à votre réponse.

Jean-François Dupré"""
_DISTINCT_TEXT_PDFS = 24


@dataclass(frozen=True, slots=True)
class _Inputs:
    text_pdfs: list[tuple[Path, int]]  # file, pages
    pngs: list[Path]


def _letter(number: int, *, second_page: bool) -> str:
    postcode, city = _CITIES[number % len(_CITIES)]
    return sample_letter_text(
        customer_ref=f"{100 + number:03d} {number * 37 % 1000:03d} {number * 91 % 1000:03d}",
        postcode=postcode,
        city=city,
        second_page=_SECOND_PAGE if second_page else None,
    )


def _make_inputs(folder: Path, text_letters: int, image_pages: int) -> _Inputs:
    """Write the text-layer PDFs and the PNG pages (nothing timed)."""
    text_dir, image_dir = folder / "text", folder / "images"
    text_dir.mkdir()
    image_dir.mkdir()
    distinct: list[tuple[Path, int]] = []
    for number in range(min(text_letters, _DISTINCT_TEXT_PDFS)):
        two = number % 4 == 3
        path = make_text_pdf(_letter(number, second_page=two), text_dir / f"{number:05d}.pdf")
        distinct.append((path, 2 if two else 1))
    text_pdfs = list(distinct)
    for number in range(len(distinct), text_letters):
        source, count = distinct[number % len(distinct)]
        shutil.copyfile(source, text_dir / f"{number:05d}.pdf")
        text_pdfs.append((text_dir / f"{number:05d}.pdf", count))

    rendered = [
        *render_letter_pages(_letter(0, second_page=False)),
        *render_letter_pages(_letter(1, second_page=False), rotation_deg=0.3, noise=0.001),
        *render_letter_pages(_letter(2, second_page=True), rotation_deg=-0.5, noise=0.002),
    ]
    variants = []
    for number, page in enumerate(rendered):
        path = image_dir / f"variant-{number}.png"
        page.save(path, format="PNG", dpi=(DPI, DPI))
        variants.append(path)
    pngs = []
    for number in range(image_pages):
        path = image_dir / f"{number:05d}.png"
        shutil.copyfile(variants[number % len(variants)], path)
        pngs.append(path)
    return _Inputs(text_pdfs, pngs)


def _checked(result: LetterText | LetterRejected, path: Path, pages: int) -> int:
    if isinstance(result, LetterRejected):
        raise RuntimeError(f"{path.name} rejected: {result}")
    if len(result.pages) != pages or not all(text.strip() for text in result.texts):
        raise RuntimeError(f"{path.name}: {len(result.pages)} pages read, some without text")
    return pages


async def _read_all(reader: PoolReader, letters: Sequence[tuple[Path, int]], window: int) -> int:
    """Read letters as ``LetterFlow`` does (``window`` in flight, in order); pages read."""
    queue = iter(letters)
    pending: deque[tuple[asyncio.Task[LetterText | LetterRejected], Path, int]] = deque()

    def top_up() -> None:
        while len(pending) < window and (letter := next(queue, None)) is not None:
            path, pages = letter
            pending.append((asyncio.create_task(reader.read(path)), path, pages))

    read = 0
    try:
        top_up()
        while pending:
            task, path, pages = pending.popleft()
            result = await task
            top_up()
            read += _checked(result, path, pages)
    finally:
        for task, _, _ in pending:
            task.cancel()
        await asyncio.gather(*(task for task, _, _ in pending), return_exceptions=True)
    return read


async def _tesseract_cli(pngs: Sequence[Path], concurrency: int, binary: str) -> int:
    """``tesseract page.png - -l fra`` on every page, ``concurrency`` at once; pages read."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    gate = asyncio.Semaphore(concurrency)

    async def one(path: Path) -> int:
        async with gate:
            process = await asyncio.create_subprocess_exec(
                binary, str(path), "-", "-l", "fra",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
            )  # fmt: skip
            out, _ = await process.communicate()
        if process.returncode != 0 or not out.strip():
            raise RuntimeError(f"tesseract failed on {path.name} (exit {process.returncode})")
        return 1

    return sum(await asyncio.gather(*(one(path) for path in pngs)))


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass  # the process ended meanwhile
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.extend(int(child) for child in (task / "children").read_text().split())
    except (OSError, ValueError):
        pass  # the process ended meanwhile
    return found


def _tree(pid: int) -> list[int]:
    tree, stack = [], [pid]
    while stack:
        current = stack.pop()
        tree.append(current)
        stack.extend(_children(current))
    return tree


def _is_pool_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class _TreeSampler:
    """Samples the summed VmRSS of this process and its descendants while ``active``."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self.active = False
        self.peak_kib = 0

    def _loop(self) -> None:
        root = os.getpid()
        while not self._stop.wait(self._interval_s):
            if self.active:
                total = sum(_status_kib(pid, "VmRSS:") for pid in _tree(root))
                self.peak_kib = max(self.peak_kib, total)

    def __enter__(self) -> _TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _reset_peak_rss() -> None:
    # VmHWM := VmRSS (Linux ≥ 4.0); where refused, the parent's VmHWM covers the process's life
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


async def run(
    text_letters: int = 500,
    image_pages: int = 16,
    ocr_rounds: int = 2,
    workers: int | None = None,
) -> list[Figure]:
    """Measure intake_scan's reading; return its figures."""
    binary = shutil.which("tesseract")
    if binary is None:
        raise RuntimeError("tesseract not found: apt-get install tesseract-ocr tesseract-ocr-fra")
    count = max(1, workers or os.cpu_count() or 1)
    window = 2 * count  # LetterFlow's default read-ahead
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        inputs = await asyncio.to_thread(_make_inputs, Path(tmp), text_letters, image_pages)
        pngs = [(path, 1) for path in inputs.pngs]
        _reset_peak_rss()
        reader = PoolReader(ReadOptions(), workers=count)
        service_s = cli_s = 0.0
        service_pages = cli_pages = 0
        try:
            with _TreeSampler() as sampler:
                await _read_all(reader, inputs.text_pdfs[:window], window)  # spawn, import
                await _read_all(reader, pngs[:count], window)  # page cache, first OCR
                sampler.active = True
                started = time.perf_counter()
                text_pages = await _read_all(reader, inputs.text_pdfs, window)
                text_s = time.perf_counter() - started
                sampler.active = False
                for number in range(ocr_rounds):
                    for side in ("service", "cli") if number % 2 == 0 else ("cli", "service"):
                        sampler.active = side == "service"
                        started = time.perf_counter()
                        if side == "service":
                            service_pages += await _read_all(reader, pngs, window)
                            service_s += time.perf_counter() - started
                        else:
                            cli_pages += await _tesseract_cli(inputs.pngs, count, binary)
                            cli_s += time.perf_counter() - started
                        sampler.active = False
            workers_kib = [
                _status_kib(pid, "VmHWM:") for pid in _children(os.getpid()) if _is_pool_worker(pid)
            ]
            parent_mib = peak_rss_mb(os.getpid())
        finally:
            await asyncio.to_thread(reader.close)
    service_rate = service_pages / service_s if service_s else float("nan")
    cli_rate = cli_pages / cli_s if cli_s else float("nan")
    return [
        Figure(
            f"scan text-layer PDF pages/s (PoolReader, {count} workers)",
            text_pages / text_s,
            "pages/s",
            200,
        ),
        Figure(f"scan OCR pages/s, service (PoolReader, {count} workers)", service_rate, "pages/s"),
        Figure(f"scan OCR pages/s, tesseract CLI alone ({count} at once)", cli_rate, "pages/s"),
        Figure("scan OCR service / tesseract CLI", service_rate / cli_rate, "ratio", 0.95),
        Figure("scan peak RSS, reading process (VmHWM)", parent_mib, "MiB", None, higher=False),
        Figure(
            "scan peak RSS, largest pool worker (VmHWM)",
            max(workers_kib, default=0) / 1024,
            "MiB",
            None,
            higher=False,
        ),
        Figure(
            "scan peak RSS, reading tree (process + workers + tesseract, sampled)",
            sampler.peak_kib / 1024,
            "MiB",
            None,
            higher=False,
        ),
    ]


if __name__ == "__main__":
    import sys

    pages = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    letters = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    for figure in asyncio.run(run(text_letters=letters, image_pages=pages)):
        print(f"{figure.name}: {figure.measured:.2f} {figure.unit} (target {figure.target})")
