"""Synthetic OMNeT++ 6.x result sets for demos, tests and the benchmark.

Shape follows the routing sample (Net60StoreAndForward, result-recording-modes=all): vectors of
8 names on router modules, ETV columns, data in interleaved blocks, some vectors declared but
empty; plus a matching .vci (right offsets, block summaries and fingerprint), a .sca with
scalars, a statistic and a histogram, omnetpp.ini and a Cmdenv log with status blocks.
Deterministic for a given seed. Default: small (a few hundred KB).
"""
from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path

import numpy as np

NAMES = ["busy:vector", "drop:vector", "endToEndDelay:vector", "hopCount:vector",
         "qlen:vector", "rxBytes:vector", "sourceAddress:vector", "txBytes:vector"]
TITLES = {"busy:vector": ("server busy state", "", "sample-hold"),
          "drop:vector": ("dropped packet byte length", "B", "none"),
          "endToEndDelay:vector": ("end-to-end delay of arrived packets", "s", "none"),
          "hopCount:vector": ("hop count of arrived packets", "", "none"),
          "qlen:vector": ("queue length", "", "sample-hold"),
          "rxBytes:vector": ("received packet byte length", "B", "none"),
          "sourceAddress:vector": ("source address of arrived packets", "", "none"),
          "txBytes:vector": ("transmitting packet byte length", "B", "none")}
NETWORK = "Net60"
CONFIG = "SyntheticNet60"
LINES_PER_BLOCK = 470  # ~15 KB blocks, like the real file


def _g(x) -> str:
    return "%.14g" % x


def _modules(n_vectors: int, names: list[str]) -> list[tuple[str, str]]:
    out = []
    i = 0
    while len(out) < n_vectors:
        for name in names:
            mod = f"{NETWORK}.rte[{i}].queue[0]" if name in ("busy:vector", "drop:vector", "qlen:vector",
                                                             "rxBytes:vector", "txBytes:vector") \
                else f"{NETWORK}.rte[{i}].app"
            out.append((mod, name))
            if len(out) == n_vectors:
                break
        i += 1
    return out


def _header(run_id: str, sim_time: float, seed: int) -> str:
    attrs = [("configname", CONFIG), ("datetime", "20261121-21:53:41"), ("datetimef", "20261121-215341"),
             ("experiment", CONFIG), ("inifile", "omnetpp.ini"), ("iterationvars", '""'),
             ("iterationvarsd", '""'), ("iterationvarsf", '""'), ("measurement", '""'),
             ("network", NETWORK), ("processid", "4242"), ("repetition", "0"), ("replication", "#0"),
             ("resultdir", "results"), ("runnumber", "0"), ("seedset", str(seed))]
    lines = ["version 3", f"run {run_id}"]
    lines += [f"attr {k} {v}" for k, v in attrs]
    lines += ["config cmdenv-express-mode true", "config cmdenv-status-frequency 1s",
              "config result-dir results", f"config sim-time-limit {_g(sim_time)}s",
              f"config network {NETWORK}", '**.result-recording-modes all'.join(["config ", ""])]
    return "\n".join(lines) + "\n\n"


def generate(out_dir, *, vectors: int = 24, target_bytes: float | None = None,
             sim_time: float | None = None, seed: int = 1, progress=None, with_data: int | None = None,
             index_empty: bool = True, names: int = len(NAMES)) -> dict:
    """Write results/Synthetic-#0.{vec,vci,sca}, omnetpp.ini and run0.stdout.log under out_dir.
    with_data: how many of the vectors record data, spread over them (default: all but two in
    three drop:vector); index_empty=False: the .vci declares only the vectors with data, as
    OMNeT++ 6 writes it. names: result names (past the routing sample's 8, `extraN:vector`
    names of sample-hold vectors, as an INET run has hundreds)."""
    t_start = time.perf_counter()
    out = Path(out_dir)
    res = out / "results"
    res.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    random.seed(seed)
    vectors = max(1, int(vectors))
    decl = _modules(vectors, NAMES[:names] + [f"extra{k}:vector" for k in range(max(0, names - len(NAMES)))])
    # ~1 in 6 vectors stays empty (declared, no data), like drop:vector in the real file
    active = [i for i, (m, n) in enumerate(decl) if not (n == "drop:vector" and i % 3)] if with_data is None \
        else sorted({int(i) for i in np.linspace(0, vectors - 1, max(1, min(with_data, vectors)))})
    if not active:
        active = [0]
    line_bytes = 26.0
    if target_bytes is None and sim_time is None:
        target_bytes = 300_000.0
    if target_bytes is not None:
        total_lines = int(max(target_bytes, 10_000) / line_bytes)
        rounds = max(1, total_lines // (LINES_PER_BLOCK * len(active)))
        sim_time = float(sim_time or max(1.0, round(rounds * 0.2, 1)))
    else:
        rounds = max(1, int(sim_time * 5))
    dt = sim_time / rounds
    run_id = f"{CONFIG}-0-20261121-21:53:41-4242"
    header = _header(run_id, sim_time, seed)
    vec_path, vci_path = res / "Synthetic-#0.vec", res / "Synthetic-#0.vci"
    vci_blocks: list[str] = []
    vci_decl: list[str] = []
    state = {i: {"ev": 0, "q": 0} for i in active}
    n_lines = 0
    event = 0
    with open(vec_path, "wb") as f:
        f.write(header.encode())
        pos = len(header.encode())
        decl_text = []
        for vid, (mod, name) in enumerate(decl):
            title, unit, interp = TITLES.get(name, (name.split(":")[0], "", "sample-hold"))
            d = [f"vector {vid} {mod} {name} ETV", f"attr interpolationmode {interp}",
                 "attr recordingmode vector", f"attr source {name.split(':')[0]}",
                 f'attr title "{title}, vector"']
            if unit:
                d.insert(2, f"attr unit {unit}")
            decl_text += d
        dt_bytes = ("\n".join(decl_text) + "\n").encode()
        f.write(dt_bytes)
        pos += len(dt_bytes)
        vci_decl = decl_text
        last_note = time.monotonic()
        for r in range(rounds):
            t0, t1 = r * dt, (r + 1) * dt
            for vid in active:
                mod, name = decl[vid]
                k = LINES_PER_BLOCK + int(rng.integers(-40, 40))
                ts = np.sort(rng.integers(int(t0 * 1e9), int(t1 * 1e9), size=k)) / 1e9
                if r == 0:
                    ts[0] = 0.0
                evs = event + np.sort(rng.integers(0, 8 * k, size=k))
                vals = _values(name, k, rng, state[vid])
                tl = ts.tolist()
                el = evs.tolist()
                vl = vals.tolist()
                if name == "endToEndDelay:vector":
                    vs = ["%.14g" % x for x in vl]
                else:
                    vs = [str(int(x)) for x in vl]
                p = f"{vid}\t"
                block = "".join([f"{p}{e}\t{t!r}\t{v}\n" for e, t, v in zip(el, tl, vs)])
                block = block.replace(".0\t", "\t")  # integral times print without a dot
                b = block.encode()
                f.write(b)
                arr = vals.astype(np.float64)
                vci_blocks.append(
                    f"{vid}\t{pos} {len(b)} {el[0]} {el[-1]} {_g(tl[0])} {_g(tl[-1])} {k} "
                    f"{_g(arr.min())} {_g(arr.max())} {_g(arr.sum())} {_g((arr * arr).sum())}")
                pos += len(b)
                n_lines += k
            event += 8 * LINES_PER_BLOCK + 400
            if progress and time.monotonic() - last_note > 5:
                last_note = time.monotonic()
                progress(f"generate: {pos / 1e6:.0f} MB")
        f.write(b"\n")
        pos += 1
    st = os.stat(vec_path)
    with open(vci_path, "w") as f:
        f.write(f"file {st.st_size} {int(st.st_mtime)}".ljust(64) + "\n")
        f.write(header.rstrip("\n") + "\n\n")
        # the .vci lists each vector's declaration followed by its blocks
        by_vec: dict[int, list[str]] = {}
        for line in vci_blocks:
            by_vec.setdefault(int(line.split("\t", 1)[0]), []).append(line)
        i = 0
        while i < len(vci_decl):
            line = vci_decl[i]
            vid = int(line.split()[1])
            listed = index_empty or vid in by_vec
            f.write(line + "\n" if listed else "")
            i += 1
            while i < len(vci_decl) and vci_decl[i].startswith("attr "):
                f.write(vci_decl[i] + "\n" if listed else "")
                i += 1
            for b in by_vec.get(vid, []):
                f.write(b + "\n")
    _write_sca(res / "Synthetic-#0.sca", header, decl, rng, sim_time)
    (out / "omnetpp.ini").write_text(
        "[General]\nnetwork = Net60\nsim-time-limit = %ss\n**.result-recording-modes = all\n\n"
        "[%s]\ndescription = \"synthetic result set of simpost's generator\"\n" % (_g(sim_time), CONFIG))
    _write_log(out / "run0.stdout.log", run_id, sim_time, event, seed)
    return {"out_dir": str(out), "vec": str(vec_path), "vec_bytes": vec_path.stat().st_size,
            "lines": n_lines, "vectors": len(decl), "empty_vectors": len(decl) - len(active),
            "blocks": len(vci_blocks), "sim_time": sim_time,
            "seconds": round(time.perf_counter() - t_start, 2)}


def _values(name: str, k: int, rng, st: dict) -> np.ndarray:
    if name == "busy:vector":
        return (np.arange(k) + st["ev"]) % 2
    if name == "qlen:vector":
        steps = rng.integers(-1, 2, size=k)
        q = np.maximum(st["q"] + np.cumsum(steps), 0)
        st["q"] = int(q[-1])
        return q
    if name in ("rxBytes:vector", "txBytes:vector", "drop:vector"):
        return rng.integers(1, 17, size=k) * 64
    if name == "endToEndDelay:vector":
        return np.round(rng.exponential(0.02, size=k), 12)
    if name == "hopCount:vector":
        return rng.integers(1, 12, size=k)
    return rng.integers(0, 60, size=k)


def _write_sca(path: Path, header: str, decl, rng, sim_time) -> None:
    lines = [header.rstrip("\n"), ""]
    mods = sorted({m for m, _ in decl})
    for m in mods[:50]:
        lines.append(f"par {m} typename \"\\\"Queue\\\"\"" if "queue" in m else f"par {m} typename \"\\\"App\\\"\"")
    for m in mods:
        n = int(rng.integers(100, 2000))
        lines += [f"scalar {m} packets:count {n}", "attr recordingmode count", "attr title \"packets, count\""]
        lines += [f"scalar {m} duration {_g(sim_time)}", "attr unit s"]
    x = rng.exponential(0.02, size=1000)
    edges = np.linspace(0, 0.1, 21)
    counts, _ = np.histogram(np.clip(x, 0, 0.1 - 1e-12), bins=edges)
    under, over = 0, 0
    m0 = mods[0]
    lines += [f"statistic {m0} endToEndDelay:stats", "field count 1000", f"field mean {_g(x.mean())}",
              f"field stddev {_g(x.std(ddof=1))}", f"field min {_g(x.min())}", f"field max {_g(x.max())}",
              f"field sum {_g(x.sum())}", f"field sqrsum {_g((x * x).sum())}", "attr recordingmode stats",
              "attr unit s"]
    lines += [f"statistic {m0} endToEndDelay:histogram", "field count 1000", f"field mean {_g(x.mean())}",
              f"field stddev {_g(x.std(ddof=1))}", f"field min {_g(x.min())}", f"field max {_g(x.max())}",
              f"field sum {_g(x.sum())}", f"field sqrsum {_g((x * x).sum())}",
              "attr recordingmode histogram", "attr unit s", f"bin\t-inf\t{under}"]
    lines += [f"bin\t{_g(e)}\t{c}" for e, c in zip(edges[:-1], counts)]
    lines += [f"bin\t{_g(edges[-1])}\t{over}", "", ""]
    path.write_text("\n".join(lines))


def _write_log(path: Path, run_id: str, sim_time: float, events: int, seed: int) -> None:
    rnd = random.Random(seed)
    L = ["OMNeT++ Discrete Event Simulation  (C) 1992-2024 Andras Varga, OpenSim Ltd.",
         "Version: 6.1, build: internal, edition: Academic Public License -- NOT FOR COMMERCIAL USE",
         "See the license for distribution terms and warranty disclaimer", "", "Setting up Cmdenv...", "",
         f"Preparing for running configuration {CONFIG}, run #0...", f"Assigned runID={run_id}",
         f'Setting up network "{NETWORK}"...', "Initializing...", "", "Running simulation..."]
    wall = max(1.0, sim_time / 10)
    steps = max(1, int(wall))
    created = 0
    for i in range(steps + 1):
        frac = i / steps
        ev, t, el = int(events * frac), sim_time * frac, wall * frac + (1e-05 if i == 0 else 0)
        created = int(ev * 0.04) + 120
        eps = 0 if i == 0 else ev / el
        L += [f"** Event #{ev}   t={_g(t)}   Elapsed: {_g(el)}s ({int(el // 60)}m {int(el % 60):02d}s)  "
              f"{int(frac * 100)}% completed  ({int(frac * 100)}% total)",
              f"     Speed:     ev/sec={_g(eps)}   simsec/sec={_g(0 if i == 0 else t / el)}   "
              f"ev/simsec={_g(0 if i == 0 else ev / t)}",
              f"     Messages:  created: {created}   present: {rnd.randint(100, 500)}   in FES: {rnd.randint(50, 150)}"]
    L += ["", f"<!> Simulation time limit reached -- at t={_g(sim_time)}s, event #{events}", "",
          "Calling finish() at end of Run #0...", "", "End."]
    path.write_text("\n".join(L) + "\n")


#: histograms of the edge-case set: name -> (module, count, bins as written); 4.x text
EDGE_HISTOGRAMS = [
    ("nanEdges:histogram", "Edge.host[0]", 3, [("-inf", 0), ("nan", 1), ("nan", 2), ("nan", 0)]),
    ("nanEdges:histogram", "Edge.host[1]", 3, [("-inf", 0), ("0", 1), ("1", 2), ("2", 0)]),
    ("infEdges:histogram", "Edge.host[0]", 3, [("-inf", 0), ("0", 1), ("inf", 2), ("inf", 0)]),
    ("oneValue:histogram", "Edge.host[0]", 1, [("-inf", 0), ("5", 1), ("5", 0)]),
    ("neverCollected:histogram", "Edge.host[0]", 0, [("-inf", 0), ("nan", 0), ("nan", 0)]),
    ("fine:histogram", "Edge.host[0]", 6, [("-inf", 0), ("0", 1), ("1", 3), ("2", 2), ("3", 0)]),
]


def generate_edge_cases(out_dir, *, points: int = 1000) -> dict:
    """A 4.x result set holding what a report cannot draw as usual, beside results it can: NaN and
    infinite histogram bin edges, a histogram of one value, one that never collected a value, a
    vector of a single sample, one of values near the largest double and one of `points` samples.
    Writes results/Edge-0.sca and results/Edge-0.vec under out_dir."""
    res = Path(out_dir) / "results"
    res.mkdir(parents=True, exist_ok=True)
    run = "Edge-0-20090220-15:51:13-1"
    header = [f"run {run}", "attr configname Edge", "attr network Edge", "attr runnumber 0", ""]
    sca = ["version 2", *header, "scalar Edge.host[0] \tsent \t12", "scalar Edge.host[1] \tsent \t7"]
    for name, module, count, bins in EDGE_HISTOGRAMS:
        sca += [f"statistic {module} \t{name}", f"field count {count}"]
        sca += [f"bin\t{edge}\t{c}" for edge, c in bins]
    (res / "Edge-0.sca").write_text("\n".join(sca) + "\n\n")
    vec = ["version 2", *header, "vector 0 Edge.host[0] single:vector TV", "vector 1 Edge.host[0] huge:vector TV",
           "vector 2 Edge.host[0] many:vector ETV", "0\t5\t1"]
    vec += [f"1\t{t}\t{v}" for t, v in ((0, "1.7e308"), (1, "-1.7e308"), (2, "1.7e308"))]
    times = np.arange(points) * 0.001
    vals = np.sin(times)
    vec += [f"2\t{i}\t{t:.17g}\t{v:.17g}" for i, (t, v) in enumerate(zip(times.tolist(), vals.tolist()))]
    (res / "Edge-0.vec").write_text("\n".join(vec) + "\n")
    return {"out_dir": str(out_dir), "sca": str(res / "Edge-0.sca"), "vec": str(res / "Edge-0.vec")}


def generate_study(out_dir, *, hosts=(10, 20), means=(1, 2, 3, 4, 5), repetitions: int = 3,
                   modules: int = 5, names: int = 4, seed: int = 1) -> dict:
    """A 6.x parameter study: one .sca per run (itervar lines numHosts and iaMean, `repeat`
    repetitions), `modules` x `names` scalars per run whose values depend on the variables plus
    noise (so every one of them varies), and one result the same in every run."""
    res = Path(out_dir) / "results"
    res.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    runs = 0
    for h in hosts:
        for m in means:
            for rep in range(repetitions):
                run = f"Study-{runs}-20261121-21:41:33-{runs}"
                lines = ["version 3", f"run {run}", "attr configname Study", "attr network Net",
                         f'attr iterationvars "$numHosts={h}, $iaMean={m}s"', f"attr repetition {rep}",
                         f"attr runnumber {runs}", f"itervar iaMean {m}s", f"itervar numHosts {h}",
                         f"config repeat {repetitions}", ""]
                noise = rng.normal(0.0, 0.05, size=(modules, names))
                for i in range(modules):
                    lines += [f"scalar Net.host[{i}] r{k} {_g(h / m + k + noise[i, k])}" for k in range(names)]
                lines.append("scalar Net fixed 42")
                (res / f"Study-numHosts={h},iaMean={m}-#{rep}.sca").write_text("\n".join(lines) + "\n\n")
                runs += 1
    return {"out_dir": str(out_dir), "runs": runs, "varying": modules * names,
            "combinations": len(hosts) * len(means)}


def generate_sca(out_dir, *, scalars: int = 3_800_000, seed: int = 1) -> dict:
    """One run's .sca with `scalars` scalars (about 53 bytes a line, 3.8 M make 200 MB): the size
    a study's or a large network's scalar file reaches. Written in pieces, memory stays small."""
    res = Path(out_dir) / "results"
    res.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    path = res / "Scalars-#0.sca"
    names = ["rxBytes:sum", "txBytes:sum", "drop:count", "queueLength:max", "endToEndDelay:mean",
             "hopCount:mean", "busy:timeavg", "packets:count"]
    with open(path, "w") as f:
        f.write(_header(f"{CONFIG}-0-20261121-21:53:41-4242", 100.0, seed))
        done = 0
        while done < scalars:
            n = min(200_000, scalars - done)
            idx = np.arange(done, done + n)
            vals = rng.random(n) * 1e6
            f.write("".join(f"scalar {NETWORK}.rte[{i // 64}].mod[{i % 64 // 8}] {names[i % 8]} {v:.10g}\n"
                            for i, v in zip(idx.tolist(), vals.tolist())))
            done += n
        f.write("\n")
    return {"out_dir": str(out_dir), "sca": str(path), "bytes": path.stat().st_size, "scalars": scalars}
