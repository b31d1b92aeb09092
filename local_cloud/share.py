"""What a browser sees for a share link: a page with the run, a download button and its report.

The report is the archive's top-level `report.html`, streamed out of the stored zip (never
unpacked to disk) by a fixed URL, `/f/<id>/report.html`: no other member can be asked for. It is
shown in an iframe with the `sandbox` attribute and is itself served with a CSP that sandboxes
it again (for when it is opened on its own), allows one script only, the report's chart script
(uPlot and its set-up, the same in every report, by its hash), no request to any origin (only
inline styles and data: images and fonts), no form, and lets only our own page frame it. The
sandbox allows scripts but not the same origin, so that script cannot reach this page, its
cookies or the network. The outer page's CSP forbids the frame to navigate anywhere but here.
"""
from __future__ import annotations

import base64
import hashlib
import html
import logging
import re
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .redact import link_tag
from .registry import FileRow

log = logging.getLogger("local_cloud")

REPORT = "report.html"
MAX_REPORT_BYTES = 64 << 20  # bigger than any report we write; a zip bomb stops here
BLOCK = 1 << 16
TITLE_RE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, OSError, RuntimeError, NotImplementedError,
              ValueError, EOFError, zlib.error)

STYLE = """
:root { color-scheme: light; font-family: system-ui, sans-serif; color: #1d2330; background: #f4f5f7; }
body { margin: 0; }
header { background: #fff; border-bottom: 1px solid #d8dbe2; padding: 1.2rem 2rem; }
h1 { font-size: 1.35rem; margin: 0 0 .6rem; overflow-wrap: anywhere; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0 0 1rem; font-size: .95rem; }
dt { color: #5b6375; } dd { margin: 0; overflow-wrap: anywhere; }
code { font-size: .85rem; }
a.button { display: inline-block; background: #1f6feb; color: #fff; text-decoration: none; font-weight: 600;
           padding: .55rem 1.1rem; border-radius: 6px; }
a.button:hover { background: #1859c4; }
main { padding: 1rem 2rem 2rem; }
iframe { width: 100%; height: 78vh; border: 1px solid #d8dbe2; border-radius: 6px; background: #fff; }
p.note { background: #fff8e1; border: 1px solid #f0d890; padding: .8rem 1rem; border-radius: 6px; }
p.caption { margin: 0 0 .5rem; color: #5b6375; font-size: .9rem; }
@media (max-width: 600px) { header, main { padding-left: 1rem; padding-right: 1rem; } }
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
PAGE_HEADERS = {
    "content-security-policy": (f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'self' data:; "
                                "frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",  # the page's URL is the capability
    "x-robots-tag": "noindex, nofollow",
    "x-content-type-options": "nosniff",
    "cache-control": "private, no-cache",
    "vary": "Accept",
}
#: sha256 of the report's one inline script (omnetpp_results.report.SCRIPT_SHA256; a test keeps them equal)
REPORT_SCRIPT_SHA256 = "RaWaTR1UFA80mJtNlK3CnBIVgr4UIWz2USr/GPrxxWU="
REPORT_HEADERS = {
    "content-security-policy": ("sandbox allow-scripts; default-src 'none'; "
                                f"script-src 'sha256-{REPORT_SCRIPT_SHA256}'; style-src 'unsafe-inline'; img-src data:; "
                                "font-src data:; media-src data:; base-uri 'none'; form-action 'none'; "
                                "frame-ancestors 'self'"),
    "referrer-policy": "no-referrer",
    "x-robots-tag": "noindex, nofollow",
    "x-content-type-options": "nosniff",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "private, max-age=300",
}


@dataclass(frozen=True)
class Report:
    """The archive's report.html as the zip's central directory describes it."""

    size: int
    title: str | None


def wants_page(accept: str) -> bool:
    """True when the client asks for HTML by name (browsers); curl, wget, requests send */*."""
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if media.lower() in ("text/html", "application/xhtml+xml"):
            q = next((p[2:] for p in params if p.lower().startswith("q=")), "1")
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


def find_report(path: Path) -> Report | None:
    """report.html of a stored zip (size and <title>), or None: not a zip, no report, unreadable."""
    try:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(REPORT)
            if info.file_size > MAX_REPORT_BYTES:
                return None
            with z.open(info) as member:
                head = member.read(BLOCK)
    except ZIP_ERRORS:
        return None
    m = TITLE_RE.search(head)
    title = " ".join(html.unescape(m.group(1).decode("utf-8", "replace")).split())[:200] if m else None
    return Report(info.file_size, title or None)


def report_chunks(path: Path) -> Iterator[bytes]:
    """The bytes of report.html, decompressed block by block straight from the zip."""
    try:
        with zipfile.ZipFile(path) as z, z.open(REPORT) as member:
            sent = 0
            while sent < MAX_REPORT_BYTES and (block := member.read(BLOCK)):
                sent += len(block)
                yield block
    except ZIP_ERRORS as e:
        log.warning("report.html of %s could not be read to the end: %s", link_tag(path.name), type(e).__name__)


def _short(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _size(n: int) -> str:
    return _short(n) if n < 1000 else f"{_short(n)} ({n:,} bytes)"


def _when(ts: float | None, now: float) -> str:
    if ts is None:
        return "never (kept until deleted)"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))
    days = (ts - now) / 86400
    ahead = f"in {days:.0f} days" if days >= 2 else f"in {max(0.0, days * 24):.0f} hours"
    return f"{ahead} ({stamp})"


def page(row: FileRow, report: Report | None, now: float | None = None) -> str:
    """The share page; every value from the upload (name, report title) is escaped."""
    now = now or time.time()
    esc = html.escape
    title = report.title if report and report.title else row.name
    fid = esc(row.id)
    if report:
        body = (f'<p class="caption">The report from the archive ({REPORT}, {_short(report.size)}) &middot; '
                f'<a href="{fid}/{REPORT}" target="_blank" rel="noopener noreferrer">open it on its own</a></p>'
                f'<iframe src="{fid}/{REPORT}" sandbox="allow-scripts" referrerpolicy="no-referrer" '
                f'title="Report of {esc(title)}"></iframe>')
    else:
        body = ('<p class="note">This archive has no <code>report.html</code> to show (it may be older than '
                'reports, or not a simpost archive). Download it to see what it holds.</p>')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<link rel="icon" href="data:,">
<title>{esc(title)}</title>
<style>{STYLE}</style></head>
<body><header>
<h1>{esc(title)}</h1>
<dl>
<dt>File</dt><dd>{esc(row.name)}</dd>
<dt>Size</dt><dd>{_size(row.size)}</dd>
<dt>Uploaded</dt><dd>{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(row.uploaded_at))}</dd>
<dt>Expires</dt><dd>{_when(row.expires_at, now)}</dd>
<dt>SHA-256</dt><dd><code>{esc(row.sha256)}</code></dd>
</dl>
<a class="button" href="{fid}/download" download>Download {esc(row.name)}</a>
</header>
<main>{body}</main>
</body></html>
"""


def gone_page() -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Link expired</title><style>{STYLE}</style></head>
<body><header><h1>This link has expired or does not exist</h1>
<p>Ask whoever sent it for a new one.</p></header></body></html>
"""
