"""The report: report.html, one self-contained page (inline CSS, charts as data: PNGs, nothing
fetched), and report.pdf with the same content for printing (report_pdf.py).

Its charts can be explored: one inline script, the same in every report (the pinned uPlot and
data/charts.js; SCRIPT_SHA256 is what a Content-Security-Policy allows), turns each figure's
data-series attribute into an interactive chart; the PNG stays for printing and without scripts.

Everything taken from result files is escaped: module names, result names, titles and attribute
values are data, never markup.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
from pathlib import Path

from . import display
from .charts import Chart
from .contents import Contents
from .study import summary
from .naming import safe, unique_stems
from .report_pdf import write_pdf
from .tables import COLUMNS, NameRow


DATA = Path(__file__).resolve().parent / "data"
#: the report's one script: uPlot (pinned, data/uplot/SOURCE.txt) and our charts.js
SCRIPT = (DATA / "uplot" / "uPlot.iife.min.js").read_text(encoding="utf-8") + "\n" + \
    (DATA / "charts.js").read_text(encoding="utf-8")
SCRIPT_SHA256 = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode()
UPLOT_CSS = (DATA / "uplot" / "uPlot.min.css").read_text(encoding="utf-8")
#: numbers a live chart may carry in its data-series attribute; bigger charts stay PNG only
LIVE_NUMBERS = 40_000


def escape(s) -> str:
    """HTML text of a value that may come from a result file."""
    return html.escape(display.plain(s))

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d2330;
margin:0;background:#f4f5f7}
main{max-width:1080px;margin:0 auto;padding:12px 20px 40px}
header{background:#1d2a44;color:#fff;padding:18px 20px}
header .in{max-width:1080px;margin:0 auto}
h1{font-size:22px;margin:0 0 4px}
header p{margin:0;color:#c9d2e3}
nav{margin-top:10px}nav a{color:#fff;margin-right:14px;text-decoration:none;border-bottom:1px dotted #8fa3c8}
h2{font-size:18px;margin:28px 0 10px;padding-bottom:4px;border-bottom:2px solid #d5dae3}
h3{font-size:15px;margin:18px 0 6px}
section{background:#fff;border:1px solid #e1e4ea;border-radius:6px;padding:4px 18px 16px;margin-top:18px}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0 4px}
th,td{padding:3px 8px;border-bottom:1px solid #eceef2;text-align:left;vertical-align:top}
th{background:#f0f2f6;font-weight:600;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.mod{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;overflow-wrap:anywhere}
td.name{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
table.facts{width:auto;min-width:60%}table.facts th{text-align:left;background:none;font-weight:500;color:#4a5468}
.runs{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:10px}
figure{margin:16px 0;break-inside:avoid}
figure img{width:100%;height:auto;border:1px solid #e1e4ea;border-radius:4px}
figcaption{font-size:12px;color:#4a5468}
figure.nochart{border:1px dashed #e0b252;background:#fff8e6;border-radius:4px;padding:10px 12px}
.warn{border-color:#e0b252;background:#fff8e6}.warn h2{border-color:#e0b252}
.muted{color:#6b7385}
details{margin:8px 0}summary{cursor:pointer;color:#2a4d8f}
figure.live>img{display:none}.chart-live{width:100%;background:#fff}.chart-live .u-legend{font-size:12px}
@media print{figure.live>img{display:block}.chart-live{display:none}}
"""


def write_report(out_dir: Path, c: Contents, images: list[bytes]) -> None:
    """report.html and report.pdf into out_dir from the charts' PNGs (in the order of c.charts);
    with graphs "statistic" the PNGs also as graphs/<result name>.png (counted in c.graph_files)."""
    stems = unique_stems([safe(ch.info.name) for ch in c.charts])
    for chart, stem, data in zip(c.charts, stems, images):
        chart.stem = stem
        if c.graphs == "statistic" and data is not None:
            (out_dir / "graphs").mkdir(exist_ok=True)
            (out_dir / "graphs" / f"{stem}.png").write_bytes(data)
            c.graph_files += 1
    (out_dir / "report.html").write_text(_html(c, images), encoding="utf-8")
    write_pdf(out_dir / "report.pdf", c, images)


def _html(c: Contents, images: list[bytes]) -> str:
    study_charts = [(ch, img) for ch, img in zip(c.charts, images) if ch.kind == "study"]
    vec_charts = [(ch, img) for ch, img in zip(c.charts, images) if ch.kind == "vector"]
    hist_charts = [(ch, img) for ch, img in zip(c.charts, images) if ch.kind == "histogram"]
    nav = [("run", "Run"), ("vectors", "Vectors"), ("scalars", "Scalars"),
           ("statistics", "Statistics and histograms"), ("files", "Files")]
    if c.study:
        nav.insert(1, ("study", "Study"))
    if c.problems:
        nav.insert(0, ("warnings", f"Warnings ({len(c.problems)})"))
    parts = [
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(c.title())}: simulation report</title><style>{UPLOT_CSS}{CSS}</style></head><body>",
        f'<header><div class="in"><h1>{escape(c.title())}</h1>',
        f"<p>OMNeT++ results post-processed by simpost · {len(c.runs)} run{'s' if len(c.runs) != 1 else ''}"
        f" · statistics: {escape(c.selection)}</p>",
        "<nav>" + "".join(f'<a href="#{a}">{escape(t)}</a>' for a, t in nav) + "</nav></div></header><main>",
        _warnings(c), _run_section(c), _study_section(c, study_charts),
        _section("vectors", "Vectors", _vectors_intro(c), _names_table("vector-table", c.vector_rows, "vector"),
                 *(_figure(ch, img) for ch, img in vec_charts), _empty_list(c)),
        _section("scalars", "Scalars", _names_table("scalar-table", c.scalar_rows, "scalar")),
        _section("statistics", "Statistics and histograms",
                 _names_table("statistic-table", c.statistic_rows, "statistic"),
                 *(_figure(ch, img) for ch, img in hist_charts)),
        _files_section(c), f"</main><script>{SCRIPT}</script></body></html>\n"]
    return "\n".join(p for p in parts if p)


def _section(anchor: str, title: str, *body: str, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<section id="{anchor}"{klass}><h2>{escape(title)}</h2>\n' + "\n".join(b for b in body if b) + "</section>"


def _facts(rows: list[tuple[str, str]], css: str = "facts") -> str:
    return f'<table class="{css}">' + "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows) + "</table>"


def _warnings(c: Contents) -> str:
    if not c.problems:
        return ""
    rows = "".join(
        f'<tr><td class="mod">{escape(Path(p.path).name)}</td><td class="num">{escape(display.number(p.line))}</td>'
        f"<td>{escape(p.message)}</td><td class=\"num\">{p.bytes_ignored}</td>"
        f"<td>{escape(p.done())}</td></tr>"
        for p in c.problems)
    return _section("warnings", f"Warnings ({len(c.problems)})",
                    "<p>Some input was damaged or could not be drawn; these results leave those parts out "
                    "(the last column says what was done).</p>",
                    "<table><tr><th>File</th><th>Line</th><th>Problem</th><th>Bytes ignored</th><th>What was done</th></tr>"
                    + rows + "</table>", cls="warn")


def _run_section(c: Contents) -> str:
    cards = "".join(f'<div class="run" data-run="{escape(r.run_id)}">{_facts(display.run_facts(c, r))}</div>'
                    for r in c.runs)
    job = display.postprocessing_facts(c) + ([] if len(c.runs) < 2 else
                                            [(f"Whole job: {k.lower()}", v) for k, v in display.resource_facts(c.resources)])
    return _section("run", "Run" if len(c.runs) == 1 else f"Runs ({len(c.runs)})",
                    f'<div class="runs">{cards}</div>', "<h3>Post-processing</h3>", _facts(job))


def _study_section(c: Contents, charts: list) -> str:
    """Per config whose runs differ in their iteration variables: its charts, the table of their
    points, the results too many to chart, and those that do not vary."""
    if not c.study:
        return ""
    body = ['<p class="muted">Results against the iteration variables: each point the mean over the '
            "repetitions with its 95% confidence interval (Student's t; none for one repetition). "
            "All points of every result are in csv/study.csv; csv/runs.csv names each run's variables.</p>"]
    for cs in c.study.configs.values():
        runs = sum(1 for rv in c.study.rvs if rv.config == cs.config)
        body.append(f"<h3>{escape(cs.config)}</h3><p>{escape(summary.intro(cs, runs))}</p>")
        mine = [(ch, img) for ch, img in charts if ch.info.name.startswith(cs.config + ": ")]
        body += [_figure(ch, img) for ch, img in mine]
        uncharted = [res for s_, res in c.study_uncharted if s_ is cs]
        listed = {id(r) for r in uncharted}
        rows, more = summary.rows(cs, [r for r in cs.varying() if id(r) not in listed])
        body.append(_plain_table("study-table", summary.header(cs), rows, more, "csv/study.csv"))
        if uncharted:
            body.append(f"<details open><summary>{len(uncharted)} more results vary: too many to chart, "
                        "their points are in csv/study.csv</summary><ul>"
                        + "".join(f"<li>{escape(r.heading())}</li>" for r in uncharted) + "</ul></details>")
        if (const := summary.constant_rows(cs)):
            body.append(f"<details><summary>{len(const)} results that do not vary, or record a variable</summary>"
                        + _plain_table("study-constant", ["Result", "Value"], const, 0, "") + "</details>")
    return _section("study", "Study", *body)


def _plain_table(table_id: str, header: list[str], rows: list[list[str]], more: int, where_: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in r) + "</tr>" for r in rows)
    tail = f'<p class="muted">… and {more} more rows in {escape(where_)}</p>' if more else ""
    return f'<table id="{table_id}"><tr>{head}</tr>{body}</table>{tail}'


def _vectors_intro(c: Contents) -> str:
    with_data = c.vectors - c.empty_count
    return (f'<p class="muted">{c.vectors} vectors, {with_data} with data, of {len(c.vector_rows)} result names. '
            "One chart per result name across all modules recording it. Resampled every "
            f"{c.precision:g} s in csv/vectors/ and csv/vectors-resampled.csv.</p>")




def _names_table(table_id: str, rows: list[NameRow], kind: str) -> str:
    if not rows:
        return f'<p class="muted">No {kind}s selected.</p>'
    layer = any(r.layer for r in rows)
    head = "<tr><th>Name</th><th>Title</th><th>Unit</th>" + ("<th>Layer</th>" if layer else "") + \
        "".join(f"<th>{h}</th>" for h, _ in COLUMNS[kind]) + "</tr>"
    body = []
    for r in rows:
        cells = [f'<td class="name">{escape(r.name)}</td><td>{escape(r.title)}</td><td>{escape(r.unit)}</td>']
        if layer:
            cells.append(f"<td>{escape(r.layer)}</td>")
        for _, key in COLUMNS[kind]:
            v = getattr(r, key)
            if key.endswith("_at"):
                cells.append(f'<td class="mod" data-col="{key}">{_breakable(v)}</td>')
                continue
            text = display.number(v)
            if key == "values" and r.values != r.modules:
                text += f" of {r.modules}"
            full = "" if v is None else f' title="{escape(repr(v))}"'
            cells.append(f'<td class="num" data-col="{key}"{full}>{escape(text)}</td>')
        body.append(f'<tr data-name="{escape(r.name)}">' + "".join(cells) + "</tr>")
    return f'<table id="{table_id}">{head}{"".join(body)}</table>'


def _breakable(module: str) -> str:
    """A module path, escaped, that a narrow column may break after its dots."""
    return "<wbr>".join(escape(part) + "." for part in module.split(".")[:-1]) + escape(module.split(".")[-1])


def _figure(chart: Chart, png: bytes | None) -> str:
    info = chart.info
    if png is None:  # said where the chart would be; the Warnings list it too
        return (f'<figure id="chart-{escape(chart.stem)}" class="nochart" data-name="{escape(info.name)}">'
                f"<figcaption><b>{escape(info.heading())}</b>: {escape(chart.problem)}</figcaption></figure>")
    note = f"<figcaption>{escape(chart.problem)}</figcaption>" if chart.problem else ""
    alt = f"chart of {info.name} across {chart.modules} module{'s' if chart.modules != 1 else ''}"
    alt = f"{info.heading()}: {alt}; {chart.note}"
    data = _series(chart)
    return (f'<figure id="chart-{escape(chart.stem)}" data-name="{escape(info.name)}"{data}>'
            f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
            f"{note}</figure>")


def _series(chart: Chart) -> str:
    """The data-series attribute of a live chart ("" when it has too many numbers to carry)."""
    series = json.dumps(chart.series(), separators=(",", ":"), allow_nan=False)
    if series.count(",") > LIVE_NUMBERS:
        return ""
    return f' data-series="{escape(series)}"'


def _empty_list(c: Contents) -> str:
    if not c.empty_count:
        return ""
    items = "".join(f'<li><span class="mod">{escape(v["module"])}</span> {escape(v["name"])}</li>'
                    for v in c.empty_vectors)
    more = f"<li>… and {c.empty_count - len(c.empty_vectors)} more (csv/vectors.csv, count 0)</li>" \
        if c.empty_count > len(c.empty_vectors) else ""
    return (f"<details><summary>{c.empty_count} vectors declared without data</summary>"
            f"<ul>{items}{more}</ul></details>")


def _files_section(c: Contents) -> str:
    rows = [(Path(f["path"]).name, f"{f['format']}, {f['bytes']:,} bytes"
             + (f", index {f['index']}" if f.get("index") else "")) for f in c.files]
    rows += [(Path(s).name, "skipped: other config") for s in c.skipped_files]
    graphs = {"statistic": "graphs/ holds these charts as PNG files.",
              "vector": "graphs/ holds one PNG per vector.", "none": "No graphs/ folder (graphs: none)."}
    return _section("files", "Files", _facts(rows),
                    f'<p class="muted">Config {escape(c.runconfig or "all in the folder")}. '
                    "The numbers behind this page are in csv/ "
                    f"(full precision) and simrun/simrun-stats.csv. {graphs[c.graphs]}</p>")
