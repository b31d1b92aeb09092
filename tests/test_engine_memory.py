"""Bounded memory, as behaviour: inputs no OMNeT++ writes (lines of megabytes, headers of tens of
megabytes, histograms of millions of bins) are refused with an error naming the limit, or skipped
with the reason said; what parse() hands to stats() is read a row at a time. (Peak RSS on the
generated worst cases is measured by benchmarks/bench_memory.py, not here.)"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from omnetpp_results import ResultsError, parse, stats
from omnetpp_results.simrun import read_log
from omnetpp_results.scalarstore import ScalarTable
from omnetpp_results.store import MAX_ATTRS, MAX_BINS, MAX_RUN_HEADER, Parsed
from omnetpp_results.textfmt import MAX_LINE
from omnetpp_results.vecfile import MAX_INDEX_VECTORS

HEAD = "version 3\nrun r1\nattr configname C\nattr network N\n\n"


def run_dir(tmp_path: Path, **files) -> Path:
    d = tmp_path / "run"
    d.mkdir(exist_ok=True)
    for name, content in files.items():
        (d / name.replace("_", ".")).write_bytes(content if isinstance(content, bytes) else content.encode())
    return d


def test_line_longer_than_the_limit_is_a_clear_error(tmp_path):
    long = "x" * (MAX_LINE + 10)
    d = run_dir(tmp_path, x_vec=HEAD + f"attr title {long}\n\n")
    with pytest.raises(ResultsError, match=f"line longer than {MAX_LINE >> 20} MB") as ei:
        parse(d, tmp_path / "p")
    assert ei.value.line == 6
    (d / "x.vec").unlink()
    (d / "x.sca").write_text(HEAD + f"scalar N.a {long} 1\n\n")
    with pytest.raises(ResultsError, match=f"line longer than {MAX_LINE >> 20} MB") as ei:
        parse(d, tmp_path / "p")
    assert ei.value.line == 6


def test_one_line_index_is_not_used_and_says_why(shared_results, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(shared_results / "aloha-PureAloha1", d, copy_function=shutil.copy2)
    vci = next(d.rglob("*.vci"))
    size = vci.with_suffix(".vec").stat().st_size
    vci.write_bytes(f"file {size} 1 ".encode() + b"7" * (MAX_LINE + 1))
    s = parse(d, tmp_path / "p")
    assert [f["index"] for f in s["files"] if f["path"].endswith(".vec")] == \
        [f"ignored: a line longer than {MAX_LINE >> 20} MB: not an index"]
    assert s["samples"] == 38536 and s["problems"] == []


@pytest.mark.slow
def test_index_of_too_many_vectors_is_not_used(tmp_path):
    n = MAX_INDEX_VECTORS + 1
    decl = "".join(f"vector {i} N.a v{i} TV\n" for i in range(n))
    vec = (HEAD + decl + "0\t1\t2\n\n").encode()
    head = HEAD + decl
    d = run_dir(tmp_path, x_vec=vec, x_vci=f"file {len(vec)} 1\n" + head + f"0\t{len(head)} 7 1 1 1 2 2 2 4\n")
    s = parse(d, tmp_path / "p")
    assert s["files"][0]["index"] == f"ignored: lists more than {MAX_INDEX_VECTORS} vectors (not used, to bound memory)"
    assert s["vectors"] == n and s["samples"] == 1


def test_cmdenv_log_with_a_huge_line(shared_results, tmp_path):
    log = tmp_path / "run0.stdout.log"
    text = (shared_results / "aloha-PureAloha1" / "run0.stdout.log").read_bytes()
    cut = text.index(b"** Event #")
    log.write_bytes(text[:cut] + b"x" * (MAX_LINE + 5) + b"\r\n" + text[cut:].replace(b"\n", b"\r\n"))
    r = read_log(log)[0]
    assert (r["events"], r["sim_time"], r["messages_created"]) == (38516, 1200, 11353)


def test_run_header_budget(tmp_path):
    value = "v" * 4096
    lines = "".join(f"config key{i} {value}\n" for i in range(MAX_RUN_HEADER // 4096 + 8))
    d = run_dir(tmp_path, x_sca=HEAD.replace("\n\n", "\n") + lines + "scalar N.a s 1\n\n")
    with pytest.raises(ResultsError, match=f"more than {MAX_RUN_HEADER >> 20} MB of run attributes"):
        parse(d, tmp_path / "p")


def test_histogram_bins_and_attrs_limits(tmp_path):
    bins = "".join(f"bin\t{i}\t0\n" for i in range(MAX_BINS + 1))
    d = run_dir(tmp_path, x_sca=HEAD + "statistic N.a h\nfield count 0\n" + bins + "\n")
    with pytest.raises(ResultsError, match=f"more than {MAX_BINS} bins") as ei:
        parse(d, tmp_path / "p")
    assert ei.value.line == 8 + MAX_BINS
    attrs = "".join(f"attr a{i} 1\n" for i in range(MAX_ATTRS + 1))
    (d / "x.sca").write_text(HEAD + "scalar N.a s 1\n" + attrs + "\n")
    with pytest.raises(ResultsError, match=f"more than {MAX_ATTRS} attr lines"):
        parse(d, tmp_path / "p")


def test_parse_output_is_read_a_row_at_a_time(shared_results, tmp_path):
    """stats() gets the tables as streams (len() without reading them), the scalars in windows of
    columns, and one vector's series at a time; the whole parsed.json stays valid JSON for other
    readers (with the scalars the columns do not hold)."""
    import json
    s = parse(shared_results / "routing-Net60CutThrough", tmp_path / "p")
    P = Parsed(tmp_path / "p")
    assert isinstance(P.scalars, ScalarTable) and len(P.scalars) == s["scalars"] == 1800
    doc = json.loads((tmp_path / "p" / "parsed.json").read_text())
    rows = list(P.scalars)
    assert len(rows) == 1800 and all(r in rows for r in doc["scalars"]) and len(doc["scalars"]) < 10
    assert rows[0]["attrs"] == {"interpolationmode": "none", "recordingmode": "mean",
                                "title": "hop count of arrived packets, mean"}
    assert list(P.vectors) == doc["vectors"]
    assert list(P.statistics) == doc["statistics"] and list(P.params) == doc["params"]
    assert sum(len(P.series(v["key"])[0]) for v in P.vectors) == s["samples"]
    stats(tmp_path / "p", tmp_path / "o", graphs=False)
    assert (tmp_path / "o" / "csv" / "scalars.csv").read_text().count("\n") == 1801


def _declarations(n: int, with_data_every: int) -> str:
    decl = "".join(f"vector {i} N.host[{i}] v:vector ETV\n" for i in range(n))
    data = "".join(f"{i}\t{i}\t1.5\t{i}\n" for i in range(0, n, with_data_every))
    return HEAD + decl + data + "\n"


def test_stats_keeps_a_few_empty_vectors_by_name_and_counts_the_rest(tmp_path):
    """Vectors declared without data are counted, not held: INFO.txt and the report list the
    first ones and say how many more there are; csv/vectors.csv has every one."""
    from omnetpp_results.gather import UNDRAWN_KEPT
    n = 2 * UNDRAWN_KEPT + 10
    parse(run_dir(tmp_path, x_vec=_declarations(n, 10)), tmp_path / "p")
    r = stats(tmp_path / "p", tmp_path / "o", graphs="none")
    empty = n - len(range(0, n, 10))
    assert r.vectors == n and r.empty_vectors == empty
    rows = (tmp_path / "o" / "csv" / "vectors.csv").read_text().splitlines()[1:]
    assert len(rows) == n and sum(row.split(",")[3] == "0" for row in rows) == empty
    info = (tmp_path / "o" / "INFO.txt").read_text()
    assert f"Declared vectors without data ({empty})" in info and "more (see csv/vectors.csv" in info
    html = (tmp_path / "o" / "report.html").read_text()
    assert f"{empty} vectors declared without data" in html
    assert f"and {empty - UNDRAWN_KEPT} more" in html


def test_stems_stay_unique_when_names_differ_only_in_case(tmp_path):
    vec = HEAD + "vector 1 N.Host v:vector ETV\nvector 2 N.host v:vector ETV\n1\t1\t1\t1\n2\t1\t1\t2\n\n"
    parse(run_dir(tmp_path, x_vec=vec), tmp_path / "p")
    stats(tmp_path / "p", tmp_path / "o", graphs="none")
    files = sorted(p.name for p in (tmp_path / "o" / "csv" / "vectors").iterdir())
    assert len({f.lower() for f in files}) == 2
    listed = (tmp_path / "o" / "csv" / "vectors.csv").read_text()
    assert all(f"vectors/{f}" in listed for f in files)


def test_too_many_distinct_names_is_a_clear_error(tmp_path, monkeypatch):
    from omnetpp_results import gather
    monkeypatch.setattr(gather, "MAX_NAMES", 50)
    sca = HEAD + "".join(f"scalar N.a s{i} {i}\n" for i in range(51)) + "\n"
    parse(run_dir(tmp_path, x_sca=sca), tmp_path / "p")
    with pytest.raises(ResultsError, match="more than 50 distinct scalar names"):
        stats(tmp_path / "p", tmp_path / "o", graphs="none")
