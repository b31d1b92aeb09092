"""The report (report.html, report.pdf) of real OMNeT++ runs: one chart per result name, the figures of
csv/ read back from the page, offline rendering in Chromium, names from result files shown as text,
the OPS preset's human names, the simulator's resources and the warnings section."""
from __future__ import annotations

import base64
import csv
import json
import math
import os
import re
import subprocess
import sys
import zlib
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest

from omnetpp_results import ParseResult, ResultsError, StatsResult, display, find_inputs, parse, stats

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def export(src: Path, tmp: Path, **kw) -> tuple[ParseResult, StatsResult, Path]:
    p = parse(src, tmp / "parsed", statistics=kw.get("statistics", "all"))
    s = stats(tmp / "parsed", tmp / "out", **kw)
    return p, s, tmp / "out"


class Page(HTMLParser):
    """What a test reads back from report.html: tables by id (rows by data-name, cells by data-col
    with their text and full-precision title), fact tables (th -> td), figures and images."""

    def __init__(self, html: str):
        super().__init__()
        self.tables: dict = defaultdict(dict)
        self.facts: list[dict] = []
        self.figures: list[str] = []  # the charts per result name (vectors, histograms)
        self.study_figures: list[str] = []  # the study's charts
        self.images: list[str] = []
        self.scripts = 0
        self.sections: dict[str, str] = {}
        self._table = self._row = self._cell = None
        self._th = self._text = None
        self._section = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "section":
            self._section = a.get("id")
            self.sections[self._section] = ""
        if tag == "table":
            self._table = a.get("id")
            if a.get("class") == "facts":
                self.facts.append({})
        if tag == "tr" and self._table:
            self._row = a.get("data-name")
        if tag == "td" and self._table and self._row is not None and a.get("data-col"):
            self._cell = {"text": "", "title": a.get("title")}
            self.tables[self._table].setdefault(self._row, {})[a["data-col"]] = self._cell
        if tag in ("th", "td"):
            self._text = ""
        if tag == "figure":
            (self.study_figures if self._section == "study" else self.figures).append(a["data-name"])
        if tag == "img":
            self.images.append(a["src"])

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        if tag == "td":
            if self._cell is not None:
                self._cell["text"] = self._text
            elif self._th is not None and self.facts:
                self.facts[-1][self._th] = self._text
            self._cell = self._th = None
        if tag == "th":
            self._th = self._text

    def handle_data(self, data):
        if self._text is not None:
            self._text += data
        if self._section:
            self.sections[self._section] += data


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def grouped(csv_rows: list[dict]) -> dict[str, list[dict]]:
    by_name = defaultdict(list)
    for r in csv_rows:
        by_name[r["name"]].append(r)
    return by_name


def num(x: str) -> float:
    try:
        return float(x)
    except ValueError:
        return math.nan


def where(row: dict, several_runs: bool, labels: dict) -> str:
    return f"{labels[row['run']]} {row['module']}" if several_runs else row["module"]


def check_cell(cell: dict, want: float, exact: bool = False) -> None:
    """The full-precision title equals the CSV figure; the shown text is it to 6 digits."""
    got = float(cell["title"])
    assert got == want if exact else math.isclose(got, want, rel_tol=1e-12), (cell, want)
    shown = float(cell["text"].split()[0])
    assert math.isclose(shown, want, rel_tol=5e-6, abs_tol=1e-300), (cell, want)


def check_extremes(cells: dict, items: list[tuple[str, float, float]]) -> None:
    """min/max cells against (module, low, high) per item: the named module holds the extreme."""
    lows = [(lo, m) for m, lo, _ in items if not math.isnan(lo)]
    highs = [(hi, m) for m, _, hi in items if not math.isnan(hi)]
    if not lows:
        assert cells["min"]["text"] == "–"
        return
    check_cell(cells["min"], min(lows)[0], exact=True)
    check_cell(cells["max"], max(highs)[0], exact=True)
    assert cells["min_at"]["text"] in {m for v, m in lows if v == min(lows)[0]}
    assert cells["max_at"]["text"] in {m for v, m in highs if v == max(highs)[0]}


@pytest.mark.parametrize("run", ["routing-Net5SaturatedQueue", "aloha-PureAlohaExperiment",
                                 "aloha-PureAloha2-sqlite"])
def test_report_holds_a_chart_per_result_name_and_the_figures_of_csv(shared_results, tmp_path, run):
    _, s, out = export(shared_results / run, tmp_path)
    page = Page((out / "report.html").read_text())
    vectors, scalars = rows(out / "csv" / "vectors.csv"), rows(out / "csv" / "scalars.csv")
    statistics, hists = rows(out / "csv" / "statistics.csv"), rows(out / "csv" / "histograms.csv")
    # one chart per result name: vectors with data, histograms with counts
    hist_counts = defaultdict(float)
    for h in hists:
        hist_counts[h["name"]] += num(h["count"])
    want = {v["name"] for v in vectors if v["count"] != "0"} | {n for n, c in hist_counts.items() if c > 0}
    assert sorted(page.figures) == sorted(want) and s.charts == len(want) + len(page.study_figures)
    assert len(page.images) == s.charts and all(i.startswith("data:image/png;base64,") for i in page.images)
    pngs = sorted(base64.b64decode(i.split(",", 1)[1]) for i in page.images)
    assert pngs == sorted(p.read_bytes() for p in (out / "graphs").glob("*.png"))  # graphs/ = the charts
    labels = {r.run_id: run_label(r) for r in _runs(tmp_path)}
    several = len(labels) > 1
    # vectors: modules with data, samples, count-weighted mean, extremes and where they are
    by_name = grouped(vectors)
    assert set(page.tables["vector-table"]) == set(by_name)
    for name, items in by_name.items():
        cells = page.tables["vector-table"][name]
        data = [v for v in items if v["count"] != "0"]
        assert cells["values"]["text"].split()[0] == str(len(data))
        assert int(cells["samples"]["title"]) == sum(int(v["count"]) for v in items)
        if data:
            check_cell(cells["mean"], sum(int(v["count"]) * num(v["mean"]) for v in data)
                       / sum(int(v["count"]) for v in data))
        check_extremes(cells, [(where(v, several, labels), num(v["min"]), num(v["max"])) for v in data])
    # scalars: values that are numbers, their mean, extremes
    by_name = grouped(scalars)
    assert set(page.tables["scalar-table"]) == set(by_name)
    for name, items in by_name.items():
        cells = page.tables["scalar-table"][name]
        values = [(where(r, several, labels), num(r["value"])) for r in items]
        numbers = [v for _, v in values if not math.isnan(v)]
        assert cells["values"]["text"].split()[0] == str(len(numbers))
        if numbers:
            check_cell(cells["mean"], sum(numbers) / len(numbers))
        check_extremes(cells, [(m, v, v) for m, v in values])
    # statistics: samples over modules, extremes of their min and max
    by_name = grouped(statistics)
    assert set(page.tables["statistic-table"]) == set(by_name)
    for name, items in by_name.items():
        cells = page.tables["statistic-table"][name]
        assert float(cells["samples"]["title"]) == sum(num(r["count"]) for r in items)
        check_extremes(cells, [(where(r, several, labels), num(r["min"]), num(r["max"])) for r in items
                               if num(r["count"]) > 0])
    # run figures: every run's card holds its Cmdenv figures from simrun-stats.csv
    sim = {r["run_id"]: r for r in rows(out / "simrun" / "simrun-stats.csv")}
    cards = {f["Run id"]: f for f in page.facts if "Run id" in f}
    assert set(cards) == set(labels)
    for run_id, card in cards.items():
        r = sim.get(run_id) or next(iter(sim.values()))
        assert card["Events"].replace(",", "") == r["events"]  # grouped for people: 38,516
        assert card["Simulated time"].split()[0].replace(",", "") == r["sim_time"]
        wall = card["Wall time (Cmdenv)"].split()[0].replace(",", "")
        assert float(wall) == pytest.approx(float(r["elapsed"]), rel=5e-6)
        assert card["Messages created"].replace(",", "") == r["messages_created"]
        if r["ev_per_sec"] not in ("", "not in log"):
            assert card["Speed"].split(" events/s")[0] == display.scaled(float(r["ev_per_sec"]))
        assert card["Simulator peak RAM"].startswith(f"{int(r['peak_sim_ram_bytes']) / 2**20:.1f} MiB")
    assert page.scripts == 1  # the one chart script (uPlot and charts.js), nothing per report


def run_label(run) -> str:
    """How the report names a run: by its itervar lines and repetition, else config-runnumber."""
    if run.itervars:  # in the order of the iterationvars attribute ("$numHosts=10, $iaMean=1")
        order = re.findall(r"\$(\w+)=", run.attrs["iterationvars"])
        return ", ".join(f"{k}={run.itervars[k]}" for k in order) + f", #{run.attrs['repetition']}"
    return f"{run.attrs['configname']}-{run.attrs['runnumber']}"


def _runs(tmp_path: Path):
    from omnetpp_results.store import Parsed
    return Parsed(tmp_path / "parsed").runs


# ----------------------------------------------------------------------------- in a browser
@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def open_offline(browser, html: Path, shot: Path) -> dict:
    """Load the page with every request but the file itself refused; what the page did."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    seen = {"requests": [], "errors": [], "dialogs": []}

    def route(r):
        seen["requests"].append(r.request.url)
        r.continue_() if r.request.url == html.as_uri() else r.abort()
    page.route("**/*", route)
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.goto(html.as_uri())
    page.wait_for_load_state("load")
    seen["images"] = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
    seen["page"] = page
    page.screenshot(path=str(shot), full_page=True)
    return seen


def test_report_renders_offline_in_chromium(shared_results, tmp_path, chromium):
    _, s, out = export(shared_results / "routing-Net5SaturatedQueue", tmp_path)
    seen = open_offline(chromium, out / "report.html", tmp_path / "report.png")
    assert seen["requests"] == [(out / "report.html").as_uri()]  # nothing else was even asked for
    assert seen["errors"] == [] and seen["dialogs"] == []
    assert len(seen["images"]) == s.charts and all(ok and w >= 900 for ok, w in seen["images"])
    shot = (tmp_path / "report.png").read_bytes()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 100_000
    page = seen["page"]
    assert page.locator("figure").count() == s.charts
    assert page.get_by_role("heading", name="Vectors").is_visible()
    page.close()


def _write_hostile_run(d: Path) -> str:
    """A run whose module names, titles and units try to be markup (all legal in OMNeT++ files)."""
    d.mkdir()
    module = "<script>alert(1)</script>"
    (d / "x.vec").write_text(
        "version 3\nrun r1\nattr configname C\nattr network N\nattr runnumber 0\n\n"
        'vector 0 "<script>alert(1)</script>" "q&len:vector" ETV\n'
        'attr title "<img src=x onerror=alert(2)>"\nattr unit "</title><b>"\n'
        'vector 1 "N.port$o[0].line" "q&len:vector" ETV\n'
        'vector 2 "N.empty\\nline" "q&len:vector" ETV\n'
        "0\t1\t0.5\t1\n1\t2\t0.75\t3\n0\t3\t1.5\t2\n\n")
    (d / "x.sca").write_text(
        "version 3\nrun r1\nattr configname C\nattr network N\nattr runnumber 0\n\n"
        'scalar "<script>alert(1)</script>" "a<b>:last" 7\nattr unit "<i>u</i>"\n\n')
    return module


def test_names_from_result_files_are_shown_as_text(tmp_path, chromium):
    module = _write_hostile_run(tmp_path / "run")
    _, s, out = export(tmp_path / "run", tmp_path)
    html = (out / "report.html").read_text()
    from omnetpp_results.report import SCRIPT
    assert html.count("<script>") == 1 and f"<script>{SCRIPT}</script>" in html  # only the chart script
    assert "<img src=x" not in html and "<b>" not in html
    seen = open_offline(chromium, out / "report.html", tmp_path / "hostile.png")
    page = seen["page"]
    assert seen["dialogs"] == [] and seen["errors"] == [] and page.locator("script").count() == 1
    assert page.locator("figure.live").count() == 1  # its chart is live, names and all
    assert page.get_by_text(module, exact=True).count() >= 2  # vector table and scalar table
    assert page.get_by_text("<img src=x onerror=alert(2)>", exact=True).count() == 1
    assert page.locator("img:not([src^='data:image/png'])").count() == 0
    page.close()
    # INFO.txt: the line break in a module name is an escape, so every entry stays on its line
    info = (out / "INFO.txt").read_text()
    assert "  N.empty\\x0aline q&len:vector\n" in info and "empty\nline" not in info
    # the `$` in a module name is no mathtext for the charts: the export did not fail, charts drawn
    assert s.charts == 1 and (out / "graphs" / "q_len_vector.png").is_file()


def test_a_file_name_with_a_line_break_and_nul_in_attributes_stay_data(tmp_path):
    """Issue 13 item 12: a file name with a newline injected a line into INFO.txt; NUL from an
    attribute was copied in."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "a\nFAKE LINE: injected.sca").write_bytes(
        b"version 3\nrun r1\nattr configname Gen\x00eral\nattr network Net\x00work\nattr runnumber 0\n\n"
        b"scalar M x 1\n\n")
    _, _, out = export(run, tmp_path)
    info = (out / "INFO.txt").read_text()
    assert not any(line.startswith("FAKE LINE") for line in info.splitlines())
    assert "a\\x0aFAKE LINE: injected.sca" in info and "Gen\\x00eral" in info
    for produced in out.rglob("*"):
        if produced.is_file() and produced.suffix in (".txt", ".html", ".csv"):
            assert b"\x00" not in produced.read_bytes(), produced.name


# ----------------------------------------------------------------------------- ops preset
def _write_ops_run(d: Path) -> None:
    """A run of an OPS network recording two OPS statistics on the network module (real OPS runs
    record these through @statistic on OPSNetwork; none are in the shared results)."""
    d.mkdir()
    head = "version 3\nrun ops-1\nattr configname Ops\nattr network OPSNetwork\nattr runnumber 0\n\n"
    (d / "ops.sca").write_text(head + "scalar OPSNetwork appTotalDataBytesReceived:last 12345\n"
                               "scalar OPSNetwork.host[0] appTotalDataBytesReceived:last 1\n\n")
    (d / "ops.vec").write_text(head + "vector 0 OPSNetwork fwdTotalBytesSent:vector ETV\n"
                               "0\t1\t0.5\t10\n0\t2\t1.5\t30\n\n")


def test_ops_preset_shows_human_names_layers_and_units(tmp_path):
    _write_ops_run(tmp_path / "run")
    _, s, out = export(tmp_path / "run", tmp_path, statistics="ops")
    from omnetpp_results.selection import load_ops
    ops = {f"{o.variable}:{o.field}": o for o in load_ops()}
    vec_ops = next(o for o in load_ops() if o.variable == "fwdTotalBytesSent")
    page = Page((out / "report.html").read_text())
    html = (out / "report.html").read_text()
    for name, o in (("appTotalDataBytesReceived:last", ops["appTotalDataBytesReceived:last"]),
                    ("fwdTotalBytesSent:vector", vec_ops)):
        assert f'<tr data-name="{name}"><td class="name">{name}</td><td>{o.name}</td><td>{o.unit}</td>' \
               f"<td>{o.layer}</td>" in html
    assert page.figures == ["fwdTotalBytesSent:vector"]
    assert f'alt="{vec_ops.name} (fwdTotalBytesSent:vector)' in html
    # only the network module's statistic is an OPS statistic
    assert page.tables["scalar-table"]["appTotalDataBytesReceived:last"]["values"]["text"] == "1"
    assert vec_ops.name in pdf_text(out / "report.pdf")


# ----------------------------------------------------------------------------- pdf
def pdf_text(path: Path) -> str:
    """The text report.pdf's pages show, as a PDF reader extracts it (pypdf)."""
    from pypdf import PdfReader
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def test_pdf_holds_the_tables_and_every_chart(shared_results, tmp_path):
    _, s, out = export(shared_results / "aloha-PureAloha1", tmp_path)
    data = (out / "report.pdf").read_bytes()
    assert data.startswith(b"%PDF-1.") and data.rstrip().endswith(b"%%EOF")
    # the cross-reference table points at every object
    xref = int(re.search(rb"startxref\n(\d+)", data).group(1))
    offsets = [int(o) for o in re.findall(rb"(\d{10}) 00000 n", data[xref:])]
    assert offsets and all(re.match(rb"\d+ 0 obj", data[o:o + 12]) for o in offsets)
    text = pdf_text(out / "report.pdf")
    assert "Run PureAloha1-0-20261121-21:41:33-15150" in text and "38516" in text
    for name in ("radioState:vector", "serverChannelState:vector", "collisionLength:histogram", "duration"):
        assert name in text
    assert len(re.findall(rb"/Subtype /Image", data)) == s.charts == 4


def test_pdf_prints_characters_outside_windows_1252(tmp_path):
    """A Greek module name and unit (and accents) print in report.pdf as report.html shows them:
    the PDF embeds a subset of DejaVu (fpdf2), not the 14 standard fonts' Windows-1252."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "greek.sca").write_text(
        "version 3\nrun r1\nattr configname Ελληνικά\nattr runnumber 0\n\n"
        'scalar Net.κόμβος[0] "ρυθμός" 42\nattr unit Ω\n'
        "scalar Net.café δt 1.5\nattr unit µs\n\n", encoding="utf-8")
    _, s, out = export(src, tmp_path)
    text = pdf_text(out / "report.pdf")
    for word in ("Ελληνικά", "ρυθμός", "Net.κόμβος[0]", "Ω", "µs", "Net.café"):
        assert word in text, word
    data = (out / "report.pdf").read_bytes()
    assert b"/FontFile2" in data and b"DejaVu" in data  # embedded TrueType subsets


# ----------------------------------------------------------------------------- resources
def test_resources_from_time_files_and_the_param(shared_results, tmp_path):
    src = shared_results / "aloha-PureAloha1"
    assert [p.name for p in find_inputs(src).times] == ["run0.time.txt"]
    assert src / "run0.time.txt" in find_inputs(src).files()  # so collect copies it
    _, s, out = export(src, tmp_path / "a")
    assert s.resources.peak_sim_ram_bytes == 12524 * 1024 and s.resources.sim_wall_seconds == 0.04
    assert s.resources.source == {"peak_sim_ram_bytes": "run0.time.txt", "sim_wall_seconds": "run0.time.txt"}
    row = rows(out / "simrun" / "simrun-stats.csv")[0]
    assert row["peak_sim_ram_bytes"] == str(12524 * 1024) and row["peak_disk_bytes"] == ""
    # the Param wins where it gives a figure; the file fills the rest
    _, s, out = export(src, tmp_path / "b", resources={"peak_sim_ram_bytes": 2e9, "peak_disk_bytes": 5e8})
    assert (s.resources.peak_sim_ram_bytes, s.resources.peak_disk_bytes, s.resources.sim_wall_seconds) == \
        (2e9, 5e8, 0.04)
    row = rows(out / "simrun" / "simrun-stats.csv")[0]
    assert row["peak_sim_ram_bytes"] == "2000000000" and row["peak_disk_bytes"] == "500000000"
    assert row["resources_source"] == "peak_sim_ram_bytes=param; peak_disk_bytes=param; sim_wall_seconds=run0.time.txt"
    assert "Simulator peak RAM: 1907.3 MiB (from param)" in (out / "INFO.txt").read_text()
    card = next(f for f in Page((out / "report.html").read_text()).facts if "Run id" in f)
    assert card["Simulator peak disk"] == "476.8 MiB (from param)"
    for bad in ({"peak_ram": 1}, {"sim_wall_seconds": -1}, {"peak_disk_bytes": "big"}, [1]):
        with pytest.raises(ResultsError, match="resources"):
            stats(tmp_path / "a" / "parsed", tmp_path / "c", resources=bad)


def test_each_run_gets_its_own_time_file(shared_results, tmp_path):
    src = shared_results / "aloha-PureAlohaExperiment"
    _, s, out = export(src, tmp_path, graphs="none")
    want = {}
    for t in sorted(src.glob("run*.time.txt")):
        kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t.read_text()).group(1))
        want[t.name.split(".")[0]] = kb * 1024
    got = {Path(r["log"]).name.split(".")[0]: int(r["peak_sim_ram_bytes"])
           for r in rows(out / "simrun" / "simrun-stats.csv")}
    assert got == want and len(set(want.values())) > 1
    assert s.resources.peak_sim_ram_bytes == max(want.values())  # the whole job: the largest peak


def test_cli_export_takes_graphs_and_resources(shared_results, tmp_path):
    r = subprocess.run([sys.executable, "-m", "omnetpp_results", "export", str(shared_results / "routing-Net10"),
                        str(tmp_path / "o"), "--graphs", "none", "--quiet",
                        "--resources", '{"sim_wall_seconds": 12.5}'],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "plugins")})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["stats"]["graphs_mode"] == "none" and out["stats"]["resources"]["sim_wall_seconds"] == 12.5
    assert not (tmp_path / "o" / "graphs").exists() and (tmp_path / "o" / "report.html").is_file()
    r = subprocess.run([sys.executable, "-m", "omnetpp_results", "export", str(shared_results / "routing-Net10"),
                        str(tmp_path / "o2"), "--graphs", "pictures"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO / "plugins")})
    assert r.returncode == 2 and "invalid choice: 'pictures'" in r.stderr


# ----------------------------------------------------------------------------- problems, XCom
def test_problems_parse_records_are_shown_as_warnings(shared_results, tmp_path):
    """A .vec cut off mid-line (a simulation killed while writing): what the reader reports reaches
    INFO.txt, the report's Warnings section and the summary; the file name is data, escaped."""
    run = tmp_path / "run"
    run.mkdir()
    data = (shared_results / "routing-Net10" / "results" / "Net10-#0.vec").read_bytes()[:150_000]
    (run / "cut<i>x.vec").write_bytes(data)
    line, ignored = data.count(b"\n") + 1, len(data) - data.rindex(b"\n") - 1
    p = parse(run, tmp_path / "parsed")
    assert [(x.line, x.bytes_ignored, x.skipped) for x in p.problems] == [(line, ignored, False)]
    s = stats(tmp_path / "parsed", tmp_path / "out", graphs="none")
    assert s.problems == p.problems
    info = (tmp_path / "out" / "INFO.txt").read_text()
    assert f"Warnings (1)\n  cut<i>x.vec:{line}: the file ends in the middle of a line" in info
    assert f"{ignored} bytes ignored" in info
    html = (tmp_path / "out" / "report.html").read_text()
    assert '<a href="#warnings">Warnings (1)</a>' in html and "cut&lt;i&gt;x.vec" in html
    assert "cut<i>x.vec" in Page(html).sections["warnings"]


def test_results_travel_as_json(shared_results, tmp_path):
    p, s, _ = export(shared_results / "aloha-PureAloha1", tmp_path)
    for result in (p, s):
        d = json.loads(json.dumps(result.as_dict()))
        assert type(result).from_dict(d) == result
    assert p["samples"] == p.samples and s["simrun"]["events"] == 38516  # item access, as the dicts had
