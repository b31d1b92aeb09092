"""A parameter study reads as a study, and no result file can break the report.

The study's numbers are checked against a computation made here straight from the .sca files
(their text read with shlex, Student's t from SciPy when installed, else from a table), never
through the engine's own code path: the OMNeT++ 4.x Aloha experiment (42 runs, iteration variables
as run attributes) and OMNeT++ 6.1's (itervar lines). Charts that cannot be drawn come from the
project's generator (generate_edge_cases): each is a Problem naming its result, and every other
chart, table and CSV is still written.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
import shlex
import signal
import statistics as stat
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from omnetpp_results import ResultsError, parse, stats
from omnetpp_results.charts import Bars, Chart
from omnetpp_results.generate import generate_edge_cases, generate_study
from omnetpp_results.naming import NameInfo
from omnetpp_results.painter import Painter
from omnetpp_results.study.charts import MAX_CHARTS

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ALOHA4 = SHARED / "omnetpp-results-public" / "omnetpp__omnetpp-resultfiles__aloha-experiment-42runs"
ALOHA6 = SHARED / "omnetpp-results" / "aloha-PureAlohaExperiment"
#: Student's t, 0.975 quantile, by degrees of freedom (published tables, 12 digits)
T975 = {1: 12.7062047362, 2: 4.30265272975, 3: 3.18244630528, 4: 2.77644510520, 5: 2.57058183564,
        6: 2.44691185114, 7: 2.36462425159, 8: 2.30600413520, 9: 2.26215716280, 10: 2.22813885199}


def t975(df: int) -> float:
    try:
        from scipy.stats import t
    except ImportError:
        return T975[df]
    return float(t.ppf(0.975, df))


def export(src: Path, tmp: Path, **kw):
    parse(src, tmp / "parsed")
    return stats(tmp / "parsed", tmp / "out", **kw), tmp / "out"


def read_sca(path: Path) -> dict:
    """One run of a text .sca as written: attrs, itervar lines, scalars by (module, name)."""
    run = {"attrs": {}, "itervars": {}, "scalars": {}}
    for line in path.read_text().splitlines():
        toks = shlex.split(line)
        if toks and toks[0] == "attr" and not run["scalars"]:
            run["attrs"][toks[1]] = toks[2]
        elif toks and toks[0] == "itervar":
            run["itervars"][toks[1]] = toks[2]
        elif toks and toks[0] == "scalar":
            run["scalars"][(toks[1], toks[2])] = float(toks[3])
    return run


def expected_points(runs: list[dict], key: tuple, variables: list[str]) -> dict:
    """(variable values) -> (n, mean, ci low, ci high), computed here from the files' values."""
    by = defaultdict(list)
    for r in runs:
        by[tuple(r["vars"][v] for v in variables)].append(r["scalars"][key])
    out = {}
    for combo, xs in by.items():
        m = sum(xs) / len(xs)
        if len(xs) > 1:
            half = t975(len(xs) - 1) * stat.stdev(xs) / math.sqrt(len(xs))
            out[combo] = (len(xs), m, m - half, m + half)
        else:
            out[combo] = (1, m, None, None)
    return out


class Page(HTMLParser):
    """The study figures (name -> their data-series), fact tables, problem figures, warnings."""

    def __init__(self, text: str):
        super().__init__()
        self.series, self.nochart, self.images = {}, {}, {}
        self.facts: list[dict] = []
        self.headers: dict[str, list[str]] = defaultdict(list)
        self._section = self._figure = self._th = None
        self._text = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self._section = a.get("id")
        if tag == "figure":
            self._figure = a["data-name"]
            if "data-series" in a:
                self.series[a["data-name"]] = json.loads(a["data-series"])
            if "nochart" in (a.get("class") or ""):
                self.nochart[a["data-name"]] = ""
        if tag == "img" and self._figure:
            self.images[self._figure] = a["src"]
        if tag == "table" and a.get("class") == "facts":
            self.facts.append({})
        if tag in ("th", "td", "figcaption"):
            self._text = ""

    def handle_data(self, data):
        self._text += data

    def handle_endtag(self, tag):
        if tag == "figure":
            self._figure = None
        if tag == "figcaption" and self._figure in self.nochart:
            self.nochart[self._figure] = self._text
        if tag == "th":
            self.headers[self._section].append(self._text)
            self._th = self._text
        if tag == "td" and self._th is not None and self.facts:
            self.facts[-1][self._th] = self._text
            self._th = None


def check_study_chart(page: Page, name: str, runs: list[dict], key: tuple, x: str, others: list[str]):
    """The chart of one result: a line per combination of the other variables, a point per value
    of x at the mean of its repetitions, with the 95% interval; returns the lines' labels."""
    want = expected_points(runs, key, [*others, x])
    series = page.series[name]
    assert series["xlabel"].split(" [")[0] == x
    labels = []
    for line in series["lines"]:
        labels.append(line["label"])
        fixed = dict(kv.split("=", 1) for kv in line["label"].split(", ")) if others else {}
        assert list(fixed) == others
        pts = sorted((float(re.match(r"[-+.\d eE]+", c[-1]).group()), c, w) for c, w in want.items()
                     if list(c[:-1]) == [fixed[o] for o in others])
        assert line["x"] == [p[0] for p in pts]
        for i, (_, _, (n, mean, lo, hi)) in enumerate(pts):
            assert line["y"][i] == pytest.approx(mean, rel=1e-8)
            if lo is None:
                assert line["low"][i] is None and line["high"][i] is None
            else:
                assert line["low"][i] == pytest.approx(lo, rel=1e-8)
                assert line["high"][i] == pytest.approx(hi, rel=1e-8)
    return labels


def study_rows(out: Path) -> list[dict]:
    with open(out / "csv" / "study.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_aloha_4x_experiment_reads_as_a_study(tmp_path):
    runs = []
    for sca in sorted(ALOHA4.glob("*.sca")):
        r = read_sca(sca)
        r["vars"] = {"numHosts": r["attrs"]["numHosts"], "mean": r["attrs"]["mean"]}  # 4.x: one attr each
        runs.append(r)
    assert len(runs) == 42
    s, out = export(ALOHA4, tmp_path)
    page = Page((out / "report.html").read_text())
    key = ("Aloha.server", "channel utilization")
    labels = check_study_chart(page, "PureAlohaExperiment: Aloha.server channel utilization", runs, key,
                               "mean", ["numHosts"])
    assert labels == ["numHosts=10", "numHosts=15", "numHosts=20"]
    assert [len(line["x"]) for line in page.series["PureAlohaExperiment: Aloha.server channel utilization"]["lines"]] \
        == [7, 7, 7]
    assert page.images["PureAlohaExperiment: Aloha.server channel utilization"].startswith("data:image/png")
    # the page's charts name their axes as their PNGs do: a histogram counts values of its unit
    kinds = {s["kind"]: (s["xlabel"], s["ylabel"]) for s in page.series.values()}
    assert kinds["study"][0] == "mean" and kinds["histogram"][1] == "count"
    assert {(s["xlabel"], s["ylabel"]) for s in page.series.values() if s["kind"] == "histogram"} == \
        {("value [s]", "count"), ("value [packets]", "count")}  # collision length and multiplicity
    # csv/study.csv: every point of it, the same numbers to the last digit's tolerance
    want = expected_points(runs, key, ["numHosts", "mean"])
    got = {(r["numHosts"], r["$mean"]): r for r in study_rows(out)
           if (r["module"], r["name"], r["field"]) == (*key, "value")}
    assert set(got) == set(want)
    for combo, (n, mean, lo, hi) in want.items():
        row = got[combo]
        assert int(row["n"]) == n and float(row["mean"]) == pytest.approx(mean, rel=1e-12)
        assert float(row["ci95_low"]) == pytest.approx(lo, rel=1e-10)
        assert float(row["ci95_high"]) == pytest.approx(hi, rel=1e-10)
    # the scalars that only record a variable (`scalar . numHosts 10`) are not charted
    assert not any(n.startswith("PureAlohaExperiment: . ") for n in page.series)
    # the run list, csv/runs.csv and INFO.txt name each run's variables and repetition
    cards = {f["Run id"]: f for f in page.facts if "Run id" in f}
    runs_csv = {r["run"]: r for r in csv.DictReader(open(out / "csv" / "runs.csv", newline=""))}
    info = (out / "INFO.txt").read_text()
    for sca, r in zip(sorted(ALOHA4.glob("*.sca")), runs):
        rid = next(line.split()[1] for line in sca.read_text().splitlines() if line.startswith("run "))
        v = r["vars"]
        assert cards[rid]["Iteration variables"] == f"numHosts={v['numHosts']}, mean={v['mean']}"
        assert cards[rid]["Repetition"] == r["attrs"]["repetition"]
        assert (runs_csv[rid]["numHosts"], runs_csv[rid]["mean"], runs_csv[rid]["repetition"]) == \
            (v["numHosts"], v["mean"], r["attrs"]["repetition"])
        assert f"{rid}\n" in info and f"itervars numHosts={v['numHosts']}, mean={v['mean']}" in info
    assert "csv/study.csv" in info and "csv/runs.csv" in info


def test_omnetpp61_experiment_with_itervar_lines(tmp_path):
    runs = []
    for sca in sorted((ALOHA6 / "results").glob("*.sca")):
        r = read_sca(sca)
        r["vars"] = r["itervars"]
        runs.append(r)
    s, out = export(ALOHA6, tmp_path)
    page = Page((out / "report.html").read_text())
    name = "PureAlohaExperiment: Aloha.server channelUtilization:last"
    labels = check_study_chart(page, name, runs, ("Aloha.server", "channelUtilization:last"), "iaMean",
                               ["numHosts"])
    assert labels == ["numHosts=10"]
    cards = {f["Run id"]: f for f in page.facts if "Run id" in f}
    assert sorted(c["Iteration variables"] for c in cards.values()) == \
        sorted(f"numHosts={r['vars']['numHosts']}, iaMean={r['vars']['iaMean']}" for r in runs)
    # vector charts tell runs apart by their variables too
    table = (out / "report.html").read_text()
    assert "numHosts=10, iaMean=1, #0 Aloha.server" in table


@pytest.mark.slow
def test_a_study_too_large_to_chart_is_listed_and_in_the_csv(tmp_path):
    g = generate_study(tmp_path / "src", modules=20, names=4, repetitions=3)
    assert g["varying"] > MAX_CHARTS
    s, out = export(tmp_path / "src", tmp_path)
    page = Page((out / "report.html").read_text())
    assert len(page.series) == MAX_CHARTS
    html_text = (out / "report.html").read_text()
    assert f"{g['varying'] - MAX_CHARTS} more results vary" in html_text
    rows = study_rows(out)
    varying = {(r["module"], r["name"]) for r in rows if r["name"] != "fixed"}
    assert len(varying) == g["varying"]
    assert all(int(r["n"]) == 3 for r in rows) and len(rows) == (g["varying"] + 1) * g["combinations"]
    # every listed result is named in the page: charted or listed, none dropped
    charted = {n.split(": ", 1)[1] for n in page.series}
    for module, name in varying:
        assert f"{module} {name}" in charted or f"<li>{name} ({module})</li>" in html_text
    # units on a variable are dropped for the axis and named on it
    first = next(iter(page.series.values()))
    assert first["xlabel"] == "iaMean [s]" and first["lines"][0]["x"] == [1, 2, 3, 4, 5]


# ------------------------------------------------------------------ what cannot be drawn
def test_charts_that_cannot_be_drawn_are_problems_and_the_rest_is_written(tmp_path):
    generate_edge_cases(tmp_path / "src", points=200_000)
    s, out = export(tmp_path / "src", tmp_path)
    by_name = {re.search(r"chart of '([^']+)'", p.message).group(1): p for p in s.problems}
    assert set(by_name) == {"nanEdges:histogram", "infEdges:histogram", "oneValue:histogram", "huge:vector"}
    assert "NaN" in by_name["nanEdges:histogram"].message and "Edge.host[0]" in by_name["nanEdges:histogram"].message
    assert by_name["nanEdges:histogram"].action == "chart drawn without them"
    assert "infinite" in by_name["infEdges:histogram"].message
    assert "one value" in by_name["oneValue:histogram"].message
    assert "could not be drawn" in by_name["huge:vector"].message
    page = Page((out / "report.html").read_text())
    # said where the chart would be; the drawable charts are drawn
    assert set(page.nochart) == {"infEdges:histogram", "oneValue:histogram", "huge:vector"}
    assert "infinite" in page.nochart["infEdges:histogram"]
    assert {"fine:histogram", "nanEdges:histogram", "many:vector", "single:vector"} <= set(page.images)
    assert sorted(p.stem for p in (out / "graphs").glob("*.png")) == \
        ["fine_histogram", "many_vector", "nanEdges_histogram", "single_vector"]
    # the warnings table: one File column, the last says what was done
    assert page.headers["warnings"] == ["File", "Line", "Problem", "Bytes ignored", "What was done"]
    # every CSV still holds every result
    hist = {(r["module"], r["name"]) for r in csv.DictReader(open(out / "csv" / "histograms.csv"))}
    assert {name for _, name in hist} == {"nanEdges:histogram", "infEdges:histogram", "oneValue:histogram",
                                           "neverCollected:histogram", "fine:histogram"}
    vec = {r["name"]: r for r in csv.DictReader(open(out / "csv" / "vectors.csv"))}
    assert vec["many:vector"]["count"] == "200000" and vec["huge:vector"]["count"] == "3"
    assert (out / "csv" / "vectors" / "Edge.host_0__huge_vector.csv").is_file()
    info = (out / "INFO.txt").read_text()
    assert "chart of 'infEdges:histogram'" in info and "chart left out" in info
    assert (out / "report.pdf").stat().st_size > 1000 and s.charts == 7


def test_per_vector_graphs_that_cannot_be_drawn_are_problems(tmp_path):
    generate_edge_cases(tmp_path / "src", points=10)
    s, out = export(tmp_path / "src", tmp_path, graphs="vector")
    graphs = [p for p in s.problems if p.path.startswith("graphs/")]
    assert [p.path for p in graphs] == ["graphs/Edge.host_0__huge_vector.png"]
    assert "csv/vectors/Edge.host_0__huge_vector.csv" in graphs[0].action
    assert sorted(p.name for p in (out / "graphs").glob("*.png")) == \
        ["Edge.host_0__many_vector.png", "Edge.host_0__single_vector.png"]
    assert s.graphs == 2


def _chart(i: int) -> Chart:
    return Chart("histogram", NameInfo(f"h{i}"), 1, "", bars=[Bars("m", np.arange(4.0), np.ones(3))])


def test_a_killed_drawing_process_is_named_not_a_broken_pipe():
    with Painter(workers=1) as painter:
        painter.start()
        os.kill(painter.children[0].proc.pid, signal.SIGKILL)
        painter.children[0].proc.wait()
        with pytest.raises(ResultsError, match="drawing process failed \\(killed by SIGKILL\\)"):
            for i in range(2000):  # until the pipe is full or found broken
                painter.chart(i, _chart(i))
            painter.finish()


def test_a_drawing_process_that_fails_to_start_reports_its_own_error(tmp_path, monkeypatch):
    fake = tmp_path / "shadow" / "PIL"  # what the drawing process draws with
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("Pillow is broken on this worker")\n')
    monkeypatch.setenv("PYTHONPATH", str(fake.parent))
    generate_edge_cases(tmp_path / "src", points=10)
    with pytest.raises(ResultsError, match="Pillow is broken on this worker") as e:
        export(tmp_path / "src", tmp_path)
    assert "BrokenPipe" not in str(e.value)


# --------------------------------------------------------------------------- in Chromium
def test_the_study_chart_is_drawn_and_hovering_a_point_shows_its_mean(tmp_path):
    """report.html of the 42-run set, opened offline: the channel utilization chart is live (a
    canvas, 3 lines in the legend), and the cursor on a point shows that point's mean and interval
    as computed here from the .sca files; nothing is fetched. Screenshot in tests/screenshots/."""
    from browser import SCREENSHOTS, chromium
    runs = []
    for sca in sorted(ALOHA4.glob("*.sca")):
        r = read_sca(sca)
        r["vars"] = {"numHosts": r["attrs"]["numHosts"], "mean": r["attrs"]["mean"]}
        runs.append(r)
    want = expected_points(runs, ("Aloha.server", "channel utilization"), ["numHosts", "mean"])
    s, out = export(ALOHA4, tmp_path)
    html_file = out / "report.html"
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        requests, errors = [], []
        page.route("**/*", lambda r: (requests.append(r.request.url),
                                      r.continue_() if r.request.url == html_file.as_uri() else r.abort()))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(html_file.as_uri())
        fig = page.locator('figure[data-name="PureAlohaExperiment: Aloha.server channel utilization"]')
        fig.locator("canvas").first.wait_for()
        assert "live" in fig.get_attribute("class")
        legend = fig.locator(".u-legend .u-series")
        assert [legend.nth(i).locator(".u-label").inner_text() for i in range(1, 4)] == \
            ["numHosts=10", "numHosts=15", "numHosts=20"]
        fig.scroll_into_view_if_needed()
        over = fig.locator(".u-over")
        box = over.bounding_box()
        # the point of numHosts=15 at mean=4: its place from the chart's own scales
        xs = sorted({float(c[1]) for c in want})
        lo, hi = min(xs), max(xs)
        px = box["x"] + box["width"] * (4 - lo) / (hi - lo)
        page.mouse.move(px - 5, box["y"] + box["height"] / 2)
        page.mouse.move(px, box["y"] + box["height"] / 2)
        n, mean, ci_lo, ci_hi = want[("15", "4")]
        assert legend.nth(0).locator(".u-value").inner_text() == "4"
        shown = legend.nth(2).locator(".u-value").inner_text()
        assert shown == f"{float(f'{mean:.6g}'):g} [{float(f'{ci_lo:.6g}'):g}, {float(f'{ci_hi:.6g}'):g}]"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / "study-aloha-42runs-channel-utilization.png"
        fig.screenshot(path=str(shot))
        page.close()
    assert requests == [html_file.as_uri()] and errors == []
    assert shot.stat().st_size > 10_000


def test_a_variable_that_is_no_number_gives_bars(tmp_path):
    """A study over text values (a protocol name): one bar per combination with its interval."""
    res = tmp_path / "src" / "results"
    res.mkdir(parents=True)
    values = {"aloha": [1.0, 1.2, 0.9], "slotted": [2.0, 2.5]}
    i = 0
    for proto, xs in values.items():
        for rep, x in enumerate(xs):
            (res / f"P-{i}.sca").write_text(
                f"version 3\nrun P-{i}\nattr configname P\nattr repetition {rep}\nattr runnumber {i}\n"
                f'attr iterationvars "$protocol={proto}"\nitervar protocol {proto}\n\n'
                f"scalar Net.mac throughput {x}\n\n")
            i += 1
    s, out = export(tmp_path / "src", tmp_path)
    series = Page((out / "report.html").read_text()).series["P: Net.mac throughput"]
    assert series["categories"] == ["protocol=aloha", "protocol=slotted"]
    (line,) = series["lines"]
    assert line["style"] == "bar" and line["x"] == [0, 1]
    for k, xs in enumerate(values.values()):
        m = sum(xs) / len(xs)
        half = t975(len(xs) - 1) * stat.stdev(xs) / math.sqrt(len(xs))
        assert line["y"][k] == pytest.approx(m, rel=1e-8)
        assert (line["low"][k], line["high"][k]) == (pytest.approx(m - half, rel=1e-8), pytest.approx(m + half, rel=1e-8))
    assert (out / "graphs" / "P_Net.mac_throughput.png").is_file()


def test_a_report_of_many_charts_starts_its_drawing_processes_at_once():
    """The drawing of a large report is spread from its first chart on: one process per
    CHARTS_PER_PAINTER charts expected, up to the limit; a small report pays for one."""
    from omnetpp_results.painter import CHARTS_PER_PAINTER

    with Painter(workers=2) as few, Painter(workers=2) as many:
        few.start(charts=CHARTS_PER_PAINTER - 1)
        many.start(charts=5 * CHARTS_PER_PAINTER)
        assert (len(few.children), len(many.children)) == (1, 2)
        for i in range(4):
            many.chart(i, _chart(i))
        assert sorted(many.finish()) == list(range(4)) and few.finish() == {}


def test_charts_are_drawn_by_several_processes_when_there_are_many():
    """Every core draws: a backlog starts a second drawing process, and every chart comes back."""
    with Painter(workers=2) as painter:
        painter.chart(-1, _chart(-1))
        while not painter.children[0].answered:  # the first one draws (its imports done)
            painter.children[0].reader.join(0.05)
        for i in range(60):
            painter.chart(i, _chart(i))
        pngs = painter.finish()
        assert len(painter.children) == 2 and all(c.answered > 0 for c in painter.children)
    assert sorted(pngs) == list(range(-1, 60)) and all(p.startswith(b"\x89PNG") for p in pngs.values())
