"""A mail as one content model (MailContent: a heading, a lead, one action link and sections of rows)
rendered twice, into the two parts of a multipart/alternative message: text/plain that reads well in
a terminal (aligned columns, wrapped at 72) and HTML that survives mail clients (tables for layout,
inline styles only, no script, no remote image, at most 640 px wide). Two hand-written copies would
drift apart; one model cannot.

The model holds plain text only, and each renderer escapes it: control characters in both parts (as
the report writes them), markup in HTML. Only http(s) links become links.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from omnetpp_results import display
from omnetpp_results.report import escape

WIDTH = 72  # of the plain-text part
MAX_WIDTH = 640  # px, of the HTML part


# --- the content model ---------------------------------------------------------------------

@dataclass(frozen=True)
class Link:
    text: str
    url: str


@dataclass(frozen=True)
class Code:
    """Text a person copies (a hash, a file or module name): fixed-width in HTML."""

    text: str


Cell = str | Link | Code


@dataclass(frozen=True)
class Section:
    title: str
    rows: tuple[tuple[Cell, ...], ...] = ()
    header: tuple[str, ...] = ()  # column headings; without them, rows are (label, value) facts
    numeric: tuple[int, ...] = ()  # columns aligned right
    note: str = ""  # a sentence under the title
    items: tuple[str, ...] = ()  # a bulleted list
    alert: bool = False  # something went wrong here: drawn in the warning colours


@dataclass(frozen=True)
class MailContent:
    subject: str
    tone: str  # success | warning | failed
    kicker: str  # what happened, in two or three words: "Results ready"
    heading: str  # which run
    lead: str
    action: Link | None
    sections: tuple[Section, ...]
    footer: str


# --- the plain-text part -------------------------------------------------------------------

def _words(cell: Cell) -> str:
    """A cell as plain text: a link is its address (a terminal makes that clickable)."""
    return display.plain(cell.url if isinstance(cell, Link) else cell.text if isinstance(cell, Code) else cell)


def _wrap(text: str, width: int) -> list[str]:
    """Lines of at most width; a word longer than that (a URL, a hash) keeps a line of its own."""
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]


def text_part(mail: MailContent) -> str:
    out = [display.plain(mail.kicker).upper(), *_wrap(display.plain(mail.heading), WIDTH), "",
           *_wrap(display.plain(mail.lead), WIDTH)]
    if mail.action:
        out += ["", f"{display.plain(mail.action.text)}:", f"    {display.plain(mail.action.url)}"]
    for section in mail.sections:
        title = display.plain(section.title)
        out += ["", title, "-" * min(len(title), WIDTH)]
        if section.note:
            out += _wrap(display.plain(section.note), WIDTH)
        out += [line for item in section.items for line in textwrap.wrap(
            display.plain(item), WIDTH, initial_indent="  - ", subsequent_indent="    ",
            break_long_words=False, break_on_hyphens=False)]
        out += _text_columns(section) if section.header else _text_facts(section)
    out += ["", "--", *_wrap(display.plain(mail.footer), WIDTH)]
    return "\n".join(line.rstrip() for line in out) + "\n"


def _text_facts(section: Section) -> list[str]:
    if not section.rows:
        return []
    labels = [display.plain(label) for label, _ in section.rows]
    lw = min(max(map(len, labels)), 28)
    room = WIDTH - 2 - lw - 2
    out = []
    for label, (_, value) in zip(labels, section.rows):
        lines = _wrap(_words(value), room)
        if len(lines[0]) > room:  # a hash or a URL: on the next line, where it fits
            out += [f"  {label}", *(f"    {line}" for line in _wrap(_words(value), WIDTH - 4))]
            continue
        first, *rest = lines
        out += [f"  {label:<{lw}}  {first}"] + [f"  {'':<{lw}}  {line}" for line in rest]
    return out


def _text_columns(section: Section) -> list[str]:
    """Aligned columns; the widest text column gives way (its cells wrap) until the table fits."""
    table = [tuple(display.plain(h) for h in section.header)] + [tuple(_words(c) for c in r) for r in section.rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(section.header))]
    while 2 + sum(widths) + 2 * (len(widths) - 1) > WIDTH:
        shrink = max((i for i in range(len(widths)) if i not in section.numeric), key=lambda i: widths[i])
        if widths[shrink] <= 12:
            break
        widths[shrink] -= 1
    out = []
    for n, row in enumerate(table):
        cells = [textwrap.wrap(c, w, break_on_hyphens=False, break_long_words=not _is_web(c)) or [""]
                 for c, w in zip(row, widths)]  # a URL is never cut: it overflows instead
        for k in range(max(map(len, cells))):
            parts = [(c[k] if k < len(c) else "") for c in cells]
            out.append("  " + "  ".join(p.rjust(w) if i in section.numeric else p.ljust(w)
                                        for i, (p, w) in enumerate(zip(parts, widths))))
        if n == 0:
            out.append("  " + "  ".join("-" * w for w in widths))
    return out


# --- the HTML part -------------------------------------------------------------------------

FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',Arial,sans-serif"
MONO = "font-family:ui-monospace,Menlo,Consolas,'DejaVu Sans Mono',monospace;font-size:12px"
TONES = {"success": "#1f7a46", "warning": "#b26a00", "failed": "#b42318"}
INK, MUTED, RULE = "#1d2330", "#4a5468", "#e1e4ea"


def _is_web(url: str) -> bool:
    return url.lower().startswith(("https://", "http://"))


def _html_cell(cell: Cell) -> str:
    if isinstance(cell, Link):
        if not _is_web(cell.url):  # never a javascript: or data: link in a mail
            return escape(cell.url)
        return (f'<a href="{escape(cell.url)}" style="color:#2a4d8f;word-break:break-all">'
                f"{escape(cell.text)}</a>")
    if isinstance(cell, Code):
        return f'<span style="{MONO};word-break:break-all">{escape(cell.text)}</span>'
    return escape(cell)


def html_part(mail: MailContent) -> str:
    tone = TONES[mail.tone]
    body = [f'<p style="margin:0 0 4px;font-size:15px">{escape(mail.lead)}</p>']
    if mail.action and not _is_web(mail.action.url):
        body.append(f'<p style="margin:12px 0">{escape(mail.action.text)}: {escape(mail.action.url)}</p>')
    elif mail.action:
        url = escape(mail.action.url)
        body.append(
            '<table role="presentation" cellpadding="0" cellspacing="0" style="margin:16px 0 6px"><tr>'
            f'<td style="border-radius:4px;background:{tone}"><a href="{url}" style="display:inline-block;'
            f'padding:11px 22px;{FONT};font-size:15px;font-weight:600;color:#ffffff;text-decoration:none;'
            f'border-radius:4px">{escape(mail.action.text)}</a></td></tr></table>'
            f'<p style="margin:0;font-size:12px;color:{MUTED};word-break:break-all">or open this link: '
            f'<a href="{url}" style="color:#2a4d8f">{url}</a></p>')
    body += [_html_section(s) for s in mail.sections]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(mail.subject)}</title></head>"
        f'<body style="margin:0;padding:0;background:#f4f5f7">'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f5f7">'
        '<tr><td align="center" style="padding:16px 8px">'
        f'<table role="presentation" width="{MAX_WIDTH}" cellpadding="0" cellspacing="0" style="width:100%;'
        f'max-width:{MAX_WIDTH}px;background:#ffffff;border:1px solid {RULE};border-radius:6px;{FONT};'
        f'font-size:14px;line-height:1.45;color:{INK}">'
        f'<tr><td style="background:#1d2a44;border-top:5px solid {tone};border-radius:6px 6px 0 0;'
        'padding:16px 24px">'
        f'<p style="margin:0;font-size:12px;font-weight:700;letter-spacing:.06em;text-transform:uppercase;'
        f'color:#c9d2e3">{escape(mail.kicker)}</p>'
        f'<h1 style="margin:2px 0 0;font-size:20px;line-height:1.3;color:#ffffff;word-break:break-word">'
        f"{escape(mail.heading)}</h1></td></tr>"
        f'<tr><td style="padding:20px 24px 8px">{"".join(body)}</td></tr>'
        f'<tr><td style="padding:12px 24px 18px;border-top:1px solid {RULE};font-size:12px;color:{MUTED}">'
        f"{escape(mail.footer)}</td></tr>"
        "</table></td></tr></table></body></html>\n")


def _html_section(section: Section) -> str:
    box = ("background:#fff8e6;border:1px solid #e0b252;border-radius:4px;padding:2px 12px 10px;"
           if section.alert else "")
    parts = [f'<h2 style="margin:22px 0 6px;padding-bottom:4px;border-bottom:2px solid #d5dae3;font-size:15px;'
             f'color:{INK}">{escape(section.title)}</h2>']
    if section.note:
        ink = MUTED if section.rows or section.items else INK  # a note that is the whole section is the message
        parts.append(f'<p style="margin:6px 0;color:{ink}">{escape(section.note)}</p>')
    if section.items:
        parts.append('<ul style="margin:6px 0;padding-left:20px">' + "".join(
            f'<li style="margin:2px 0;word-break:break-word">{escape(i)}</li>' for i in section.items) + "</ul>")
    if section.rows:
        parts.append(_html_table(section))
    inner = "".join(parts)
    return f'<div style="{box}margin-top:14px">{inner}</div>' if box else inner


def _html_table(section: Section) -> str:
    cell = "padding:4px 8px 4px 0;border-bottom:1px solid #eceef2;vertical-align:top;text-align:left"
    right = "text-align:right;white-space:nowrap"
    rows = []
    if section.header:
        rows.append("<tr>" + "".join(
            f'<th style="{cell};background:#f0f2f6;padding-left:6px;font-weight:600;white-space:nowrap'
            + (f';{right}' if i in section.numeric else "") + f'">{escape(h)}</th>'
            for i, h in enumerate(section.header)) + "</tr>")
        for row in section.rows:
            rows.append("<tr>" + "".join(
                f'<td style="{cell};padding-left:6px' + (f';{right}' if i in section.numeric else "")
                + f'">{_html_cell(c)}</td>' for i, c in enumerate(row)) + "</tr>")
    else:
        for label, value in section.rows:
            rows.append(f'<tr><th style="{cell};width:38%;font-weight:500;color:{MUTED}">{escape(label)}</th>'
                        f'<td style="{cell}">{_html_cell(value)}</td></tr>')
    return ('<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
            f'style="border-collapse:collapse;font-size:13px;margin:4px 0">{"".join(rows)}</table>')


# --- the message ---------------------------------------------------------------------------

def message(mail: MailContent, sender: str, to: str) -> EmailMessage:
    """multipart/alternative: the plain text first, the HTML last (what a client prefers when it can).
    Quoted-printable keeps the message 7-bit, whatever the server supports."""
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = mail.subject, sender, to
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(text_part(mail), cte="quoted-printable")
    msg.add_alternative(html_part(mail), subtype="html", cte="quoted-printable")
    return msg
