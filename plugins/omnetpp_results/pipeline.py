"""The engine's public API: find_inputs -> parse -> stats -> write_archive (no Airflow here).

parse() reads every result file exactly once and leaves a compact intermediate in parsed_dir;
stats() turns that into the archive's csv/, graphs/, simrun/, INFO.txt and omnetpp.ini;
write_archive() adds MANIFEST.sha256 and streams everything into a zip.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import resource
import shutil
import sqlite3
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path


from . import fastparse, simrun
from .errors import ResultsError
from .resample import grid_size, resample, resample_held
from .readers import nothing_readable, read_result_file
from .selection import Selection
from .sqlitefile import _connect, is_sqlite
from .store import Parsed, Sink
from .textfmt import fmt

__all__ = ["Inputs", "ResultsError", "find_inputs", "parse", "stats", "write_archive"]

RESULT_SUFFIXES = {".vec", ".vci", ".sca"}
#: files never stored compressed (already compressed)
STORED = {".png", ".pdf", ".zip", ".gz", ".xz", ".bz2", ".zst", ".jpg", ".jpeg", ".npy"}


@dataclass
class Inputs:
    """What a run's result folder holds (found recursively)."""
    root: Path
    vec: list = field(default_factory=list)
    vci: list = field(default_factory=list)
    sca: list = field(default_factory=list)
    ini: list = field(default_factory=list)
    logs: list = field(default_factory=list)

    def vci_for(self, vec: Path) -> Path | None:
        p = vec.with_suffix(".vci")
        return p if p in self.vci else None


def find_inputs(results_dir) -> Inputs:
    root = Path(results_dir)
    if not root.is_dir():
        raise ResultsError("results folder does not exist or is not a folder", path=root)
    inp = Inputs(root=root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if not p.is_file():
                continue
            suf = p.suffix.lower()
            if suf == ".vec":
                inp.vec.append(p)
            elif suf == ".vci":
                inp.vci.append(p)
            elif suf == ".sca":
                inp.sca.append(p)
            elif suf == ".ini":
                inp.ini.append(p)
            elif simrun.looks_like_cmdenv_log(p):
                inp.logs.append(p)
    if not inp.vec and not inp.sca:
        raise ResultsError("no OMNeT++ result files (.vec or .sca) in this folder", path=root)
    return inp


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


_CONFIGNAME = re.compile(rb"^attr configname (\S+)", re.M)


def _configs_of(path: Path) -> set | None:
    """Config names of the runs in a result file, from its head (None if not found cheaply)."""
    try:
        if is_sqlite(path):
            con = _connect(path)
            try:
                return {r[0] for r in con.execute(
                    "select attrValue from runAttr where attrName='configname'")}
            finally:
                con.close()
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except (OSError, sqlite3.DatabaseError):
        return None
    found = {m.group(1).decode("utf-8", "replace").strip('"') for m in _CONFIGNAME.finditer(head)}
    return found or None


def parse(results_dir, parsed_dir, *, runconfig=None, statistics="all", progress=None) -> dict:
    """Read every result file of results_dir once; leave the intermediate in parsed_dir."""
    t_start = time.perf_counter()
    inputs = find_inputs(results_dir)
    sel = Selection(statistics)
    parsed_dir = Path(parsed_dir)
    parsed_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("parsed.json", "series.bin", "segments.npy", "omnetpp.ini"):
        (parsed_dir / stale).unlink(missing_ok=True)

    def run_ok(run) -> bool:
        return runconfig is None or run.attrs.get("configname") == runconfig

    def select(run, module, name) -> bool:
        return run_ok(run) and sel(run, module, name)

    files = []
    problems = []
    skipped = []
    configs_seen = set()
    sink = Sink(parsed_dir)
    try:
        for kind, paths in (("vec", inputs.vec), ("sca", inputs.sca)):
            for path in paths:
                if runconfig is not None:
                    cfgs = _configs_of(path)
                    if cfgs is not None:
                        configs_seen |= cfgs
                        if runconfig not in cfgs:
                            skipped.append(str(path))
                            continue
                res = read_result_file(path, kind, sink, select, inputs.vci_for(path), progress)
                problems += res.problems
                if res.info is not None:
                    files.append(res.info)
        if not files and problems:
            raise nothing_readable(problems)
        for run in list(sink.runs.values()):
            configs_seen.add(run.attrs.get("configname"))
            if not run_ok(run):
                del sink.runs[run.run_id]
        if not sink.runs:
            known = ", ".join(sorted(c for c in configs_seen if c)) or "none"
            raise ResultsError(f"no run of config {runconfig!r} in this folder (configs found: {known})",
                               path=inputs.root)
        logs = []
        for log in inputs.logs:
            for r in simrun.read_log(log):
                if runconfig is None or r["config"] in (None, runconfig):
                    r["log"] = str(log.relative_to(inputs.root))
                    logs.append(r)
        ini = _pick_ini(inputs)
        if ini is not None:
            shutil.copyfile(ini, parsed_dir / "omnetpp.ini")
        seconds = time.perf_counter() - t_start
        sink.files = files
        bytes_read = sum(f.get("bytes_read", f["bytes"]) for f in files)
        extra = {
            "results_dir": str(inputs.root), "runconfig": runconfig,
            "statistics_option": statistics if isinstance(statistics, str) else list(statistics),
            "selection": sel.describe(), "skipped_files": skipped, "simrun": logs,
            "ini": str(ini.relative_to(inputs.root)) if ini else None,
            "parse_seconds": seconds, "parse_peak_rss_mb": _peak_rss_mb(),
            "parser_backend": fastparse.backend(), "bytes_read": bytes_read,
            "problems": [p.to_dict() for p in problems],
        }
        sink.extra = extra
        sink.finish()
    finally:
        sink.close()
    summary = {
        "runs": [r for r in sink.runs],
        "files": [{"path": f["path"], "format": f["format"], "bytes": f["bytes"],
                   "index": f.get("index")} for f in files],
        "vectors": len(sink.vectors), "scalars": len(sink.scalars),
        "statistics": len(sink.statistics), "params": len(sink.params),
        "samples": int(sink.pairs), "bytes_read": bytes_read,
        "seconds": round(time.perf_counter() - t_start, 3), "logs": len(inputs.logs),
        "problems": [p.to_dict() for p in problems],
    }
    if progress:
        progress(f"parsed {len(files)} files, {summary['vectors']} vectors, "
                 f"{summary['samples']} samples in {summary['seconds']:.2f} s")
    return summary


def _pick_ini(inputs: Inputs) -> Path | None:
    if not inputs.ini:
        return None
    named = [p for p in inputs.ini if p.name == "omnetpp.ini"]
    pool = named or inputs.ini
    return min(pool, key=lambda p: (len(p.relative_to(inputs.root).parts), str(p)))


# ------------------------------------------------------------------------------------ stats
_SAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def _safe(s: str) -> str:
    return _SAFE.sub("_", s).strip("_") or "x"


def _stems(vectors: list, runs_by_id: dict) -> dict:
    """A unique, readable file stem per vector: module__name (run label first if several runs)."""
    several = len({v["run"] for v in vectors}) > 1
    out, used = {}, set()
    for v in vectors:
        stem = f"{_safe(v['module'])}__{_safe(v['name'])}"
        if several:
            r = runs_by_id.get(v["run"])
            label = v["run"]
            if r is not None and "configname" in r.attrs and "runnumber" in r.attrs:
                label = f"{r.attrs['configname']}-{r.attrs['runnumber']}"
            stem = f"{_safe(label)}__{stem}"
        if len(stem) > 150:
            stem = stem[:130] + "_" + hashlib.sha1(stem.encode()).hexdigest()[:10]
        base, i = stem, 2
        while stem.lower() in used:
            stem = f"{base}_{i}"
            i += 1
        used.add(stem.lower())
        out[v["key"]] = stem
    return out


def _stddev(fl: dict) -> str:
    """Standard deviation as OMNeT++'s tools report it: recomputed from count, sum and sqrsum
    (opp_scavetool does this; the stddev field in the file can differ in the 14th digit).
    Weighted statistics and counts below 2 keep the field as written."""
    try:
        n = float(fl["count"])
        total, sq = float(fl["sum"]), float(fl["sqrsum"])
    except (KeyError, ValueError):
        return fl.get("stddev", "")
    if n < 2 or "weights" in fl or not (math.isfinite(total) and math.isfinite(sq)):
        return fl.get("stddev", "")
    var = (sq - total * total / n) / (n - 1)
    return fmt(math.sqrt(var) if var > 0 else 0.0)


def _hist_rows(st) -> list:
    """(lower, upper, count) per bin; the first bin is the underflow, the last the overflow."""
    bins = st["bins"]
    rows = []
    for i, (edge, cnt) in enumerate(bins):
        upper = bins[i + 1][0] if i + 1 < len(bins) else "inf"
        rows.append((edge, upper, cnt))
    return rows


def stats(parsed_dir, out_dir, *, precision=100.0, statistics="all", progress=None,
          graphs=True) -> dict:
    """Write INFO.txt, omnetpp.ini, csv/, graphs/ and simrun/ of the archive into out_dir.

    graphs=False skips the PNG/PDF files (the benchmark reports their cost separately).
    """
    t_start = time.perf_counter()
    try:
        precision = float(precision)
    except (TypeError, ValueError):
        raise ResultsError(f"summarizing precision must be a number, not {precision!r}") from None
    if not (precision > 0 and math.isfinite(precision)):
        raise ResultsError(f"summarizing precision must be a positive number of seconds, not {precision!r}")
    sel = Selection(statistics)
    P = Parsed(parsed_dir)
    with open(Path(parsed_dir) / "parsed.json") as f:
        doc = json.load(f)
    out = Path(out_dir)
    for sub in ("csv/vectors", "graphs", "simrun"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    runs_by_id = {r.run_id: r for r in P.runs}
    ok = lambda item: sel(runs_by_id.get(item["run"]), item["module"], item["name"])  # noqa: E731

    scalars = [s for s in P.scalars if ok(s)]
    with open(out / "csv" / "scalars.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["run", "module", "name", "value"])
        for s in scalars:
            w.writerow([s["run"], s["module"], s["name"], s["value"]])

    statistics_ = [s for s in P.statistics if ok(s)]
    nbins = 0
    with open(out / "csv" / "statistics.csv", "w", newline="") as f, \
            open(out / "csv" / "histograms.csv", "w", newline="") as fh:
        w = csv.writer(f, lineterminator="\n")
        wh = csv.writer(fh, lineterminator="\n")
        w.writerow(["run", "module", "name", "count", "mean", "stddev", "min", "max", "sum"])
        wh.writerow(["run", "module", "name", "bin_lower", "bin_upper", "count"])
        for s in statistics_:
            fl = s["fields"]
            total = fl.get("sum", fl.get("weightedSum", ""))
            w.writerow([s["run"], s["module"], s["name"], fl.get("count", ""), fl.get("mean", ""),
                        _stddev(fl), fl.get("min", ""), fl.get("max", ""), total])
            for lo, hi, c in _hist_rows(s):
                wh.writerow([s["run"], s["module"], s["name"], lo, hi, c])
                nbins += 1

    vectors = [v for v in P.vectors if ok(v)]
    stems = _stems(vectors, runs_by_id)
    plotter = None
    drawn, empty, resampled = 0, [], 0
    t_graphs = 0.0
    last_note = time.monotonic()
    with open(out / "csv" / "vectors.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["run", "module", "name", "count", "mean", "stddev", "min", "max",
                    "first_time", "last_time", "file"])
        for i, v in enumerate(vectors):
            fname = ""
            if v["count"]:
                fname = stems[v["key"]] + ".csv"
                env = None
                if graphs:
                    from .graphs import Envelope
                    env = Envelope(float(v["first_time"]), float(v["last_time"]))
                _write_resampled(P, v, precision, out / "csv" / "vectors" / fname, env)
                resampled += 1
                if graphs:
                    tg = time.perf_counter()
                    if plotter is None:
                        from .graphs import Plotter
                        plotter = Plotter()
                    plotter.plot(v, env, out / "graphs" / stems[v["key"]])
                    drawn += 1
                    t_graphs += time.perf_counter() - tg
            else:
                empty.append(v)
            w.writerow([v["run"], v["module"], v["name"], v["count"], fmt(v["mean"]),
                        fmt(v["stddev"]), fmt(v["min"]), fmt(v["max"]), fmt(v["first_time"]),
                        fmt(v["last_time"]), ("vectors/" + fname) if fname else ""])
            if progress and time.monotonic() - last_note > 2.0:
                last_note = time.monotonic()
                progress(f"stats: {i + 1} of {len(vectors)} vectors")
    if plotter is not None:
        plotter.close()

    if (Path(parsed_dir) / "omnetpp.ini").is_file():
        shutil.copyfile(Path(parsed_dir) / "omnetpp.ini", out / "omnetpp.ini")

    stats_seconds = time.perf_counter() - t_start
    post_seconds = doc.get("parse_seconds", 0.0) + stats_seconds
    peak = max(doc.get("parse_peak_rss_mb", 0.0), _peak_rss_mb())
    sim_rows = _write_simrun(out / "simrun" / "simrun-stats.csv", doc.get("simrun", []),
                             post_seconds, peak)
    _write_info(out / "INFO.txt", doc, P, precision, sel, scalars, statistics_, vectors,
                empty, drawn, nbins, sim_rows, graphs)
    summary = {
        "runs": [r.run_id for r in P.runs],
        "scalars": len(scalars), "statistics": len(statistics_), "histogram_bins": nbins,
        "vectors": len(vectors), "empty_vectors": len(empty), "resampled": resampled,
        "graphs": drawn, "precision": precision, "selection": sel.describe(),
        "seconds": round(stats_seconds, 3), "graph_seconds": round(t_graphs, 3),
        "postprocessing_seconds": round(post_seconds, 3), "peak_rss_mb": round(peak, 1),
        "simrun": sim_rows[0] if sim_rows else None,
        "simrun_runs": sim_rows,
    }
    return summary


def _write_resampled(P: Parsed, v: dict, precision: float, path: Path, env) -> None:
    def pieces():
        for t, val in P.pieces(v["key"]):
            if env is not None:
                env.add(t, val)
            yield t, val

    last = float(v["last_time"])
    try:
        if env is None and grid_size(last, precision) * 16 <= v["count"]:  # coarse grid: look up
            rows = resample_held(lambda g: P.held(v["key"], g), precision, last)
        else:
            rows = resample(pieces(), precision, last)
        with open(path, "w") as f:
            f.write("time,value\n")
            for g, vals, has in rows:
                f.write("".join(
                    f"{gt:.15g},{fmt(x) if h else ''}\n" for gt, x, h in zip(g.tolist(), vals.tolist(), has.tolist())))
    except ValueError as e:
        raise ResultsError(f"cannot resample {v['module']} {v['name']}: {e}") from None


SIMRUN_COLUMNS = ["log", "run_id", "config", "run_number", "events", "sim_time", "elapsed",
                  "ev_per_sec", "simsec_per_sec", "ev_per_simsec", "messages_created",
                  "messages_present", "status_blocks", "end", "postprocessing_seconds",
                  "peak_memory_mb"]


def _write_simrun(path: Path, logs: list, post_seconds: float, peak: float) -> list:
    rows = []
    if not logs:
        logs = [{"log": None, "run_id": None, "config": None, "run_number": None,
                 "status_blocks": 0, "end": None, **{k: None for k in simrun.FIGURES}}]
    for r in logs:
        row = dict(r)
        row["postprocessing_seconds"] = round(post_seconds, 3)
        row["peak_memory_mb"] = round(peak, 1)
        rows.append(row)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(SIMRUN_COLUMNS)
        for r in rows:
            cells = []
            for c in SIMRUN_COLUMNS:
                val = r.get(c)
                if val is None:
                    val = simrun.NOT_IN_LOG if c in simrun.FIGURES or c == "log" else ""
                cells.append(val if isinstance(val, str) else fmt(val))
            w.writerow(cells)
    return rows


def _write_info(path, doc, P, precision, sel, scalars, statistics_, vectors, empty, drawn,
                nbins, sim_rows, graphs) -> None:
    L = []
    add = L.append
    add("OMNeT++ simulation results, post-processed by simpost (omnetpp_results)")
    add("=" * 72)
    add("")
    add(f"Results folder : {doc.get('results_dir')}")
    add(f"Run config     : {doc.get('runconfig') or '(all configs in the folder)'}")
    add(f"Statistics     : {doc.get('selection')}")
    add(f"Precision      : {precision:g} s (csv/vectors/: value held at every multiple of it)")
    add("")
    add(f"Runs ({len(P.runs)})")
    for r in P.runs:
        a = r.attrs
        add(f"  {r.run_id}")
        add(f"    config {a.get('configname', '?')}, run #{a.get('runnumber', '?')}, "
            f"network {a.get('network', '?')}, repetition {a.get('repetition', '?')}, "
            f"started {a.get('datetime', '?')}")
        if r.itervars:
            add("    itervars " + ", ".join(f"{k}={v}" for k, v in r.itervars.items()))
        shown = set()
        for k, v in r.config:
            if k in ("sim-time-limit", "seed-set", "repeat") and k not in shown:
                shown.add(k)  # the first entry wins in OMNeT++ (command line before ini)
                add(f"    {k} = {v}")
    add("")
    add("Result files read")
    for fi in doc.get("files", []):
        extra = f", index {fi.get('index')}" if fi.get("format") == "text" and fi.get("kind") == "vec" else ""
        add(f"  {Path(fi['path']).name}  ({fi['format']}, {fi['bytes']} bytes{extra})")
    for s in doc.get("skipped_files", []):
        add(f"  {Path(s).name}  (skipped: other config)")
    add("")
    add("Contents")
    add("  INFO.txt                 this file")
    add("  omnetpp.ini              the simulation's configuration" if doc.get("ini")
        else "  (no omnetpp.ini was found in the results folder)")
    add(f"  csv/scalars.csv          {len(scalars)} scalars: run,module,name,value")
    add(f"  csv/statistics.csv       {len(statistics_)} statistics/histograms: count,mean,stddev,min,max,sum")
    add(f"  csv/histograms.csv       {nbins} histogram bins: bin_lower,bin_upper,count "
        "(first row underflow from -inf, last row overflow to inf)")
    add(f"  csv/vectors.csv          {len(vectors)} vectors: count,mean,stddev,min,max,first/last time")
    add(f"  csv/vectors/             {len(vectors) - len(empty)} resampled vectors (time,value; "
        "empty value = nothing recorded yet)")
    if graphs:
        add(f"  graphs/                  {drawn} plots (PNG and PDF), one per non-empty vector")
    else:
        add("  graphs/                  not drawn (graphs disabled)")
    add("  simrun/simrun-stats.csv  simulation run figures from the Cmdenv log, post-processing time and memory")
    add("  MANIFEST.sha256          sha256sum of every file")
    if empty:
        add("")
        add(f"Declared vectors without data ({len(empty)}): no resampled file, no graph")
        for v in empty[:200]:
            add(f"  {v['module']} {v['name']}")
        if len(empty) > 200:
            add(f"  ... and {len(empty) - 200} more (see csv/vectors.csv, count 0)")
    add("")
    add("Simulation run (Cmdenv)")
    for r in sim_rows:
        if r.get("events") is None:
            add(f"  {r.get('log') or '(no Cmdenv log found)'}: figures not in log")
            continue
        add(f"  {r.get('log')}: {r['events']} events, {fmt(r['sim_time'])} s simulated in "
            f"{fmt(r['elapsed'])} s; messages created {fmt(r.get('messages_created'))}"
            + (f"; {r['end']}" if r.get("end") else ""))
    add(f"  post-processing {sim_rows[0]['postprocessing_seconds']} s, "
        f"peak memory {sim_rows[0]['peak_memory_mb']} MB")
    add("")
    Path(path).write_text("\n".join(L))


# ---------------------------------------------------------------------------------- archive
def sha256_file(path: Path) -> str:
    """Streamed in 1 MiB reads: archives and .vec files can be larger than memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def write_archive(content_dir, zip_path) -> dict:
    """MANIFEST.sha256 of every file, then a streamed zip of everything (ZIP64 when needed)."""
    root = Path(content_dir)
    zip_path = Path(zip_path)
    if not root.is_dir():
        raise ResultsError("archive content folder does not exist", path=root)
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if rel == "MANIFEST.sha256" or p.resolve() == zip_path.resolve():
                continue
            files.append((rel, p))
    files.sort()
    with open(root / "MANIFEST.sha256", "w") as f:
        for rel, p in files:
            f.write(f"{sha256_file(p)}  {rel}\n")
    files.append(("MANIFEST.sha256", root / "MANIFEST.sha256"))
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_name(zip_path.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6,
                         allowZip64=True) as zf:
        for rel, p in files:
            ctype = zipfile.ZIP_STORED if p.suffix.lower() in STORED else zipfile.ZIP_DEFLATED
            zf.write(p, rel, compress_type=ctype)
    os.replace(tmp, zip_path)
    return {"path": str(zip_path), "size": zip_path.stat().st_size,
            "sha256": sha256_file(zip_path), "files": len(files)}


def verify_archive(zip_path) -> int:
    """Check a downloaded archive against its MANIFEST.sha256: every member listed, every digest equal.

    Returns the number of files the manifest covers; any mismatch is a ResultsError naming the member.
    """
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist()) - {"MANIFEST.sha256"}
        if len(names) == len(zf.namelist()):
            raise ResultsError("archive has no MANIFEST.sha256", path=zip_path)
        listed = {}
        for line in zf.read("MANIFEST.sha256").decode().splitlines():
            digest, name = line.split(None, 1)
            listed[name.lstrip("*")] = digest
        if names != set(listed):
            raise ResultsError(f"MANIFEST.sha256 does not list exactly the archive's files: "
                               f"unlisted {sorted(names - set(listed))}, missing {sorted(set(listed) - names)}",
                               path=zip_path)
        for name, digest in listed.items():
            h = hashlib.sha256()
            with zf.open(name) as member:
                while chunk := member.read(1 << 20):
                    h.update(chunk)
            if h.hexdigest() != digest:
                raise ResultsError(f"{name} does not match MANIFEST.sha256", path=zip_path)
    return len(listed)
