"""Bad input gives a clear ResultsError (file, line) / CLI exit code 2, never a traceback or a
silent partial result; and the folder scan finds what it should."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from omnetpp_results import ResultsError, find_inputs, parse, stats

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


@pytest.mark.parametrize("with_vci", [False, True])
def test_truncated_vec(shared_results, tmp_path, with_vci):
    d = small_run(shared_results, tmp_path, with_vci)
    vec = d / "Net10-#0.vec"
    data = vec.read_bytes()
    vec.write_bytes(data[:150_000])  # cut inside a data line
    with pytest.raises(ResultsError, match="truncated") as ei:
        parse(d, tmp_path / "p")
    assert "Net10-#0.vec" in str(ei.value)
    r = cli("export", str(d), str(tmp_path / "out"))
    assert r.returncode == 2 and "Net10-#0.vec" in r.stderr and "Traceback" not in r.stderr


def test_truncated_at_line_end(shared_results, tmp_path):
    d = small_run(shared_results, tmp_path)
    vec = d / "Net10-#0.vec"
    data = vec.read_bytes()
    cut = data.rindex(b"\n", 0, 150_000) + 1
    vec.write_bytes(data[:cut])
    with pytest.raises(ResultsError, match="end-of-run blank line"):
        parse(d, tmp_path / "p")


def test_undeclared_vector(shared_results, tmp_path):
    d = small_run(shared_results, tmp_path)
    vec = d / "Net10-#0.vec"
    lines = vec.read_bytes().split(b"\n")
    i = next(k for k, l in enumerate(lines) if l[:1].isdigit()) + 10
    lines[i] = b"77\t5\t1.5\t3"
    vec.write_bytes(b"\n".join(lines))
    with pytest.raises(ResultsError, match="undeclared vector id 77") as ei:
        parse(d, tmp_path / "p")
    assert ei.value.line == i + 1 and ei.value.path.endswith("Net10-#0.vec")
    r = cli("export", str(d), str(tmp_path / "out"))
    assert r.returncode == 2 and f"Net10-#0.vec:{i + 1}:" in r.stderr


@pytest.mark.parametrize("where", ["data", "header"])
def test_garbage_bytes(shared_results, tmp_path, where):
    d = small_run(shared_results, tmp_path)
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
    d = small_run(shared_results, tmp_path)
    vec = d / "Net10-#0.vec"
    lines = vec.read_bytes().split(b"\n")
    i = next(k for k, l in enumerate(lines) if l[:1].isdigit()) + 500
    lines[i] = lines[i][:-3] + b"x7z"
    vec.write_bytes(b"\n".join(lines))
    with pytest.raises(ResultsError, match="not a number") as ei:
        parse(d, tmp_path / "p")
    assert ei.value.line == i + 1


def test_truncated_and_corrupt_sca(shared_results, tmp_path):
    d = small_run(shared_results, tmp_path)
    (d / "Net10-#0.vec").unlink()
    sca = d / "Net10-#0.sca"
    data = sca.read_bytes()
    sca.write_bytes(data[:70_001])
    with pytest.raises(ResultsError, match="truncated") as ei:
        parse(d, tmp_path / "p")
    assert "Net10-#0.sca" in str(ei.value)
    sca.write_bytes(data.replace(b"\nscalar ", b"\nscalra ", 1))
    with pytest.raises(ResultsError, match="unexpected line") as ei:
        parse(d, tmp_path / "p")
    assert ei.value.line is not None


def test_corrupt_sqlite(shared_results, tmp_path):
    src = shared_results / "aloha-PureAloha2-sqlite" / "results" / "PureAloha2-sqlite-#0.vec"
    d = tmp_path / "run"
    d.mkdir()
    data = src.read_bytes()
    (d / "x.vec").write_bytes(data[:5000] + b"\xff" * 20000)
    with pytest.raises(ResultsError, match="SQLite") as ei:
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
