"""report.pdf's page drawing on fpdf2 (pinned): text, filled rectangles and PNGs placed in points
from the bottom left, as report_pdf.py lays them out.

Text is set in DejaVu Sans and DejaVu Sans Mono, embedded as subsets of the fonts actually used,
so every character a result file may hold prints (Greek units, accents, symbols), not only the
14 standard PDF fonts' Windows-1252. The fonts come from Debian's fonts-dejavu-core when installed,
else from matplotlib's own copy (a dependency already); a CJK font found on the system is added
as a fallback for the characters DejaVu lacks. Nothing is downloaded.
"""
from __future__ import annotations

import io
import logging
import struct
from pathlib import Path

from .display import plain

MONO_EM = 0.602  # every DejaVu Sans Mono glyph is 1233/2048 em wide
SYSTEM_FONTS = Path("/usr/share/fonts/truetype/dejavu")
#: (fpdf family, style, file) of the fonts the report uses: F1/F2 text, F3/F4 tables
FONTS = {"F1": ("DejaVu", "", "DejaVuSans.ttf"), "F2": ("DejaVu", "B", "DejaVuSans-Bold.ttf"),
         "F3": ("DejaVuMono", "", "DejaVuSansMono.ttf"), "F4": ("DejaVuMono", "B", "DejaVuSansMono-Bold.ttf")}
#: fonts with CJK glyphs some systems have (fonts-droid-fallback, fonts-arphic-uming's TTF name)
CJK_FONTS = [Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
             Path("/usr/share/fonts/truetype/arphic-gkai00mp/gkai00mp.ttf")]


def font_dir() -> Path:
    if (SYSTEM_FONTS / "DejaVuSans.ttf").is_file():
        return SYSTEM_FONTS
    import matplotlib
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", png[16:24])


class PdfDoc:
    """Pages of drawing operations in points (1/72 in), origin at the bottom left."""

    def __init__(self, width: float, height: float, title: str = ""):
        from fpdf import FPDF
        logging.getLogger("fontTools.subset").setLevel(logging.WARNING)
        self.size = (width, height)
        self.pdf = FPDF(unit="pt", format=(width, height))
        self.pdf.set_auto_page_break(False)
        self.pdf.set_margin(0)
        self.pdf.set_title(plain(title))
        self.pdf.set_creator("simpost")
        folder = font_dir()
        for family, style, file in FONTS.values():
            self.pdf.add_font(family, style, str(folder / file))
        fallback = [p for p in CJK_FONTS if p.is_file()]
        for i, path in enumerate(fallback):
            self.pdf.add_font(f"CJK{i}", "", str(path))
        if fallback:
            self.pdf.set_fallback_fonts([f"CJK{i}" for i in range(len(fallback))])
        self.pages: list[int] = []

    def new_page(self) -> None:
        self.pdf.add_page()
        self.pages.append(self.pdf.page)

    def text(self, x: float, y: float, s: str, size: float, font: str = "F1", gray: float = 0.0) -> None:
        """s with its baseline at y."""
        family, style, _ = FONTS[font]
        self.pdf.set_font(family, style, size)
        self.pdf.set_text_color(round(gray * 255))
        self.pdf.text(x, self.size[1] - y, plain(s))

    def rect(self, x: float, y: float, w: float, h: float, gray: float) -> None:
        self.pdf.set_fill_color(round(gray * 255))
        self.pdf.rect(x, self.size[1] - y - h, w, h, style="F")

    def image(self, png: bytes, x: float, y: float, w: float) -> float:
        """The PNG w points wide with its bottom left at (x, y); returns its height in points."""
        h = self.image_height(png, w)
        self.pdf.image(io.BytesIO(png), x=x, y=self.size[1] - y - h, w=w, h=h)
        return h

    def image_height(self, png: bytes, w: float) -> float:
        iw, ih = png_size(png)
        return w * ih / iw

    def save(self, path) -> None:
        self.pdf.output(str(path))
