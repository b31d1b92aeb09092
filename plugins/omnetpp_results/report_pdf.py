"""report.pdf: the report's content on A4 pages for printing.

A small flow layout over pdfdoc (fpdf2): headings, facts, name tables and the chart PNGs go down
the page and start a new page when they do not fit; a long table continues on the next page under
its header. Tables are set in DejaVu Sans Mono, whose glyphs are all one width, so columns line up.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

from . import display
from .contents import Contents
from .pdfdoc import MONO_EM, PdfDoc
from .study import summary
from .tables import COLUMNS

A4 = (595.28, 841.89)  # points
MARGIN = 42.0
WIDTH = A4[0] - 2 * MARGIN
BODY = 8.0
TABLE = 6.8
MIN_TABLE = 5.6  # tables shrink to this size before their widest columns are cut
MIN_CHARS = 12
SANS_EM = 0.6  # average width of a DejaVu Sans character, for wrapping and cutting


def _cut(s: str, chars: int, keep_end: bool = False) -> str:
    """At most chars characters; a module path keeps its end, the part that tells modules apart."""
    if len(s) <= chars:
        return s
    return "…" + s[-(chars - 1):] if keep_end else s[:chars - 1] + "…"


class _Flow:
    def __init__(self, title: str):
        self.doc = PdfDoc(*A4, title=title)
        self.title = title
        self.y = 0.0

    def _page(self) -> None:
        self.doc.new_page()
        n = len(self.doc.pages)
        self.doc.text(MARGIN, MARGIN / 2, f"{self.title}: simulation report, page {n}", 6, gray=0.45)
        self.y = A4[1] - MARGIN

    def need(self, height: float) -> None:
        if not self.doc.pages or self.y - height < MARGIN:
            self._page()

    def heading(self, s: str, size: float = 12.0) -> None:
        self.need(size * 2 + 60)  # keep a heading with the start of what follows it
        self.y -= size * 1.6
        self.doc.text(MARGIN, self.y, _cut(s, int(WIDTH / (size * SANS_EM))), size, "F2", gray=0.12)
        self.y -= size * 0.6

    def paragraph(self, s: str, size: float = BODY) -> None:
        for line in textwrap.wrap(s, width=int(WIDTH / (size * SANS_EM))):
            self.need(size * 1.5)
            self.y -= size * 1.5
            self.doc.text(MARGIN, self.y, line, size, gray=0.3)

    def facts(self, rows: list[tuple[str, str]], size: float = BODY) -> None:
        label_w = 150.0
        chars = int((WIDTH - label_w) / (size * SANS_EM))
        for label, value in rows:
            self.need(size * 1.55)
            self.y -= size * 1.55
            self.doc.text(MARGIN, self.y, label, size, gray=0.35)
            self.doc.text(MARGIN + label_w, self.y, _cut(value, chars), size)
        self.y -= size

    def table(self, header: list[str], rows: list[list[str]], right: set, modules: frozenset = frozenset()) -> None:
        """Columns as wide as their longest cell; when the page is too narrow the widest shrink
        first; rows that do not fit go on the next page, under the header again."""
        ncol = len(header)
        widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(ncol)]
        while sum(widths) + ncol - 1 > WIDTH / (MIN_TABLE * MONO_EM) and max(widths) > MIN_CHARS:
            widths[widths.index(max(widths))] -= 1
        size = min(TABLE, WIDTH / ((sum(widths) + ncol - 1) * MONO_EM))
        em = size * MONO_EM
        xs = [MARGIN + (sum(widths[:i]) + i) * em for i in range(ncol)]
        pitch = size * 1.45
        todo = [[_cut(c, w, i in modules) for i, (c, w) in enumerate(zip(r, widths))] for r in rows]
        while todo:
            self.need(pitch * 3)
            self._row(header, xs, widths, em, size, set(), "F4", pitch, shade=0.93)
            while todo and self.y - pitch >= MARGIN:
                self._row(todo.pop(0), xs, widths, em, size, right, "F3", pitch)
            self.y -= pitch / 2

    def _row(self, cells, xs, widths, em, size, right, font, pitch, shade=None) -> None:
        self.y -= pitch
        if shade is not None:
            self.doc.rect(MARGIN, self.y - size * 0.35, WIDTH, pitch, shade)
        for c, cell in enumerate(cells):
            x = xs[c] + (widths[c] - len(cell)) * em if c in right else xs[c]
            self.doc.text(x, self.y, cell, size, font)

    def chart(self, png: bytes) -> None:
        h = self.doc.image_height(png, WIDTH)
        self.need(h + 8)
        self.y -= h + 8
        self.doc.image(png, MARGIN, self.y, WIDTH)


def write_pdf(path: Path, c: Contents, images: list[bytes]) -> None:
    """images: the charts' PNGs, in the order of c.charts."""
    flow = _Flow(c.title())
    flow.heading(c.title(), size=16)
    flow.paragraph(f"OMNeT++ results post-processed by simpost; statistics: {c.selection}.")
    if c.problems:
        flow.heading(f"Warnings ({len(c.problems)})")
        flow.table(["File", "Line", "Problem", "Bytes ignored", "What was done"],
                   [[Path(p.path).name, display.number(p.line), p.message, str(p.bytes_ignored),
                     p.done()] for p in c.problems], right={1, 3})
    for run in c.runs:
        flow.heading(f"Run {run.run_id}")
        flow.facts(display.run_facts(c, run))
    flow.heading("Post-processing")
    facts = display.postprocessing_facts(c)
    if len(c.runs) > 1:
        facts += [(f"Whole job: {k.lower()}", v) for k, v in display.resource_facts(c.resources)]
    flow.facts(facts)
    _study(flow, c, images)
    for kind, title, rows in (("vector", "Vectors", c.vector_rows), ("scalar", "Scalars", c.scalar_rows),
                              ("statistic", "Statistics and histograms", c.statistic_rows)):
        flow.heading(title)
        _names(flow, kind, rows)
        for chart, png in zip(c.charts, images):
            if chart.kind == kind or (kind == "statistic" and chart.kind == "histogram"):
                if png is not None:
                    flow.chart(png)
                if chart.problem:
                    flow.paragraph(f"{chart.info.heading()}: {chart.problem}")
    flow.doc.save(path)


def _study(flow: _Flow, c: Contents, images: list) -> None:
    """The study as report.html has it: per config its charts, the table of their points, what
    was too much to chart and what does not vary."""
    if not c.study:
        return
    flow.heading("Study")
    flow.paragraph("Each point the mean over the repetitions with its 95% confidence interval (Student's t; "
                   "none for one repetition). Every point is in csv/study.csv.")
    for cs in c.study.configs.values():
        runs = sum(1 for rv in c.study.rvs if rv.config == cs.config)
        flow.heading(cs.config, size=10)
        flow.paragraph(summary.intro(cs, runs))
        for chart, png in zip(c.charts, images):
            if chart.kind == "study" and chart.info.name.startswith(cs.config + ": ") and png is not None:
                flow.chart(png)
        listed = {id(res) for s_, res in c.study_uncharted if s_ is cs}
        rows, more = summary.rows(cs, [r for r in cs.varying() if id(r) not in listed])
        flow.table(summary.header(cs), rows, right=set(range(len(cs.variables) + 1, len(cs.variables) + 6)))
        if more:
            flow.paragraph(f"... and {more} more rows in csv/study.csv")
        if listed:
            flow.paragraph(f"{len(listed)} more results vary, too many to chart (csv/study.csv): "
                           + ", ".join(r.heading() for s_, r in c.study_uncharted if s_ is cs))
        if (const := summary.constant_rows(cs)):
            flow.paragraph("Results that do not vary, or record a variable:")
            flow.table(["Result", "Value"], const, right=set())


def _names(flow: _Flow, kind: str, rows) -> None:
    if not rows:
        flow.paragraph(f"No {kind}s selected.")
        return
    layer = any(r.layer for r in rows)
    cols = COLUMNS[kind]
    header = ["Name", "Title", "Unit"] + (["Layer"] if layer else []) + [h for h, _ in cols]
    first = len(header) - len(cols)
    body = []
    for r in rows:
        cells = [r.name, r.title, r.unit] + ([r.layer] if layer else [])
        for _, key in cols:
            v = getattr(r, key)
            cells.append(v if key.endswith("_at") else display.number(v) +
                         (f" of {r.modules}" if key == "values" and r.values != r.modules else ""))
        body.append(cells)
    flow.table(header, body, {first + i for i, (_, key) in enumerate(cols) if not key.endswith("_at")},
               frozenset(first + i for i, (_, key) in enumerate(cols) if key.endswith("_at")))
