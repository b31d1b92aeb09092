"""Every kind of file OMNeT++ writes reads right (CRLF, BOM, Windows NaN spellings, no version line,
all-NaN vectors, appended runs), on both parser back ends; a damaged file gives what can be trusted
and says so (a Problem naming file, line and bytes ignored); a corrupt one is a clear ResultsError
(file, line) / CLI exit code 2 when nothing else could be read, never a traceback or a silent
partial result; and the folder scan finds what it should."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from omnetpp_results import ResultsError, find_inputs, parse, stats
from omnetpp_results.store import Parsed

REPO = Path(__file__).resolve().parents[1]


def small_run(shared_results, tmp_path, with_vci=False) -> Path:
    """A private copy of routing-Net10's .vec (+ .sca) to damage."""
    src = shared_results / "routing-Net10" / "results"
    dst = tmp_path / "run"
    dst.mkdir()
    for name in ["Net10-#0.vec", "Net10-#0.sca"] + (["Net10-#0.vci"] if with_vci else []):
        shutil.copyfile(src / name, dst / name)
    return dst


def cli(*args):
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "omnetpp_results", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_find_inputs_recognises_logs_by_content(shared_results):
    inp = find_inputs(shared_results / "aloha-PureAlohaExperiment")
    assert len(inp.vec) == 4 and len(inp.vci) == 4 and len(inp.sca) == 4
    assert [p.name for p in inp.ini] == ["omnetpp.ini"]
    assert sorted(p.name for p in inp.logs) == ["run0.stdout.log", "run1.stdout.log",
                                                "run4.stdout.log", "run5.stdout.log"]
    # expected/scavetool-export.log is not a Cmdenv log; the .cmd/.time files neither
    inp = find_inputs(shared_results / "aloha-PureAloha1")
    assert [p.name for p in inp.logs] == ["run0.stdout.log"]


def test_empty_folder(tmp_path):
    with pytest.raises(ResultsError, match="no OMNeT.. result files"):
        find_inputs(tmp_path)
    r = cli("export", str(tmp_path), str(tmp_path / "out"))
    assert r.returncode == 2
    assert "no OMNeT++ result files" in r.stderr and "Traceback" not in r.stderr


def test_log_only_folder(shared_results, tmp_path):
    with pytest.raises(ResultsError):
        parse(shared_results / "routing-Net60StoreAndForward-all-LOG-ONLY", tmp_path / "p")


def complete_data_lines(data: bytes) -> int:
    """Data lines of a .vec that end with a line end (what a reader can trust)."""
    return sum(1 for line in data.split(b"\n")[:-1] if line[:1].isdigit())


def only(d: Path, *keep: str) -> Path:
    for p in d.iterdir():
        if p.name not in keep:
            p.unlink()
    return d


@pytest.mark.parametrize("with_vci", [False, True])
def test_vec_cut_mid_line_keeps_what_is_complete(shared_results, tmp_path, with_vci):
    """A simulation killed while writing: the incomplete last line is dropped, everything before it
    and the .sca beside it are exported, and the problem names the file, line and bytes ignored."""
    d = small_run(shared_results, tmp_path, with_vci)
    vec = d / "Net10-#0.vec"
    data = vec.read_bytes()[:150_000]  # cut inside a data line
    vec.write_bytes(data)
    told = []
    s = parse(d, tmp_path / "p", progress=told.append)
    partial = len(data) - data.rindex(b"\n") - 1
    assert [p.as_dict() for p in s["problems"]] == [{"path": str(vec), "line": data.count(b"\n") + 1,
                              "message": s["problems"][0]["message"], "bytes_ignored": partial, "skipped": False,
                              "action": ""}]
    assert "ends in the middle of a line" in s["problems"][0]["message"]
    assert any("Net10-#0.vec" in t and f"{partial} bytes ignored" in t for t in told)
    assert s["samples"] == complete_data_lines(data) and s["scalars"] == 384
    if with_vci:  # the index describes the whole file: not used, and the summary says why
        assert [f["index"] for f in s["files"] if f["path"] == str(vec)][0].startswith("ignored: fingerprint size")
    r = cli("export", str(d), str(tmp_path / "out"), "--graphs", "none")
    assert r.returncode == 0 and "Net10-#0.vec" in r.stderr and "Traceback" not in r.stderr
    assert json.loads(r.stdout)["parse"]["problems"][0]["bytes_ignored"] == partial


def test_vec_cut_at_line_end(shared_results, tmp_path):
    """A version 3 file without its end-of-run blank line: every line is kept, the run is reported
    as not finished (nothing ignored)."""
    d = only(small_run(shared_results, tmp_path), "Net10-#0.vec")
    vec = d / "Net10-#0.vec"
    data = vec.read_bytes()
    cut = data.rindex(b"\n", 0, 150_000) + 1
    vec.write_bytes(data[:cut])
    s = parse(d, tmp_path / "p")
    assert len(s["problems"]) == 1 and "end-of-run blank line" in s["problems"][0]["message"]
    assert s["problems"][0]["bytes_ignored"] == 0 and not s["problems"][0]["skipped"]
    assert s["samples"] == complete_data_lines(data[:cut])


def test_cut_before_the_first_line_end(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "x.vec").write_bytes(b"version 3\nrun r")
    (d / "x.sca").write_bytes(b"versi")
    with pytest.raises(ResultsError, match="cut off before it"):
        parse(d, tmp_path / "p")


def test_corrupt_vec_other_files_still_exported(shared_results, tmp_path):
    """A .vec corrupt in the middle is skipped as a whole (nothing of it kept) with a problem that skips it
    naming file and line; the .sca beside it is exported. Alone, it is a clear error."""
    d = small_run(shared_results, tmp_path)
    vec = d / "Net10-#0.vec"
    lines = vec.read_bytes().split(b"\n")
    i = next(k for k, l in enumerate(lines) if l[:1].isdigit()) + 10
    lines[i] = b"77\t5\t1.5\t3"
    vec.write_bytes(b"\n".join(lines))
    s = parse(d, tmp_path / "p")
    assert [p.as_dict() for p in s["problems"]] == [{"path": str(vec), "line": i + 1, "message": "data line for undeclared vector id 77",
                              "bytes_ignored": vec.stat().st_size, "skipped": True, "action": ""}]
    assert s["vectors"] == 0 and s["samples"] == 0 and s["scalars"] == 384
    assert [f["path"] for f in s["files"]] == [str(d / "Net10-#0.sca")]
    stats(tmp_path / "p", tmp_path / "o", graphs=False)
    assert (tmp_path / "o" / "csv" / "vectors.csv").read_text().count("\n") == 1  # header only
    only(d, "Net10-#0.vec")
    with pytest.raises(ResultsError, match="undeclared vector id 77") as ei:
        parse(d, tmp_path / "q")
    assert ei.value.line == i + 1 and ei.value.path.endswith("Net10-#0.vec")
    r = cli("export", str(d), str(tmp_path / "out"))
    assert r.returncode == 2 and f"Net10-#0.vec:{i + 1}:" in r.stderr


@pytest.mark.parametrize("where", ["data", "header"])
def test_garbage_bytes(shared_results, tmp_path, where):
    d = only(small_run(shared_results, tmp_path), "Net10-#0.vec")
    vec = d / "Net10-#0.vec"
    data = bytearray(vec.read_bytes())
    pos = 100_000 if where == "data" else 300
    data[pos:pos + 40] = bytes(range(200, 240))
    vec.write_bytes(bytes(data))
    with pytest.raises(ResultsError) as ei:
        parse(d, tmp_path / "p")
    assert ei.value.line is not None and "Net10-#0.vec" in str(ei.value)
    expected_line = bytes(data[:pos]).count(b"\n") + 1
    assert ei.value.line == expected_line


def test_garbage_inside_a_number(shared_results, tmp_path):
    d = only(small_run(shared_results, tmp_path), "Net10-#0.vec")
    vec = d / "Net10-#0.vec"
    lines = vec.read_bytes().split(b"\n")
    i = next(k for k, l in enumerate(lines) if l[:1].isdigit()) + 500
    lines[i] = lines[i][:-3] + b"x7z"
    vec.write_bytes(b"\n".join(lines))
    with pytest.raises(ResultsError, match="not a number") as ei:
        parse(d, tmp_path / "p")
    assert ei.value.line == i + 1


def test_sca_cut_and_corrupt(shared_results, tmp_path):
    """A .sca cut mid-line keeps every complete line (a histogram whose last bins are missing too,
    said so); one corrupt in the middle is a clear error naming the line."""
    d = only(small_run(shared_results, tmp_path), "Net10-#0.sca")
    sca = d / "Net10-#0.sca"
    data = sca.read_bytes()
    cut = data.index(b"\nbin\t", 70_000) + 30  # inside a histogram's bins, mid-line
    sca.write_bytes(data[:cut])
    s = parse(d, tmp_path / "p")
    kept = data[:cut]
    assert s["scalars"] == kept.count(b"\nscalar ") and s["statistics"] == kept.count(b"\nstatistic ")
    assert [p["bytes_ignored"] for p in s["problems"]] == [len(kept) - kept.rindex(b"\n") - 1, 0]
    assert "middle of a line" in s["problems"][0]["message"]
    assert "its last bins are missing" in s["problems"][1]["message"]
    assert s["problems"][1]["line"] == kept[:kept.rindex(b"\nstatistic ")].count(b"\n") + 2
    P = Parsed(tmp_path / "p")
    assert sum(len(st["bins"]) for st in P.statistics) == kept[:kept.rindex(b"\n")].count(b"\nbin\t")
    sca.write_bytes(data.replace(b"\nscalar ", b"\nscalra ", 1))
    with pytest.raises(ResultsError, match="unexpected line") as ei:
        parse(d, tmp_path / "p")
    assert ei.value.line == data[:data.index(b"\nscalar ")].count(b"\n") + 2
    last = data.rindex(b"\nscalar ")  # after hundreds of scalars and attr lines read in bulk
    sca.write_bytes(data[:last] + b"\nscalar Net10.x y 1x2" + data[data.index(b"\n", last + 1):])
    with pytest.raises(ResultsError, match="not a number") as ei:
        parse(d, tmp_path / "p")
    assert ei.value.line == data[:last].count(b"\n") + 2


def test_corrupt_sqlite(shared_results, tmp_path):
    src = shared_results / "aloha-PureAloha2-sqlite" / "results" / "PureAloha2-sqlite-#0.vec"
    d = tmp_path / "run"
    d.mkdir()
    data = src.read_bytes()
    (d / "x.vec").write_bytes(data[:5000] + b"\xff" * 20000)
    with pytest.raises(ResultsError, match="SQLite") as ei:
        parse(d, tmp_path / "p")
    assert "x.vec" in str(ei.value)


def test_sqlite_values_of_the_wrong_type(shared_results, tmp_path):
    """A SQLite result file whose columns hold what OMNeT++ never writes: a clear error, no traceback."""
    import sqlite3
    src = shared_results / "aloha-PureAloha2-sqlite" / "results" / "PureAloha2-sqlite-#0.vec"
    d = tmp_path / "run"
    d.mkdir()
    for sql in ("update vectorData set value='abc' where rowid=5",
                "update vectorData set value=1, simtimeRaw='x' where rowid=5",
                "update vector set moduleName=cast(x'ff41' as text) where rowid=1",
                "update runAttr set attrValue=cast(x'c328' as text) where rowid=1"):
        shutil.copyfile(src, d / "x.vec")
        con = sqlite3.connect(d / "x.vec")
        con.execute(sql)
        con.commit()
        con.close()
        with pytest.raises(ResultsError, match="values OMNeT.. does not write|corrupt SQLite") as ei:
            parse(d, tmp_path / "p")
        assert "x.vec" in str(ei.value)


def test_unknown_preset_and_bad_precision(shared_results, tmp_path):
    with pytest.raises(ResultsError, match="unknown statistic preset"):
        parse(shared_results / "routing-Net10", tmp_path / "p", statistics="opps")
    r = cli("export", str(shared_results / "routing-Net10"), str(tmp_path / "o"), "--statistics", "opps")
    assert r.returncode == 2 and "unknown statistic preset 'opps'" in r.stderr
    parse(shared_results / "routing-Net10", tmp_path / "p")
    with pytest.raises(ResultsError, match="precision"):
        stats(tmp_path / "p", tmp_path / "o", precision=0)


def test_runconfig(shared_results, tmp_path):
    s = parse(shared_results / "aloha-PureAlohaExperiment", tmp_path / "p", runconfig="PureAlohaExperiment")
    assert len(s["runs"]) == 4
    with pytest.raises(ResultsError, match="configs found: PureAlohaExperiment"):
        parse(shared_results / "aloha-PureAlohaExperiment", tmp_path / "q", runconfig="Nope")


def test_declaration_after_data_and_tv_columns(tmp_path):
    """Legal but unusual: TV vectors, a declaration after data lines, quoted names, nan/inf."""
    d = tmp_path / "run"
    d.mkdir()
    (d / "x.vec").write_text(
        "version 3\nrun r1\nattr configname C\nattr network N\n\n"
        "vector 0 N.a \"my vector:vector\" TV\nattr unit s\n"
        "0\t0.5\t1\n0\t1\tnan\n"
        "vector 1 N.b v2:vector ETV\n"
        "1\t3\t1.25\t-inf\n0\t2\t-nan\n1\t4\t1.5\t1e-300\n\n")
    parse(d, tmp_path / "p")
    from omnetpp_results.store import Parsed
    P = Parsed(tmp_path / "p")
    byname = {v["name"]: v for v in P.vectors}
    t, v = P.series(byname["my vector:vector"]["key"])
    assert t.tolist() == [0.5, 1.0, 2.0] and v[0] == 1 and all(x != x for x in v[1:])
    t, v = P.series(byname["v2:vector"]["key"])
    assert t.tolist() == [1.25, 1.5] and v.tolist() == [float("-inf"), 1e-300]
    assert byname["my vector:vector"]["attrs"] == {"unit": "s"}


# ---------------------------------------------------------------- kinds of files OMNeT++ writes
HEAD2 = "run r1-0-20130107-19:44:01-2780\nattr configname C\nattr network N\n\n"
CHILD = r"""
import json, sys
import numpy as np
from omnetpp_results import ResultsError, parse
from omnetpp_results.store import Parsed
try:
    s = parse(sys.argv[1], sys.argv[2])
except ResultsError as e:
    print(json.dumps({"error": e.message, "line": e.line, "path": e.path}))
    sys.exit(0)
P = Parsed(sys.argv[2])
out = {"backend": s["files"] and __import__("omnetpp_results.fastparse", fromlist=["x"]).backend(),
       "vectors": {}, "scalars": [[x["name"], x["value"]] for x in P.scalars],
       "index": [f["index"] for f in s["files"]], "problems": [p.as_dict() for p in s["problems"]]}
for v in P.vectors:
    t, x = P.series(v["key"])
    out["vectors"][f"{v['vector_id']} {v['name']}"] = [t.tobytes().hex(), x.tobytes().hex(),
                                                        [repr(v[k]) for k in ("count", "mean", "min", "max")]]
print(json.dumps(out))
"""


def export_both(d: Path, tmp_path: Path) -> dict:
    """parse() with the C back end and with the numpy one (fresh processes): the same bits, or the
    same error."""
    got = {}
    for native in ("1", "0"):
        env = dict(os.environ, OMNETPP_RESULTS_NATIVE=native)
        r = subprocess.run([sys.executable, "-c", CHILD, str(d), str(tmp_path / f"p{native}")],
                           capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        got[native] = json.loads(r.stdout)
    if "backend" in got["1"]:
        assert (got["1"].pop("backend"), got["0"].pop("backend")) == ("native", "numpy")
    assert got["1"] == got["0"]
    return got["1"]


def values(hexed: str) -> list:
    return np.frombuffer(bytes.fromhex(hexed), dtype=np.float64).tolist()


def folder(tmp_path: Path, **files) -> Path:
    d = tmp_path / "run"
    d.mkdir(exist_ok=True)
    for name, content in files.items():
        (d / name.replace("_", ".")).write_bytes(content.encode() if isinstance(content, str) else content)
    return d


def test_windows_nan_and_infinity_spellings(tmp_path):
    """The Windows C runtime's spellings (OMNeT++ 4 on Windows), on both parser back ends."""
    d = folder(tmp_path, x_vec="version 2\n" + HEAD2 + "vector 0 N.a v:vector ETV\nvector 1 N.b w:vector TV\n"
               "0\t1\t0\t1.#INF\n0\t2\t1\t-1.#INF\n0\t3\t2\t1.#IND\n0\t4\t3\t-1.#IND00\n"
               "1\t4\t1.#QNAN\n1\t5\t-1.#QNAN0\n1\t6\t1.#INF00\n1\t7\t-1.#SNAN\n1\t8\t5\n",
               x_sca="version 2\n" + HEAD2 + "scalar N.a s1 1.#INF\nscalar N.a s2 -1.#IND\nscalar N.a s3 1.#QNAN\n"
               "statistic N.a st\nfield count 0\nfield mean -1.#IND\nfield min 1.#INF\nfield max -1.#INF\n")
    got = export_both(d, tmp_path)
    t, v, _ = got["vectors"]["0 v:vector"]
    assert values(t) == [0, 1, 2, 3] and values(v)[:2] == [math.inf, -math.inf]
    assert all(math.isnan(x) for x in values(v)[2:])
    _, v, _ = got["vectors"]["1 w:vector"]
    assert [math.isnan(x) for x in values(v)] == [True, True, False, True, False] and values(v)[2] == math.inf
    assert got["scalars"] == [["s1", "inf"], ["s2", "-nan"], ["s3", "nan"]]
    parse(d, tmp_path / "p")
    stats(tmp_path / "p", tmp_path / "o", graphs=False)
    assert "N.a,st,0,-nan,,inf,-inf" in (tmp_path / "o" / "csv" / "statistics.csv").read_text()


@pytest.mark.parametrize("run", ["routing-Net5SaturatedQueue", "aloha-PureAlohaExperiment"])
def test_index_on_both_back_ends(shared_results, run, tmp_path):
    """The .vci path (block lines, data blocks) gives the same bits with the C and the numpy back end."""
    got = export_both(shared_results / run, tmp_path)
    assert set(got["index"]) == {"used", None} and got["problems"] == [] and got["vectors"]


def test_crlf_text_files_read_as_lf(shared_results, tmp_path):
    """CRLF line ends everywhere (.vec, .sca, Cmdenv log, ini): the same results as LF, and a
    version 3 file ending in CRLF's blank line is not "truncated"."""
    lf = small_run(shared_results, tmp_path)
    shutil.copyfile(shared_results / "routing-Net10" / "run0.stdout.log", lf / "run0.stdout.log")
    shutil.copyfile(shared_results / "routing-Net10" / "omnetpp.ini", lf / "omnetpp.ini")
    crlf = tmp_path / "crlf"
    crlf.mkdir()
    for p in lf.iterdir():
        (crlf / p.name).write_bytes(p.read_bytes().replace(b"\n", b"\r\n"))
    export_both(crlf, tmp_path)  # the numpy back end reads CRLF data lines as the C one does
    a, b = parse(lf, tmp_path / "pa"), parse(crlf, tmp_path / "pb")
    assert b["problems"] == [] and b["samples"] == a["samples"] > 0 and b["scalars"] == a["scalars"]
    sa, sb = stats(tmp_path / "pa", tmp_path / "oa", graphs=False), stats(tmp_path / "pb", tmp_path / "ob", graphs=False)
    assert sb["simrun"]["events"] == sa["simrun"]["events"] > 0
    for name in ("scalars.csv", "statistics.csv", "histograms.csv", "vectors.csv"):
        assert (tmp_path / "oa" / "csv" / name).read_text() == \
            (tmp_path / "ob" / "csv" / name).read_text().replace("crlf", "run"), name
    assert (tmp_path / "ob" / "omnetpp.ini").read_bytes() == (crlf / "omnetpp.ini").read_bytes()


def test_no_version_line_reads_as_version_2(tmp_path):
    """OMNeT++ 4.0 (pre-release) files start with the run line."""
    d = folder(tmp_path, x_vec=HEAD2 + "vector 3 N.a v ETV\nattr unit s\n3\t1\t0.5\t7\n3\t2\t1.5\t8\n",
               x_sca=HEAD2 + "scalar N.a s 1.5\nparam **.x 3\n")
    s = parse(d, tmp_path / "p")
    assert s["problems"] == [] and s["samples"] == 2 and s["scalars"] == 1
    P = Parsed(tmp_path / "p")
    assert {(f["version"], f["version_line"]) for f in P.files} == {(2, False)}
    assert [v["attrs"] for v in P.vectors] == [{"unit": "s"}]
    assert P.runs[0].config == [("**.x", "3")]  # version 2: param lines are ini entries


def test_utf8_bom(shared_results, tmp_path):
    """A UTF-8 BOM (an editor's save) before .vec, .sca, .vci and log content."""
    d = tmp_path / "bom"
    shutil.copytree(shared_results / "aloha-PureAloha1", d, copy_function=shutil.copy2)
    for p in d.iterdir():
        if p.suffix in (".sca", ".vci", ".log"):
            p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    s = parse(d, tmp_path / "p")
    assert s["problems"] == [] and s["scalars"] == 7 and s["samples"] == 38536
    assert [f["index"] for f in s["files"] if f["path"].endswith(".vec")] == ["used"]
    assert stats(tmp_path / "p", tmp_path / "o", graphs=False)["simrun"]["events"] == 38516
    v = d / "x.vec"
    v.write_bytes(b"\xef\xbb\xbf" + b"version 3\n" + HEAD2.encode() + b"vector 0 N.a v TV\n0\t1\t2\n\n")
    assert parse(d, tmp_path / "q")["samples"] == 38537


def test_all_nan_vector(tmp_path):
    """Every sample NaN: min and max empty (as opp_scavetool prints them), mean nan, count = samples;
    some NaN: min and max of the numbers, mean nan."""
    d = folder(tmp_path, x_vec="version 3\n" + HEAD2 + "vector 0 N.a allnan ETV\nvector 1 N.a some ETV\n"
               "0\t1\t1\tnan\n0\t2\t2\t-nan\n1\t1\t1\t-nan\n1\t2\t2\t4\n1\t3\t3\t-2\n\n")
    parse(d, tmp_path / "p")
    P = Parsed(tmp_path / "p")
    v = {x["name"]: x for x in P.vectors}
    assert (v["allnan"]["count"], v["allnan"]["min"], v["allnan"]["max"]) == (2, None, None)
    assert math.isnan(v["allnan"]["mean"])
    assert (v["some"]["count"], v["some"]["min"], v["some"]["max"]) == (3, -2.0, 4.0) and math.isnan(v["some"]["mean"])
    stats(tmp_path / "p", tmp_path / "o", graphs=False)
    rows = (tmp_path / "o" / "csv" / "vectors.csv").read_text().splitlines()
    assert rows[1].startswith("r1-0-20130107-19:44:01-2780,N.a,allnan,2,nan,nan,,,1,2,")


def test_vector_ids_are_integers(tmp_path):
    """Ids 2^53 and 2^53 + 1 are two vectors on both back ends (no float64 on the way); an id above
    2^63 - 1 is a clear error naming file and line."""
    big = 1 << 53
    d = folder(tmp_path, x_vec="version 3\n" + HEAD2 + f"vector {big} N.a a TV\nvector {big + 1} N.a b TV\n"
               f"{big}\t1\t10\n{big + 1}\t1\t20\n{big}\t2\t11\n\n")
    got = export_both(d, tmp_path)
    assert values(got["vectors"][f"{big} a"][1]) == [10, 11] and values(got["vectors"][f"{big + 1} b"][1]) == [20]
    huge = 1 << 63
    for text, line in ((f"vector {huge} N.a a TV\n", 6), (f"vector 0 N.a a TV\n0\t1\t2\n{huge}\t1\t2\n", 8)):
        (d / "x.vec").write_text("version 3\n" + HEAD2 + text + "\n")
        got = export_both(d, tmp_path)
        assert got["error"].startswith(f"vector id {huge} is too large") and got["line"] == line


@pytest.mark.parametrize("times", [["nan", "1"], ["2", "nan", "1"], ["1", "inf"], ["3", "2"]])
def test_time_must_be_finite_and_not_decrease(tmp_path, times):
    """A NaN time followed by an earlier one is refused like any decreasing time: OMNeT++'s
    simulation time is a fixed-point integer, never NaN or infinite."""
    lines = "".join(f"0\t{t}\t1\n" for t in times)
    d = folder(tmp_path, x_vec="version 3\n" + HEAD2 + "vector 0 N.a a TV\n" + lines + "\n")
    got = export_both(d, tmp_path)
    bad = next(i for i, t in enumerate(times) if t in ("nan", "inf") or (i and float(t) < float(times[i - 1])))
    assert got["line"] == 7 + bad, got
    assert ("not a finite number" if times[bad] in ("nan", "inf") else "time goes backwards") in got["error"]


def test_one_grammar_for_numbers_on_every_path(tmp_path):
    """The C back end, the numpy one and the line-by-line reader take and refuse the same tokens."""
    from omnetpp_results import fastparse
    from omnetpp_results.textfmt import parse_number
    ok = ["1", "-1.5", "+2", "1.", ".5", "1e5", "1E-5", "1.5e+300", "1e400", "1e-400", "007", "nan", "-nan",
          "NaN", "inf", "-inf", "INF", "1.#INF", "-1.#INF", "1.#IND", "-1.#IND", "1.#QNAN", "-1.#QNAN",
          "1.#INF00", "-1.#IND00", "1.#SNAN", "123456789012345678901234567890", "0.1234567890123456789"]
    bad = ["0x10", "0x1p3", "infinity", "Infinity", "nan(123)", "nan()", "-nan(ind)", "1_0", "1e", ".", "-",
           "e5", "1.2.3", "1e5e5", "--1", "1.#J", "1.#INF0x", "2.#INF", "inff", "nana", "+-1", "1,5", "١"]
    native = fastparse._load_native() is not None
    for tok in ok + bad:
        line = f"0\t1\t{tok}\n".encode()
        try:
            want = parse_number(tok)
        except ResultsError:
            want = None
        assert (want is not None) == (tok in ok), tok
        got_numpy = fastparse._parse_numpy(line)
        if got_numpy is not None:  # the numpy back end may leave a spelling to the line reader
            assert want is not None and np.array_equal(got_numpy[2][1], [want], equal_nan=True), tok
        if native:
            got = fastparse._native_lines(np.frombuffer(line, dtype=np.uint8))
            assert (got is not None) == (want is not None), tok
            if got is not None:
                assert np.array_equal(got[2][1], [want], equal_nan=True), tok
    for tok in bad[:6]:
        d = folder(tmp_path, x_vec="version 3\n" + HEAD2 + f"vector 0 N.a a TV\n0\t1\t{tok}\n\n")
        got = export_both(d, tmp_path)
        assert got["error"].startswith("not a number") and got["line"] == 7, (tok, got)


def test_runs_appended_to_one_vec(tmp_path):
    """Two runs in one .vec (output-vector-file-append): ids start again in the second run."""
    d = folder(tmp_path, x_vec="version 2\n" + HEAD2 + "vector 0 N.a a TV\n0\t1\t5\n\n"
               "version 2\nrun r2\nattr configname C\n\nvector 0 N.a a TV\n0\t0.5\t6\n0\t1\t7\n\n")
    s = parse(d, tmp_path / "p")
    assert s["runs"] == ["r1-0-20130107-19:44:01-2780", "r2"] and s["vectors"] == 2 and s["samples"] == 3


def test_quoted_empty_keyword(tmp_path):
    d = folder(tmp_path, x_sca="version 3\n" + HEAD2 + '"" N.a 1\n\n')
    with pytest.raises(ResultsError, match="unexpected line") as ei:
        parse(d, tmp_path / "p")
    assert ei.value.line == 6


@pytest.mark.parametrize("src", ["routing-Net10", "aloha-PureAloha2-sqlite",
                                 "public:marcins89__TIRT__admissioncontrol-crlf"])
def test_damaged_files_never_give_a_traceback(shared_results, tmp_path, src):
    """Random damage (bytes changed, cut, deleted, duplicated, CR/BOM/NaN spellings inserted) to
    .vec, .vci and .sca: parse() either reads (and reports problems) or raises ResultsError."""
    import random
    folder_ = shared_results / src if ":" not in src else \
        REPO.parent / "shared" / "omnetpp-results-public" / src.split(":")[1]
    files = {p.name: p.read_bytes() for p in folder_.rglob("*") if p.suffix in (".vec", ".vci", ".sca")}
    rng = random.Random(7)
    inserts = [b"\r", b"\n", b"\t", b"nan", b"-1.#IND", b"\xef\xbb\xbf", b" ", b"9" * 22, b'"', b"\\", b"\0"]
    for i in range(40):
        d = tmp_path / f"f{i}"
        d.mkdir()
        for name, data in files.items():
            b = bytearray(data)
            for _ in range(rng.randint(0, 4)):
                pos = rng.randrange(len(b) or 1)
                op = rng.randrange(5)
                if op == 0:
                    b[pos:pos + 1] = bytes([rng.randrange(256)])
                elif op == 1:
                    del b[pos:pos + rng.randint(1, 60)]
                elif op == 2:
                    b[pos:pos] = rng.choice(inserts)
                elif op == 3:
                    del b[pos:]
                else:
                    b[pos:pos] = b[rng.randrange(len(b) or 1):][:rng.randint(1, 300)]
            (d / name).write_bytes(bytes(b))
        try:
            s = parse(d, tmp_path / f"p{i}")
            assert all(set(p.as_dict()) == {"path", "line", "message", "bytes_ignored", "skipped", "action"}
                       for p in s["problems"])
        except ResultsError as e:
            assert e.path is not None


def _vectors(parsed: Path) -> dict:
    return {(v["module"], v["name"]): (v["count"], v["mean"], v["last_time"]) for v in Parsed(parsed).vectors}


def test_an_index_of_only_the_vectors_with_data_is_used(tmp_path):
    """OMNeT++ 6 writes no .vci entry for a declared vector that recorded nothing: a .vec declaring
    477 vectors, 59 with data, beside a .vci of those 59, is read through the index, with the same
    result as a scan; an index that leaves out a vector with data is not used."""
    from omnetpp_results.generate import generate
    g = generate(tmp_path / "src", vectors=477, with_data=59, index_empty=False, target_bytes=400_000)
    vci = tmp_path / "src" / "results" / "Synthetic-#0.vci"
    text = vci.read_text()
    assert text.count("\nvector ") == 59 and g["vectors"] - g["empty_vectors"] == 59
    s = parse(tmp_path / "src", tmp_path / "p")
    assert [f["index"] for f in s["files"] if f["path"].endswith(".vec")] == ["used"]
    assert s["problems"] == []
    indexed = _vectors(tmp_path / "p")
    assert len(indexed) == 477 and sum(1 for c, _, _ in indexed.values() if c) == 59
    vci.rename(tmp_path / "aside.vci")
    parse(tmp_path / "src", tmp_path / "scanned")
    assert _vectors(tmp_path / "scanned") == indexed
    # the index leaves out a vector that has data: its data is outside every block, so it is scanned
    lines = text.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.startswith("vector "))
    after = next(i for i in range(first + 1, len(lines)) if lines[i].startswith("vector "))
    kept = lines[:first] + lines[after:]  # its declaration, attrs and blocks
    vci.write_text("".join(kept))
    s = parse(tmp_path / "src", tmp_path / "p2")
    assert [f["index"] for f in s["files"] if f["path"].endswith(".vec")][0].startswith("ignored: ")
    assert _vectors(tmp_path / "p2") == indexed


SCA_MIX = """version 3
run Mix-0-20261121-1
attr configname Mix
attr network Net

scalar Net.a xscalar 1
scalar Net.xscalar b 2
scalar Net.b "rx bytes:sum" 3
scalar Net.b c 1.#INF
scalar Net.b d -nan
scalar Net.b e 5
attr unit B
scalar Net.b f 6

attr title T
scalar Net.c g 7
scalar Net.c h 8
statistic Net.c s
field count 2
field mean 1
bin -inf 0
bin 0 2
bin 1 0
scalar Net.c i 9
scalar Net.c j .5e3
# a comment
scalar Net.c k 11
scalar Net.c l 12\t
scalar Net.c n,x 13
scalar Net.c \u00f1 14
{plain}
run Mix-1-20261121-2
attr configname Mix
attr network Net

scalar Net.c o -0
scalar Net.c p inf
scalar Net.c q 17

"""


def test_sca_read_in_bulk_gives_what_line_by_line_gives(tmp_path):
    """Scalar items as OMNeT++ writes them (quoted names, attr lines, CRLF) are read and tabled in
    bulk (the native reader into columns, byte replacements, numpy); with a pattern selection
    every line goes the line-by-line way. Both must give the same rows, CSV, per-name figures
    (mean summed in file order, first min and max, first title and unit) and study input."""
    def item(i: int) -> str:
        name = f'"r {i % 5}, x"' if i % 3 == 0 else f"r{i % 5}"
        attrs = f'attr title "T{i % 4}, of r"\n' if i % 7 == 0 else ""
        attrs += "attr unit s\n" if i % 11 == 0 else ""
        end = "\r\n" if 10_000 <= i < 10_100 else "\n"
        return f"scalar Net.h[{i % 7}] {name} {i * 1.37 - 40:.10g}{end}{attrs}"
    plain = "".join(map(item, range(30_000)))
    src = tmp_path / "mix"
    src.mkdir()
    (src / "Mix-0.sca").write_text(SCA_MIX.replace("{plain}", plain), encoding="utf-8")
    out = {}
    for how, statistics in (("bulk", "all"), ("lines", ["*"])):
        parse(src, tmp_path / how / "parsed", statistics=statistics)
        s = stats(tmp_path / how / "parsed", tmp_path / how / "out", graphs="none")
        rows = list(Parsed(tmp_path / how / "parsed").scalars)
        html = (tmp_path / how / "out" / "report.html").read_text()
        out[how] = (rows, (tmp_path / how / "out" / "csv" / "scalars.csv").read_text(),
                    html[html.index('<table id="scalar-table">'):].split("</table>")[0], s.scalars)
    assert out["bulk"] == out["lines"]
    rows, csv_text, table, count = out["bulk"]
    assert count == 30_018 and csv_text.count("\n") == 30_019
    assert rows[5] == {"run": "Mix-0-20261121-1", "module": "Net.b", "name": "e", "value": "5", "attrs": {"unit": "B"}}
    assert "Mix-0-20261121-1,Net.c,\"n,x\",13\n" in csv_text and ",Net.b,c,inf\n" in csv_text
    assert rows[15 + 14] == {"run": "Mix-0-20261121-1", "module": "Net.h[0]", "name": "r4",
                             "value": "-20.82", "attrs": {"title": "T2, of r"}}
    assert ",Net.h[1],\"r 0, x\",-19.45\n" in csv_text and "\r" not in csv_text
    assert "T0, of r" in table and "<td>s</td>" in table
