"""The engine on every real result set of ../shared/omnetpp-results-public (OMNeT++ 4.x to 6.x, Linux
and Windows, cut-off and legacy files from public projects), used in place: every vector, scalar
and statistic equals expected/reference.json (an independent reader's), every problem it lists is
reported, and every valid .vci is used (the output lists the rejected ones and why)."""
from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import pytest

from omnetpp_results import parse
from omnetpp_results.store import Parsed

PUBLIC = Path(__file__).resolve().parents[1].parent / "shared" / "omnetpp-results-public"
SETS = sorted(p.name for p in PUBLIC.iterdir() if (p / "expected" / "reference.json").is_file()) \
    if PUBLIC.is_dir() else []


def num(x) -> float:
    return math.nan if x is None else float(x)


def agrees(got, want, scale: float = 0.0) -> bool:
    """Relative tolerance 1e-9, plus 1e-12 of the vector's largest |value| (means near zero);
    NaN equals NaN; None (no value) only equals None."""
    if got is None or want is None:
        return got is None and want is None
    a, b = num(got), num(want)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b)) + 1e-12 * scale


def valid_vci(vci: Path) -> bool:
    """What any reader can see without the engine: the fingerprint names the .vec's size, no NUL
    bytes, complete last line. Such an index must be used; others may be refused."""
    data = vci.read_bytes()
    vec = vci.with_suffix(".vec")
    first = data.split(b"\n", 1)[0].split()
    return (vec.is_file() and len(first) >= 2 and first[0] == b"file"
            and first[1] == str(vec.stat().st_size).encode() and b"\0" not in data and data.endswith(b"\n"))


@pytest.fixture(scope="module")
def index_report(pytestconfig):
    """Which .vci each set's run used or rejected, and why: written to the terminal after the tests."""
    lines = []
    yield lines
    with pytestconfig.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        print("\n.vci files of the public sets:\n" + "\n".join(lines))


@pytest.mark.parametrize("name", SETS)
def test_public_set_equals_reference(name, tmp_path, index_report):
    src = PUBLIC / name
    ref = json.loads((src / "expected" / "reference.json").read_text())
    logged = []
    summary = parse(src, tmp_path / "p", progress=logged.append)
    P = Parsed(tmp_path / "p")

    assert {r.run_id for r in P.runs} == set(ref["runs"])

    # vectors: by (run, file, id)
    got = {(v["run"], Path(v["file"]).name, v["vector_id"]): v for v in P.vectors}
    want = {(v["run"], v["file"], v["id"]): v for v in ref["vectors"]}
    assert set(got) == set(want)
    for k, w in want.items():
        g = got[k]
        assert (g["module"], g["name"], g["columns"], g["count"]) == (w["module"], w["name"], w["columns"], w["count"]), k
        scale = max((abs(num(w[f])) for f in ("min", "max") if w[f] is not None and math.isfinite(num(w[f]))),
                    default=0.0)
        fields = ["mean", "min", "max", "first_time", "last_time"] + (["sum"] if not w["nan_count"] else [])
        for f in fields:
            assert agrees(g[f], w[f], scale), (k, f, g[f], w[f])

    # scalars: by (run, file, module, name), duplicates in file order
    got_s, want_s = defaultdict(list), defaultdict(list)
    for s in P.scalars:
        got_s[(s["run"], s["module"], s["name"])].append(s["value"])
    for s in ref["scalars"]:
        want_s[(s["run"], s["module"], s["name"])].append(s["value"])
    assert set(got_s) == set(want_s)
    for k, w in want_s.items():
        assert len(got_s[k]) == len(w) and all(agrees(a, b) for a, b in zip(got_s[k], w)), (k, got_s[k], w)

    # statistics and histograms
    got_t = {(s["run"], s["module"], s["name"]): s for s in P.statistics}
    assert len(got_t) == len(ref["statistics"])
    for w in ref["statistics"]:
        g = got_t[(w["run"], w["module"], w["name"])]
        fl = g["fields"]
        for f in ("count", "mean", "min", "max"):
            assert agrees(fl.get(f), w[f]), (w["name"], f, fl.get(f), w[f])
        assert agrees(fl.get("sum", fl.get("weightedSum")), w["sum"]), (w["name"], "sum")
        assert len(g["bins"]) == w["bins"], w["name"]
        assert all(agrees(a, b) for (a, _), b in zip(g["bins"], w["bin_edges"])), w["name"]
        assert all(agrees(c, b) for (_, c), b in zip(g["bins"], w["bin_counts"])), w["name"]

    # what the reference reader had to skip, we skip and report too (notes that skip nothing,
    # such as a run without its end-of-run blank line, may come on top)
    skipped = sorted({Path(p["path"]).name for p in summary["problems"] if p["bytes_ignored"]})
    assert skipped == sorted({p.split(":")[0] for p in ref["problems"]})
    assert not any(p["skipped"] for p in summary["problems"])
    for p in summary["problems"]:
        assert set(p.as_dict()) == {"path", "line", "message", "bytes_ignored", "skipped", "action"}
        assert any(p["message"] in line for line in logged)  # told through progress too
    cut = {Path(f["file"]).name for f in ref["files"] if f["cut_last_line"]}
    for p in summary["problems"]:
        if Path(p["path"]).name in cut:
            assert p["bytes_ignored"] > 0

    # every valid .vci is used; the others are refused with a reason
    for f in summary["files"]:
        vci = Path(f["path"]).with_suffix(".vci")
        if f["format"] != "text" or not f["path"].endswith(".vec") or not vci.is_file():
            continue
        index_report.append(f"  {name}/{vci.name}: {f['index']}")
        if valid_vci(vci):
            assert f["index"] == "used", (vci, f["index"])
        else:
            assert f["index"].startswith("ignored: ") and len(f["index"]) > len("ignored: ")


@pytest.mark.slow
@pytest.mark.parametrize("graphs", ["statistic", "vector"])
@pytest.mark.parametrize("name", SETS)
def test_public_set_exports(name, graphs, tmp_path):
    """Every real set gives a whole archive: every result in csv/, a report, and a PNG for every
    chart (or per vector) except those the report names as Problems."""
    from omnetpp_results import stats
    parse(PUBLIC / name, tmp_path / "p")
    s = stats(tmp_path / "p", tmp_path / "out", graphs=graphs)
    out = tmp_path / "out"
    for f in ("report.html", "report.pdf", "INFO.txt", "csv/runs.csv", "csv/scalars.csv", "csv/vectors.csv"):
        assert (out / f).is_file(), f
    undrawn = [p for p in s.problems if p.action]
    pngs = list((out / "graphs").glob("*.png")) if (out / "graphs").is_dir() else []
    assert len(pngs) == s.graphs
    if graphs == "vector":
        assert s.graphs + len([p for p in undrawn if p.path.startswith("graphs/")]) == s.resampled
    else:
        assert s.graphs == s.charts - len([p for p in undrawn if p.action == "chart left out"])
