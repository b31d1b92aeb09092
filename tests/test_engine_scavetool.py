"""The engine against OMNeT++ itself: every run in ../shared/omnetpp-results must give what
opp_scavetool exported (expected/scavetool-export.csv), to 14 significant digits, whether the
.vci is intact, stale (copied), missing or lying."""
from __future__ import annotations

import bisect
import csv
import json
import math
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from omnetpp_results import parse, stats
from omnetpp_results.store import Parsed

csv.field_size_limit(sys.maxsize)

RUN_DIRS = [
    "aloha-PureAloha1", "aloha-PureAloha2-sqlite", "aloha-PureAlohaExperiment",
    "aloha-SlottedAloha2", "routing-Net10", "routing-Net10Experiment",
    "routing-Net5SaturatedQueue", "routing-Net60CutThrough",
]


def num(s: str) -> float:
    return float(s)


def same(a, b) -> bool:
    """Equal to 14 significant digits; nan matches nan (any sign)."""
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    return abs(a - b) <= 5e-14 * max(abs(a), abs(b))


def load_expected(run_dir: Path) -> dict:
    exp = {"scalar": {}, "param": {}, "histogram": {}, "statistic": {}, "vector": {},
           "runattr": {}, "itervar": {}}
    with open(run_dir / "expected" / "scavetool-export.csv", newline="") as f:
        for row in csv.DictReader(f):
            t = row["type"]
            if t in ("scalar", "param"):
                exp[t][(row["run"], row["module"], row["name"])] = row["value"]
            elif t in ("histogram", "statistic", "vector"):
                exp[t][(row["run"], row["module"], row["name"])] = row
            elif t in ("runattr", "itervar"):
                exp[t][(row["run"], row["attrname"])] = row["attrvalue"]
    return exp


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_against_scavetool(run_dir: Path, parsed_dir: Path, out_dir: Path) -> None:
    exp = load_expected(run_dir)
    P = Parsed(parsed_dir)

    # run attributes and itervars
    runs = {r.run_id: r for r in P.runs}
    assert set(runs) == {k[0] for k in exp["runattr"]}
    for (run, name), value in exp["runattr"].items():
        assert runs[run].attrs.get(name) == value, (run, name)
    for (run, name), value in exp["itervar"].items():
        assert runs[run].itervars.get(name) == value, (run, name)

    # scalars (as written into csv/scalars.csv)
    got = {(r["run"], r["module"], r["name"]): r["value"] for r in read_csv(out_dir / "csv" / "scalars.csv")}
    assert set(got) == set(exp["scalar"])
    for k, v in exp["scalar"].items():
        assert same(got[k], v), (k, got[k], v)

    # parameters (kept in the parse output)
    params = {(p["run"], p["module"], p["name"]): p["value"] for p in P.params}
    assert set(params) == set(exp["param"])
    for k, v in exp["param"].items():
        assert params[k] == v, (k, params[k], v)

    # statistics and histograms: fields from csv/statistics.csv, bins from csv/histograms.csv
    srows = {(r["run"], r["module"], r["name"]): r for r in read_csv(out_dir / "csv" / "statistics.csv")}
    bins: dict = {}
    for r in read_csv(out_dir / "csv" / "histograms.csv"):
        bins.setdefault((r["run"], r["module"], r["name"]), []).append(r)
    assert set(srows) == set(exp["histogram"]) | set(exp["statistic"])
    assert set(bins) == set(exp["histogram"])
    for kind in ("histogram", "statistic"):
        for k, e in exp[kind].items():
            g = srows[k]
            for fld in ("count", "mean", "stddev", "min", "max"):
                assert same(g[fld], e[fld]), (k, fld, g[fld], e[fld])
            if kind == "histogram":
                b = bins[k]
                assert b[0]["bin_lower"] == "-inf" and b[-1]["bin_upper"] == "inf"
                assert same(b[0]["count"], e["underflows"]), k
                assert same(b[-1]["count"], e["overflows"]), k
                edges = [num(x) for x in e["binedges"].split()]
                values = [num(x) for x in e["binvalues"].split()]
                inner = b[1:-1]
                assert len(inner) == len(values), k
                assert all(same(r["bin_lower"], x) for r, x in zip(inner, edges[:-1])), k
                assert all(same(r["bin_upper"], x) for r, x in zip(inner, edges[1:])), k
                assert same(b[-1]["bin_lower"], edges[-1]), k
                assert all(same(r["count"], x) for r, x in zip(inner, values)), k

    # vectors: summaries in csv/vectors.csv, full series in the parse output
    vrows = {(r["run"], r["module"], r["name"]): r for r in read_csv(out_dir / "csv" / "vectors.csv")}
    keyed = {(v["run"], v["module"], v["name"]): v for v in P.vectors}
    assert set(vrows) == set(exp["vector"])
    assert set(keyed) == set(exp["vector"])
    for k, e in exp["vector"].items():
        et = [num(x) for x in e["vectime"].split()]
        ev = [num(x) for x in e["vecvalue"].split()]
        t, v = P.series(keyed[k]["key"])
        assert len(t) == len(et), k
        assert all(same(a, b) for a, b in zip(t.tolist(), et)), k
        assert all(same(a, b) for a, b in zip(v.tolist(), ev)), k
        g = vrows[k]
        assert int(g["count"]) == len(ev), k
        if ev:
            assert same(g["min"], min(ev)) and same(g["max"], max(ev)), k
            assert same(g["first_time"], et[0]) and same(g["last_time"], et[-1]), k
            assert math.isclose(float(g["mean"]), math.fsum(ev) / len(ev), rel_tol=5e-14, abs_tol=1e-300), k
            if len(ev) > 1:
                m = math.fsum(ev) / len(ev)
                sd = math.sqrt(math.fsum((x - m) ** 2 for x in ev) / (len(ev) - 1))
                assert math.isclose(float(g["stddev"]), sd, rel_tol=1e-12, abs_tol=1e-300), k
            assert g["file"].startswith("vectors/") and (out_dir / "csv" / g["file"]).is_file()
        else:
            assert g["mean"] == g["min"] == g["file"] == "", k


def export(src: Path, tmp: Path, name: str, statistics="all"):
    parsed, out = tmp / f"{name}-parsed", tmp / f"{name}-out"
    summary = parse(src, parsed, statistics=statistics)
    stats(parsed, out, graphs=False, statistics=statistics)
    return summary, parsed, out


@pytest.mark.parametrize("run", RUN_DIRS)
def test_equals_scavetool(shared_results, tmp_path, run):
    """Files used in place, .vci as OMNeT++ left it."""
    src = shared_results / run
    summary, parsed, out = export(src, tmp_path, "intact")
    check_against_scavetool(src, parsed, out)
    for f in summary["files"]:
        if f["path"].endswith(".vec") and f["format"] == "text":
            assert f["index"] == "used", f  # the real .vci files are right: they must be used


def copy_run(src: Path, dst: Path) -> Path:
    """A plain copy (new mtimes: the .vci fingerprint no longer matches)."""
    shutil.copytree(src, dst, copy_function=shutil.copyfile)
    for dirpath, dirnames, filenames in os.walk(dst):
        os.chmod(dirpath, 0o755)
        for n in filenames:
            os.chmod(os.path.join(dirpath, n), 0o644)
    for vci in dst.rglob("*.vci"):
        os.utime(vci, (1_000_000_000, 1_000_000_000))
    return dst


@pytest.mark.parametrize("run", ["aloha-PureAloha1", "routing-Net5SaturatedQueue", "aloha-PureAlohaExperiment"])
def test_stale_and_missing_index(shared_results, tmp_path, run):
    src = shared_results / run
    stale = copy_run(src, tmp_path / "stale")
    summary, parsed, out = export(stale, tmp_path, "stale")
    check_against_scavetool(src, parsed, out)
    assert all(f["index"] == "used" for f in summary["files"] if f["path"].endswith(".vec"))
    nov = copy_run(src, tmp_path / "novci")
    for vci in nov.rglob("*.vci"):
        vci.unlink()
    summary, parsed, out = export(nov, tmp_path, "novci")
    check_against_scavetool(src, parsed, out)
    assert all(f["index"] == "none" for f in summary["files"] if f["path"].endswith(".vec"))


def _blocks(text: str):
    return [i for i, line in enumerate(text.split("\n")) if re.match(r"^\d+\t", line)]


def _lie_count(lines, i):
    t = lines[i].split("\t")
    rest = t[1].split(" ")
    rest[-5] = str(int(rest[-5]) + 1)  # count
    lines[i] = t[0] + "\t" + " ".join(rest)


def _lie_offset(lines, i):
    t = lines[i].split("\t")
    rest = t[1].split(" ")
    rest[0] = str(int(rest[0]) + 7)
    lines[i] = t[0] + "\t" + " ".join(rest)


def _lie_swap_ids(lines, i):
    j = _blocks("\n".join(lines))[-1]
    a, b = lines[i].split("\t", 1), lines[j].split("\t", 1)
    if a[0] == b[0]:
        a[0] = str(int(a[0]) + 1)
    lines[i], lines[j] = b[0] + "\t" + a[1], a[0] + "\t" + b[1]


def _lie_max(lines, i):
    t = lines[i].split("\t")
    rest = t[1].split(" ")
    rest[-3] = "12345.5"
    lines[i] = t[0] + "\t" + " ".join(rest)


def _lie_drop_block(lines, i):
    del lines[i]


def _lie_size(lines, i):
    lines[0] = "file 17 1700000000".ljust(64)


@pytest.mark.parametrize("lie", [_lie_count, _lie_offset, _lie_swap_ids, _lie_max, _lie_drop_block, _lie_size])
def test_lying_index_is_detected(shared_results, tmp_path, lie):
    src = shared_results / "routing-Net5SaturatedQueue"
    dst = copy_run(src, tmp_path / "lying")
    vci = next(dst.rglob("*.vci"))
    lines = vci.read_text().split("\n")
    blocks = _blocks(vci.read_text())
    lie(lines, blocks[len(blocks) // 2])
    vci.write_text("\n".join(lines))
    summary, parsed, out = export(dst, tmp_path, "lying")
    vec = [f for f in summary["files"] if f["path"].endswith(".vec")][0]
    assert vec["index"].startswith("ignored"), vec
    check_against_scavetool(src, parsed, out)


def test_selection_with_index_reads_only_selected_blocks(shared_results, tmp_path):
    src = shared_results / "routing-Net5SaturatedQueue"
    parsed = tmp_path / "p"
    summary = parse(src, parsed, statistics=["qlen:vector"])
    doc = json.loads((parsed / "parsed.json").read_text())
    vec = [f for f in doc["files"] if f["path"].endswith(".vec")][0]
    assert vec["index"] == "used"
    assert vec["bytes_read"] < vec["bytes"] / 2
    assert {v["name"] for v in doc["vectors"]} == {"qlen:vector"}
    assert summary["scalars"] == 0


def to_crlf(src: Path, dst: Path) -> Path:
    """The run as OMNeT++ writes it on Windows: CRLF in every file, the .vci's offsets and lengths
    those of the CRLF .vec (its fingerprint size too), and blank index lines "\\r"."""
    copy_run(src, dst)
    for vec in dst.rglob("*.vec"):
        data = vec.read_bytes()
        nl = [i for i, c in enumerate(data) if c == 10]

        def shifted(pos: int) -> int:  # LF offset -> CRLF offset
            return pos + bisect.bisect_left(nl, pos)

        vci = vec.with_suffix(".vci")
        lines = vci.read_text().split("\n")
        size = len(data) + len(nl)
        lines[0] = f"file {size} {lines[0].split()[2]}".ljust(64)
        for i in _blocks(vci.read_text()):
            vid, rest = lines[i].split("\t", 1)
            f = rest.split(" ")
            off, length = int(f[0]), int(f[1])
            f[0], f[1] = str(shifted(off)), str(shifted(off + length) - shifted(off))
            lines[i] = vid + "\t" + " ".join(f)
        vci.write_bytes("\r\n".join(lines).encode())
        vec.write_bytes(data.replace(b"\n", b"\r\n"))
        assert vec.stat().st_size == size
    for sca in dst.rglob("*.sca"):
        sca.write_bytes(sca.read_bytes().replace(b"\n", b"\r\n"))
    return dst


@pytest.mark.parametrize("run", ["routing-Net5SaturatedQueue", "aloha-PureAlohaExperiment"])
def test_crlf_run_with_its_index(shared_results, tmp_path, run):
    """A Windows-written run (CRLF everywhere, its .vci describing the CRLF .vec) reads as OMNeT++
    exported it, with the index used, and no "truncated" complaint about the CRLF blank line."""
    src = shared_results / run
    summary, parsed, out = export(to_crlf(src, tmp_path / "crlf"), tmp_path, "crlf")
    check_against_scavetool(src, parsed, out)
    assert summary["problems"] == []
    assert all(f["index"] == "used" for f in summary["files"] if f["path"].endswith(".vec"))


def test_index_with_lengths_off_still_locates_blocks(shared_results, tmp_path):
    """OMNeT++ 4 on Windows wrote wrong block lengths into .vci files of CRLF .vec files (its own
    reader goes by offset and line count): such an index is used, and checked line by line."""
    src = shared_results / "routing-Net5SaturatedQueue"
    dst = copy_run(src, tmp_path / "len")
    vci = next(dst.rglob("*.vci"))
    lines = vci.read_text().split("\n")
    for k, i in enumerate(_blocks(vci.read_text())):
        vid, rest = lines[i].split("\t", 1)
        f = rest.split(" ")
        f[1] = str([0, 7, int(f[1]) // 2][k % 3])
        lines[i] = vid + "\t" + " ".join(f)
    vci.write_text("\n".join(lines))
    for stat in ("all", ["qlen:vector"]):
        summary, parsed, out = export(dst, tmp_path, "len" + str(len(stat)), stat)
        assert [f["index"] for f in summary["files"] if f["path"].endswith(".vec")] == ["used"]
    check_against_scavetool(src, parsed.parent / "len3-parsed", parsed.parent / "len3-out")
