"""Synthetic scanned letters for tests, benchmarks and ``aiguillage up --demo``.

A letter is plain text: ``\\f`` starts a new page and a line starting with a tab
is set in the right-hand column (where a French letter puts the recipient and
the place-and-date line). Pages are A4 at 300 dpi, rendered with DejaVu Sans
(Debian ``fonts-dejavu-core``) so that French accents are drawn for real.
Image renders are greyscale, optionally rotated and speckled, and carry their
300 dpi in the file. ``make_text_pdf`` writes a PDF with a real text layer
(fpdf2, a development dependency imported only there).
"""

from __future__ import annotations

import csv
import random
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFont

__all__ = [
    "A4_PX",
    "DPI",
    "INDEX_HEADER",
    "find_font",
    "index_row",
    "make_text_pdf",
    "render_letter_pages",
    "render_letter_pdf",
    "render_letter_png",
    "render_letter_tiff",
    "sample_letter_text",
    "text_pdf_batch",
    "write_index",
]

DPI = 300
A4_PX = (2480, 3508)  # 210 x 297 mm at 300 dpi
_MARGIN_PX = 280  # about 2.4 cm
_RIGHT_COLUMN = 0.55  # fraction of the page width where the right column starts
_FONT_PT = 11.0
_LINE_SPACING = 1.4
_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
)


def find_font() -> Path:
    """Return the DejaVu Sans font file, or raise naming the package that provides it."""
    for candidate in _FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    fc_match = shutil.which("fc-match")
    if fc_match is not None:
        found = subprocess.run(
            [fc_match, "-f", "%{file}", "DejaVu Sans"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if found.endswith("DejaVuSans.ttf") and Path(found).is_file():
            return Path(found)
    raise FileNotFoundError("DejaVu Sans not found: apt-get install fonts-dejavu-core")


def sample_letter_text(
    *,
    customer_ref: str = "123 456 789",
    tsa_box: str = "50001",
    postcode: str = "69003",
    city: str = "Lyon",
    second_page: str | None = None,
) -> str:
    """A typical French complaint letter about a bill, with accents, in this module's markup."""
    letter = f"""Jean-François Dupré
12 rue des Éclusiers
Bâtiment B, appartement 4
{postcode} {city}
Tél. : 06 12 34 56 78
jf.dupre@exemple.fr
Référence client : {customer_ref}

\tService Client
\tTSA {tsa_box}
\t36400 La Châtre

\t{city}, le 3 mars 2026

Objet : Réclamation sur la facture n° FA2026-004512

Madame, Monsieur,

Je conteste le montant de 1 234,56 € prélevé le 12 février 2026 sur mon compte.
Ma consommation habituelle est d'environ 45,80 € par mois. Malgré mes appels, la
fuite signalée après le compteur n'a jamais été prise en compte. Je souhaite un
dégrèvement et le remboursement du trop-perçu.

Veuillez agréer, Madame, Monsieur, l'expression de mes salutations distinguées.

Jean-François Dupré"""
    return letter if second_page is None else f"{letter}\f{second_page}"


def _pages(text: str) -> list[list[str]]:
    return [page.split("\n") for page in text.split("\f")]


def _wrap(line: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    words = line.split(" ")
    wrapped: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if current and font.getlength(candidate) > width:
            wrapped.append(current)
            current = word
        else:
            current = candidate
    wrapped.append(current)
    return wrapped


def _render_page(lines: Sequence[str], font: ImageFont.FreeTypeFont) -> Image.Image:
    width, height = A4_PX
    page = Image.new("L", A4_PX, 255)
    draw = ImageDraw.Draw(page)
    line_height = round(_FONT_PT / 72 * DPI * _LINE_SPACING)
    y = _MARGIN_PX
    for raw in lines:
        right = raw.startswith("\t")
        x = round(width * _RIGHT_COLUMN) if right else _MARGIN_PX
        for part in _wrap(raw.strip("\t"), font, width - _MARGIN_PX - x):
            if y + line_height > height - _MARGIN_PX:
                raise ValueError("letter page overflows A4: insert a \\f page break")
            draw.text((x, y), part, font=font, fill=0)
            y += line_height
    return page


def _degrade(page: Image.Image, rotation_deg: float, noise: float, seed: int) -> Image.Image:
    if rotation_deg:
        page = page.rotate(
            rotation_deg, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255
        )
    if noise > 0:
        rng = random.Random(seed)
        threshold = max(1, min(255, round(noise * 256)))
        speckle = Image.frombytes("L", page.size, rng.randbytes(page.size[0] * page.size[1]))
        speckle = speckle.point(lambda value: 0 if value < threshold else 255)
        page = ImageChops.darker(page, speckle)
    return page


def render_letter_pages(
    text: str, *, rotation_deg: float = 0.0, noise: float = 0.0, seed: int = 7
) -> list[Image.Image]:
    """Render a letter to greyscale A4 pages at 300 dpi, rotated and speckled as asked.

    ``rotation_deg`` turns each page counter-clockwise; ``noise`` is the share of
    pixels (0 to 1) darkened at random, deterministically for a given ``seed``.
    """
    font = ImageFont.truetype(str(find_font()), size=round(_FONT_PT / 72 * DPI))
    return [
        _degrade(_render_page(lines, font), rotation_deg, noise, seed + number)
        for number, lines in enumerate(_pages(text))
    ]


def render_letter_png(
    text: str, path: Path, *, rotation_deg: float = 0.0, noise: float = 0.0
) -> Path:
    """Write a one-page letter as a 300 dpi greyscale PNG (a single-sheet scan)."""
    pages = render_letter_pages(text, rotation_deg=rotation_deg, noise=noise)
    if len(pages) != 1:
        raise ValueError("a PNG holds one page: use render_letter_tiff or render_letter_pdf")
    pages[0].save(path, format="PNG", dpi=(DPI, DPI))
    return path


def render_letter_tiff(
    text: str, path: Path, *, rotation_deg: float = 0.0, noise: float = 0.0
) -> Path:
    """Write a letter as a multi-page 300 dpi TIFF (LZW), one frame per page."""
    first, *rest = render_letter_pages(text, rotation_deg=rotation_deg, noise=noise)
    first.save(
        path,
        format="TIFF",
        save_all=True,
        append_images=rest,
        compression="tiff_lzw",
        dpi=(DPI, DPI),
    )
    return path


def render_letter_pdf(
    text: str, path: Path, *, rotation_deg: float = 0.0, noise: float = 0.0
) -> Path:
    """Write a letter as an image-only PDF (no text layer), one 300 dpi A4 image per page."""
    first, *rest = render_letter_pages(text, rotation_deg=rotation_deg, noise=noise)
    first.save(path, format="PDF", save_all=True, append_images=rest, resolution=float(DPI))
    return path


def make_text_pdf(
    text: str,
    path: Path,
    *,
    user_password: str | None = None,
    image_pages: Sequence[Path] = (),
) -> Path:
    """Write a letter as an A4 PDF with a real (Unicode) text layer, as office software does.

    With ``user_password`` the PDF is encrypted (AES-128) and cannot be opened
    without it, as some customers' scanners or accounting exports produce; an
    empty one only restricts permissions. ``image_pages`` (PNG/TIFF files)
    are appended as full-page scans without text, as in a typed letter
    followed by scanned enclosures.
    """
    from fpdf import FPDF  # development dependency: only tests and benchmarks call this
    from fpdf.enums import EncryptionMethod, XPos, YPos

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_margins(24, 24, 24)
    pdf.set_auto_page_break(auto=True, margin=24)
    pdf.add_font("DejaVu", "", str(find_font()))
    pdf.set_font("DejaVu", size=_FONT_PT)
    line_mm = _FONT_PT * 25.4 / 72 * _LINE_SPACING
    for lines in _pages(text):
        pdf.add_page()
        for raw in lines:
            if raw.startswith("\t"):
                pdf.set_x(210 * _RIGHT_COLUMN)
            pdf.multi_cell(
                0, line_mm, raw.strip("\t"), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
    for image in image_pages:
        pdf.add_page()
        pdf.image(str(image), x=0, y=0, w=210, h=297)
    if user_password is not None:
        pdf.set_encryption(
            owner_password=user_password + "-owner",
            user_password=user_password,
            encryption_method=EncryptionMethod.AES_128,
        )
    pdf.output(str(path))
    return path


INDEX_HEADER = ("file_name", "scanned_at", "tsa_box", "envelope_id", "page_count")


def index_row(
    file_name: str,
    *,
    scanned_at: str = "2026-03-05T08:30:00+01:00",
    tsa_box: str = "50001",
    envelope_id: str = "",
    page_count: str = "",
) -> dict[str, str]:
    """One row of a provider's batch index (the columns of the README's input contract)."""
    return {
        "file_name": file_name,
        "scanned_at": scanned_at,
        "tsa_box": tsa_box,
        "envelope_id": envelope_id or f"ENV-{file_name.rsplit('.', 1)[0]}",
        "page_count": page_count,
    }


def write_index(path: Path, rows: Iterable[Mapping[str, str]], *, delimiter: str = ";") -> Path:
    """Write a batch index CSV (UTF-8, header first) as the scan provider does."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=INDEX_HEADER, delimiter=delimiter)
        writer.writeheader()
        for row in rows:
            writer.writerow(dict(row))
    return path


def text_pdf_batch(
    folder: Path,
    customer_refs: Sequence[str],
    *,
    scanned_at: str = "2026-03-05T08:30:00+01:00",
    tsa_box: str = "50001",
    index: bool = True,
) -> list[str]:
    """A batch folder of text-layer PDF letters (no OCR needed), one per customer reference.

    Returns the file names in index order; with ``index`` the index is written last.
    """
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for number, ref in enumerate(customer_refs, start=1):
        name = f"lettre-{number:04d}.pdf"
        text = sample_letter_text(customer_ref=ref, tsa_box=tsa_box)
        make_text_pdf(text, folder / name)
        names.append(name)
    if index:
        rows = [index_row(n, scanned_at=scanned_at, tsa_box=tsa_box, page_count="1") for n in names]
        write_index(folder / "index.csv", rows)
    return names
