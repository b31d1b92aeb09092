"""report.pdf's page drawing on fpdf2 (pinned): text, filled rectangles and PNGs placed in points
from the bottom left, as report_pdf.py lays them out.

Text is set in DejaVu Sans and DejaVu Sans Mono, embedded as subsets of the fonts actually used,
so every character a result file may hold prints (Greek units, accents, symbols), not only the
14 standard PDF fonts' Windows-1252. The fonts come from Debian's fonts-dejavu-core when installed,
else from matplotlib's own copy (pinned for it); a CJK font found on the system is added
as a fallback for the characters DejaVu lacks. Nothing is downloaded.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import struct
from pathlib import Path

from .display import plain
from .errors import ResultsError

MONO_EM = 0.602  # every DejaVu Sans Mono glyph is 1233/2048 em wide
SYSTEM_FONTS = Path("/usr/share/fonts/truetype/dejavu")
#: (fpdf family, style, file) of the fonts the report uses: F1/F2 text, F3/F4 tables
FONTS = {"F1": ("DejaVu", "", "DejaVuSans.ttf"), "F2": ("DejaVu", "B", "DejaVuSans-Bold.ttf"),
         "F3": ("DejaVuMono", "", "DejaVuSansMono.ttf"), "F4": ("DejaVuMono", "B", "DejaVuSansMono-Bold.ttf")}
#: fonts with CJK glyphs some systems have (fonts-droid-fallback, fonts-arphic-uming's TTF name)
CJK_FONTS = [Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
             Path("/usr/share/fonts/truetype/arphic-gkai00mp/gkai00mp.ttf")]


def font_dir() -> Path:
    """The DejaVu fonts' folder (the charts' PNGs are drawn in DejaVu Sans too). matplotlib's copy
    is found without importing it (that import alone cost ~0.3 s a drawing process)."""
    if (SYSTEM_FONTS / "DejaVuSans.ttf").is_file():
        return SYSTEM_FONTS
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.origin:
        raise ResultsError("no DejaVu Sans: install fonts-dejavu-core, or matplotlib (pinned) for its copy")
    return Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", png[16:24])


def png_flate(png: bytes) -> dict | None:
    """The PDF image of an 8-bit RGB or palette PNG that is not interlaced, as the charts are: its
    IDAT chunks joined are already what a PDF image with FlateDecode and the PNG predictors holds,
    so the PDF embeds them as they are (fpdf2 would decode and compress every PNG again, ~30 ms
    each). None for any other PNG (fpdf2 reads it then)."""
    w, h = png_size(png)
    depth, color, _, _, interlace = png[24:29]
    if depth != 8 or color not in (2, 3) or interlace:
        return None
    data, palette, pos = [], b"", 8
    while pos + 8 <= len(png):
        n, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            data.append(png[pos + 8:pos + 8 + n])
        elif kind == b"PLTE":
            palette = png[pos + 8:pos + 8 + n]
        elif kind in (b"tRNS", b"iCCP", b"sRGB", b"gAMA", b"cHRM"):
            return None  # transparency or colour management: fpdf2 knows what to do with them
        pos += 12 + n
    if not data or (color == 3 and not palette):
        return None
    colors = 3 if color == 2 else 1
    return {"data": b"".join(data), "w": w, "h": h, "cs": "DeviceRGB" if color == 2 else "Indexed",
            "dpn": colors, "bpc": 8, "f": "FlateDecode", "dp": f"/Predictor 15 /Colors {colors} /Columns {w}",
            **({"pal": palette} if color == 3 else {})}


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
        self.pdf.image(self._cached(png), x=x, y=self.size[1] - y - h, w=w, h=h)
        return h

    def _cached(self, png: bytes):
        """The name under which fpdf2's image cache holds the PNG's data as it is (the PNG itself
        when it is not one png_flate() takes)."""
        flate = png_flate(png)
        if flate is None:
            return io.BytesIO(png)
        from fpdf.image_datastructures import RasterImageInfo
        name = "png-" + hashlib.sha256(png).hexdigest()
        cache = self.pdf.image_cache.images
        if name not in cache:
            cache[name] = RasterImageInfo(**flate, iccp=None, iccp_i=None, i=len(cache) + 1, usages=0)
        return name

    def image_height(self, png: bytes, w: float) -> float:
        iw, ih = png_size(png)
        return w * ih / iw

    def save(self, path) -> None:
        self.pdf.output(str(path))
