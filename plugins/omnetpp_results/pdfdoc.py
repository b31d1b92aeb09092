"""A minimal PDF writer: text in the standard fonts, filled rectangles, and PNG images.

Why not matplotlib's PdfPages: its text layout costs about a millisecond per line, most of the
report's time budget; here a page of text is string formatting. Text uses the standard fonts
every PDF reader has (Helvetica, Helvetica-Bold, Courier; nothing embedded) in WinAnsiEncoding:
a character outside it prints as "?" (the HTML report has every character). Images are the
report's chart PNGs, their compressed data passed through unchanged (PDF's Flate filter with PNG
predictors reads a PNG's IDAT stream as it is), so adding a chart costs no re-encoding.
"""
from __future__ import annotations

import struct
import zlib

from .display import plain

FONTS = {"F1": "Helvetica", "F2": "Helvetica-Bold", "F3": "Courier", "F4": "Courier-Bold"}
COURIER_EM = 0.6  # every Courier glyph is 600/1000 em wide
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _escape(s: str) -> bytes:
    raw = plain(s).encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)").replace(b"\r", b" ")


def _png_stream(png: bytes) -> tuple[int, int, bytes]:
    """(width, height, IDAT data) of an 8-bit RGB, non-interlaced PNG (what graphs.png writes)."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG")
    pos, idat, width = 8, [], None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if (depth, color, interlace) != (8, 2, 0):
                raise ValueError("only 8-bit RGB non-interlaced PNGs are embedded")
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    if width is None or not idat:
        raise ValueError("PNG without IHDR or IDAT")
    return width, height, b"".join(idat)


class PdfDoc:
    """Pages of drawing operations in points (1/72 in), origin at the bottom left."""

    def __init__(self, width: float, height: float, title: str = ""):
        self.size = (width, height)
        self.title = title
        self.pages: list[list[bytes]] = []
        self.images: list[tuple[int, int, bytes]] = []
        self.page_images: list[list[int]] = []

    def new_page(self) -> None:
        self.pages.append([])
        self.page_images.append([])

    def text(self, x: float, y: float, s: str, size: float, font: str = "F1", gray: float = 0.0) -> None:
        """s with its baseline at y."""
        self.pages[-1].append(b"BT %.3f g /%s %.2f Tf %.2f %.2f Td (%s) Tj ET" % (
            gray, font.encode(), size, x, y, _escape(s)))

    def rect(self, x: float, y: float, w: float, h: float, gray: float) -> None:
        self.pages[-1].append(b"%.3f g %.2f %.2f %.2f %.2f re f" % (gray, x, y, w, h))

    def image(self, png: bytes, x: float, y: float, w: float) -> float:
        """The PNG w points wide with its bottom left at (x, y); returns its height in points."""
        iw, ih, data = _png_stream(png)
        self.images.append((iw, ih, data))
        n = len(self.images)
        self.page_images[-1].append(n)
        h = w * ih / iw
        self.pages[-1].append(b"q %.2f 0 0 %.2f %.2f %.2f cm /Im%d Do Q" % (w, h, x, y, n))
        return h

    def image_height(self, png: bytes, w: float) -> float:
        iw, ih, _ = _png_stream(png)
        return w * ih / iw

    def save(self, path) -> None:
        objects: list[bytes] = []  # object n is objects[n - 1]

        def add(body: bytes) -> int:
            objects.append(body)
            return len(objects)

        catalog, pages_id = add(b""), add(b"")
        fonts = {name: add(b"<< /Type /Font /Subtype /Type1 /BaseFont /%s /Encoding /WinAnsiEncoding >>"
                           % base.encode()) for name, base in FONTS.items()}
        images = []
        for iw, ih, data in self.images:
            images.append(add(b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                              b"/BitsPerComponent 8 /Filter /FlateDecode /DecodeParms << /Predictor 15 "
                              b"/Colors 3 /BitsPerComponent 8 /Columns %d >> /Length %d >>\nstream\n"
                              % (iw, ih, iw, len(data)) + data + b"\nendstream"))
        font_res = b" ".join(b"/%s %d 0 R" % (n.encode(), i) for n, i in fonts.items())
        kids = []
        for ops, used in zip(self.pages, self.page_images):
            content = zlib.compress(b"\n".join(ops), 6)
            stream = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream")
            xobj = b" ".join(b"/Im%d %d 0 R" % (n, images[n - 1]) for n in used)
            kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %.2f %.2f] /Contents %d 0 R "
                            b"/Resources << /Font << %s >> /XObject << %s >> >> >>"
                            % (pages_id, *self.size, stream, font_res, xobj)))
        objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id
        objects[pages_id - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
            b" ".join(b"%d 0 R" % k for k in kids), len(kids))
        info = add(b"<< /Title (%s) /Creator (simpost) >>" % _escape(self.title))
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for i, body in enumerate(objects, start=1):
            offsets.append(len(out))
            out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
        out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
            len(objects) + 1, catalog, info, xref)
        with open(path, "wb") as f:
            f.write(out)
