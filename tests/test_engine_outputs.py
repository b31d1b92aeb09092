"""Resampling against its definition (hypothesis), simrun figures, graphs, INFO.txt, archive,
generator round trip, ops preset."""
from __future__ import annotations

import csv
import hashlib
import json
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnetpp_results import ResultsError, find_inputs, parse, stats, verify_archive, write_archive
from omnetpp_results.generate import generate
from omnetpp_results.resample import resample, resample_direct
from omnetpp_results.selection import Selection, load_ops
from omnetpp_results.simrun import read_log

# ------------------------------------------------------------------ resampling


@st.composite
def series(draw):
    n = draw(st.integers(1, 60))
    steps = draw(st.lists(st.sampled_from([0.0, 0.001, 0.25, 0.5, 1.0, 3.0, 7.3]), min_size=n, max_size=n))
    start = draw(st.sampled_from([0.0, 0.1, 1.0, 2.5, 10.0]))
    times = list(np.cumsum([start] + steps[1:]))
    values = draw(st.lists(st.floats(allow_nan=False, width=64, min_value=-1e6, max_value=1e6), min_size=n, max_size=n))
    precision = draw(st.sampled_from([0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 100.0]))
    cut = draw(st.lists(st.integers(1, n), max_size=4))
    return times, values, precision, sorted(set(cut))


@settings(max_examples=300, deadline=None)
@given(series())
def test_resample_equals_definition(case):
    times, values, p, cuts = case
    t, v = np.array(times), np.array(values)
    bounds = [0, *[c for c in cuts if c < len(t)], len(t)]
    pieces = [(t[a:b], v[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    got = []
    for g, vals, has in resample(pieces, p, float(t[-1])):
        got += [(float(a), float(b) if h else None) for a, b, h in zip(g, vals, has)]
    want = resample_direct(times, values, p, times[-1])
    assert [g for g, _ in got] == [g for g, _ in want]
    assert [x for _, x in got] == [x for _, x in want]
    # grid: starts at one step, ends at the first grid point at or after the last sample
    assert got[0][0] == p and got[-1][0] >= times[-1] and (len(got) == 1 or got[-2][0] < times[-1])


def test_resample_examples():
    out = list(resample([(np.array([0.0, 150.0, 150.0, 420.0]), np.array([1.0, 2.0, 3.0, 4.0]))], 100.0, 420.0))
    g = np.concatenate([o[0] for o in out]).tolist()
    v = np.concatenate([o[1] for o in out]).tolist()
    assert g == [100.0, 200.0, 300.0, 400.0, 500.0]
    assert v == [1.0, 3.0, 3.0, 3.0, 4.0]
    out = list(resample([(np.array([250.0]), np.array([7.0]))], 100.0, 250.0))
    has = np.concatenate([o[2] for o in out]).tolist()
    assert has == [False, False, True]

# ------------------------------------------------------------------ simrun


def test_simrun_from_real_logs(shared_results):
    r = read_log(shared_results / "routing-Net60StoreAndForward-all-LOG-ONLY" / "run0.stdout.log")[0]
    assert r["events"] == 26030064 and r["sim_time"] == 52 and r["elapsed"] == 40.7539
    assert r["ev_per_sec"] == 924437 and r["simsec_per_sec"] == 1.8526 and r["ev_per_simsec"] == 498995
    assert r["messages_created"] == 988033 and r["status_blocks"] == 40
    assert r["config"] == "Net60StoreAndForward" and r["end"].startswith("Simulation time limit reached")
    r = read_log(shared_results / "aloha-PureAloha1" / "run0.stdout.log")[0]
    assert (r["events"], r["sim_time"], r["elapsed"], r["messages_created"]) == (38516, 1200, 0.014663, 11353)


def test_log_without_status_blocks(shared_results, tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    for f in (shared_results / "routing-Net10" / "results").iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    (d / "cmdenv.out").write_text("OMNeT++ Discrete Event Simulation  (C) 1992-2024\n"
                                  "Preparing for running configuration Net10, run #0...\n"
                                  "<!> Error: something broke\n")
    parse(d, tmp_path / "p")
    s = stats(tmp_path / "p", tmp_path / "o", graphs=False)
    assert s["simrun"]["events"] is None
    rows = list(csv.DictReader(open(tmp_path / "o" / "simrun" / "simrun-stats.csv")))
    assert rows[0]["events"] == "not in log" and rows[0]["ev_per_sec"] == "not in log"
    assert float(rows[0]["postprocessing_seconds"]) > 0 and float(rows[0]["peak_memory_mb"]) > 10
    assert "figures not in log" in (tmp_path / "o" / "INFO.txt").read_text()

# ------------------------------------------------------------------ full export, graphs, archive


@pytest.mark.parametrize("graphs", ["statistic", "vector", "none"])
def test_export_with_graphs_and_archive(shared_results, tmp_path, graphs):
    src = shared_results / "routing-Net10"
    parse(src, tmp_path / "p")
    s = stats(tmp_path / "p", tmp_path / "o", precision=50, graphs=graphs)
    assert s.empty_vectors == 7 and s.simrun.events == 58411 and s.graphs_mode == graphs
    out = tmp_path / "o"
    vectors = list(csv.DictReader(open(out / "csv" / "vectors.csv")))
    hist_names = {r["name"] for r in csv.DictReader(open(out / "csv" / "statistics.csv"))
                  if r["name"].endswith(":histogram") and r["count"] not in ("0", "")}
    pngs = sorted(p.name for p in (out / "graphs").glob("*.png"))
    want = {"statistic": sorted(f"{n.replace(':', '_')}.png" for n in {"endToEndDelay:vector"} | hist_names),
            "vector": sorted(Path(r["file"]).stem + ".png" for r in vectors if r["count"] != "0"),
            "none": []}[graphs]
    assert pngs == want and s.graphs == len(want) and s.charts == 1 + len(hist_names)
    assert not list((out / "graphs").glob("*.pdf")) and (graphs != "none" or not (out / "graphs").exists())
    assert all((out / "graphs" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    # resampled file: grid 50, 100, ... 600, value held = last sample at or before
    vrow = next(r for r in vectors if r["count"] != "0")
    rows = list(csv.DictReader(open(out / "csv" / vrow["file"])))
    assert [float(r["time"]) for r in rows] == [50.0 * k for k in range(1, 13)]
    info = (out / "INFO.txt").read_text()
    assert "Net10-0-20261121-21:52:12-21746" in info and "Precision      : 50 s" in info
    assert f"Graphs         : {graphs}" in info
    assert (out / "omnetpp.ini").read_bytes() == (src / "omnetpp.ini").read_bytes()
    a = write_archive(out, tmp_path / "results.zip")
    assert a.sha256 == hashlib.sha256((tmp_path / "results.zip").read_bytes()).hexdigest()
    assert json.loads(json.dumps(a.as_dict())) == a.as_dict() and type(a).from_dict(a.as_dict()) == a
    with zipfile.ZipFile(tmp_path / "results.zip") as z:
        names = z.namelist()
        assert a.files == len(names)
        manifest = z.read("MANIFEST.sha256").decode().splitlines()
        assert len(manifest) == len(names) - 1
        for line in manifest:
            digest, name = line.split("  ", 1)
            assert hashlib.sha256(z.read(name)).hexdigest() == digest
        if pngs:
            assert z.getinfo(f"graphs/{pngs[0]}").compress_type == zipfile.ZIP_STORED
        assert z.getinfo("csv/scalars.csv").compress_type == zipfile.ZIP_DEFLATED
    for part in ("INFO.txt", "omnetpp.ini", "csv/scalars.csv", "csv/statistics.csv", "csv/vectors.csv",
                 "csv/vectors-resampled.csv", "simrun/simrun-stats.csv", "report.html", "report.pdf",
                 "MANIFEST.sha256"):
        assert part in names


def test_long_format_holds_every_resampled_file(shared_results, tmp_path):
    """csv/vectors-resampled.csv is the per-vector files stacked, with run, module and name."""
    parse(shared_results / "routing-Net5SaturatedQueue", tmp_path / "p")
    stats(tmp_path / "p", tmp_path / "o", precision=7, graphs="none")
    out = tmp_path / "o" / "csv"
    longrows = list(csv.DictReader(open(out / "vectors-resampled.csv")))
    assert list(longrows[0]) == ["run", "module", "name", "time", "value"]
    stacked = sorted((r["run"], r["module"], r["name"], r["time"], r["value"])
                     for v in csv.DictReader(open(out / "vectors.csv")) if v["file"]
                     for r in (dict(row, run=v["run"], module=v["module"], name=v["name"])
                               for row in csv.DictReader(open(out / v["file"]))))
    assert len(stacked) > 1000
    assert sorted((r["run"], r["module"], r["name"], r["time"], r["value"]) for r in longrows) == stacked
    assert {r["name"] for r in longrows} == {v["name"] for v in csv.DictReader(open(out / "vectors.csv"))
                                             if v["file"]}


def test_patterns_select_everywhere(shared_results, tmp_path):
    parse(shared_results / "routing-Net5SaturatedQueue", tmp_path / "p", statistics=["qlen:*", "busy"])
    s = stats(tmp_path / "p", tmp_path / "o", statistics=["qlen:*", "busy"], graphs=False)
    names = {r["name"] for r in csv.DictReader(open(tmp_path / "o" / "csv" / "vectors.csv"))}
    assert names == {"qlen:vector", "busy:vector"}
    names = {r["name"] for r in csv.DictReader(open(tmp_path / "o" / "csv" / "scalars.csv"))}
    assert names and all(n.startswith(("qlen:", "busy:")) for n in names)
    assert s["vectors"] == len(list(csv.DictReader(open(tmp_path / "o" / "csv" / "vectors.csv"))))


def test_ops_preset(tmp_path):
    ops = load_ops()
    assert len(ops) == 51 and {o.layer for o in ops} == {"application", "forwarding", "link"}
    names = {o.variable for o in ops}
    assert {"appTotalDataBytesReceived", "fwdTotalBytesSent", "linkContactCount"} <= names
    sel = Selection("ops")

    class R:
        attrs = {"network": "OPSNetwork"}

    class Other:
        attrs = {"network": "Net10"}
    assert sel(R, "OPSNetwork", "appTotalDataBytesReceived:last")
    assert sel(R, "OPSNetwork", "linkSimpleNeighbourSize:mean")
    assert sel(R, "OPSNetwork", "fwdTotalBytesSent:vector")
    assert not sel(R, "OPSNetwork.host[0]", "appTotalDataBytesReceived:last")
    assert not sel(Other, "Net10", "appTotalDataBytesReceived:last")
    custom = tmp_path / "ops.csv"
    custom.write_text("name,layer,unit,type,field,variable,networks\nQ,link,,int,last,qlen,Net60\n")
    import os
    os.environ["OMNETPP_RESULTS_OPS_STATISTICS"] = str(custom)
    try:
        assert len(load_ops()) == 1
    finally:
        del os.environ["OMNETPP_RESULTS_OPS_STATISTICS"]


def test_generator_round_trip(tmp_path):
    info = generate(tmp_path / "gen", vectors=40, target_bytes=400_000, seed=3)
    assert info["vectors"] == 40 and info["empty_vectors"] > 0
    inp = find_inputs(tmp_path / "gen")
    assert len(inp.vec) == 1 and len(inp.vci) == 1 and len(inp.logs) == 1
    s1 = parse(tmp_path / "gen", tmp_path / "p1")
    assert s1["files"][0]["index"] == "used"
    assert s1["samples"] == info["lines"]
    inp.vci[0].unlink()
    s2 = parse(tmp_path / "gen", tmp_path / "p2")
    assert s2["files"][0]["index"] == "none" and s2["samples"] == info["lines"]
    a = json.loads((tmp_path / "p1" / "parsed.json").read_text())["vectors"]
    b = json.loads((tmp_path / "p2" / "parsed.json").read_text())["vectors"]
    for x, y in zip(a, b):
        assert x["count"] == y["count"] and x["min"] == y["min"] and x["max"] == y["max"]
    st_ = stats(tmp_path / "p1", tmp_path / "o", precision=0.1, graphs=False)
    assert st_["simrun"]["events"] > 0 and st_["histogram_bins"] == 22


def test_native_and_numpy_parsers_agree(shared_results):
    from omnetpp_results import fastparse
    data = (shared_results / "routing-Net60CutThrough" / "results" / "Net60CutThrough-#0.vec").read_bytes()
    start = data.index(b"\n0\t") + 1 if b"\n0\t" in data else None
    lines = [l for l in data.split(b"\n") if l[:1].isdigit()]
    buf = b"\n".join(lines[:20000]) + b"\n"
    buf += b"5\t7\t1.5\tnan\n5\t8\t1.5\t-inf\n5\t9\t2\t1.2345678901234e-300\n5\t10\t2\t123456789012345678901\n"
    a = fastparse._parse_numpy(buf)
    fn = fastparse._load_native()
    if fn is None:
        pytest.skip("no C compiler: numpy back end only")
    b = fastparse.parse_lines(buf)  # ids, field counts, the other fields
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[2].shape == b[2].shape == (3, a[0].size)
    assert np.array_equal(a[2], b[2], equal_nan=True)


def test_verify_archive_accepts_ours_and_catches_tampering(tmp_path):
    content = tmp_path / "content"
    (content / "csv").mkdir(parents=True)
    (content / "INFO.txt").write_text("about this archive\n")
    (content / "csv" / "scalars.csv").write_text("run,module,name,value\nr,m,n,1\n")
    good = write_archive(content, tmp_path / "good.zip")
    assert verify_archive(good["path"]) == 2

    def rewritten(name, replace=None, extra=None):
        """A copy of the good archive with one member's bytes changed, or one member added."""
        bad = tmp_path / name
        with zipfile.ZipFile(good["path"]) as src, zipfile.ZipFile(bad, "w") as dst:
            for member in src.namelist():
                data = src.read(member)
                dst.writestr(member, replace[1] if replace and member == replace[0] else data)
            if extra:
                dst.writestr(extra, b"not in the manifest")
        return bad

    with pytest.raises(ResultsError, match="csv/scalars.csv does not match MANIFEST.sha256"):
        verify_archive(rewritten("changed.zip", replace=("csv/scalars.csv", b"run,module,name,value\nr,m,n,2\n")))
    with pytest.raises(ResultsError, match=r"unlisted \['smuggled.txt'\]"):
        verify_archive(rewritten("extra.zip", extra="smuggled.txt"))


def test_large_member_deflated_by_threads_at_level_1(tmp_path):
    """A member of 8 MB and more is deflated in pieces by threads: one valid deflate stream that
    zipfile reads back exactly, at level 1 (about as small as one level-1 compressor
    makes it, and bigger than level 6 would)."""
    rng = np.random.default_rng(4)
    lines = [f"r-{i % 3},Net.h[{i % 977}].app,name{i % 13}:sum,{v:.10g}\n" for i, v in
             enumerate(rng.random(300_000) * 1e6)]
    data = "".join(lines).encode()
    assert len(data) > 8 << 20
    content = tmp_path / "c"
    (content / "csv").mkdir(parents=True)
    (content / "csv" / "scalars.csv").write_bytes(data)
    a = write_archive(content, tmp_path / "r.zip")
    assert verify_archive(a["path"]) == 1
    with zipfile.ZipFile(a["path"]) as zf:
        assert zf.read("csv/scalars.csv") == data
        size = zf.getinfo("csv/scalars.csv").compress_size
    one = len(zlib.compress(data, 1))
    assert one * 0.98 < size < one * 1.02 and size > len(zlib.compress(data, 6)) * 1.05
