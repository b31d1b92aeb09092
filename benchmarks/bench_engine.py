"""Engine benchmark (make bench): the whole export of a run as the DAG does it (parse + stats with
the report + zip, default params, graphs "statistic") against the goals of issue 12, each case in
a fresh process; wall and CPU time (user+sys of the process and its drawing process, less noisy on a shared
machine), peak RSS of both, and the load average beside them. Temp data stays in /tmp (BENCH_TMP to change); nothing is written
into the repo.

  - the real Net60 run, 194 MB .vec, 1200 vectors (../shared/omnetpp-results-large): <= 3 s, <= 256 MB
  - a generated 2000-vector small file: <= 2 s
  - a generated ~1 GB .vec with its .vci: <= 6 s (and without the .vci, for scale)
  - per-vector graphs (graphs "vector") on the real run: <= 0.064 s per vector (the difference to
    the same export with graphs "none", divided by the number of PNGs)
  - a generated INET-like run, 1,700 vectors of 190 result names: <= 3 s
  - a generated 200 MB .sca of 3.8 M scalars: <= 5 s, <= 256 MB
  - a generated study, 1,000 runs (10 combinations x 100 repetitions, 5,000 varying results each):
    < 60 s, report.html < 20 MB (issue 20)

    .venv/bin/python benchmarks/bench_engine.py [--size BYTES] [--skip-large] [--repeat N]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LARGE = REPO.parent / "shared" / "omnetpp-results-large" / "routing-Net60StoreAndForward-10s.tar.xz"

CHILD = r"""
import json, resource, sys, tempfile, threading, time
import psutil
from omnetpp_results import parse, stats, write_archive
src, graphs, tmp = sys.argv[1], sys.argv[2], sys.argv[3]
draw_peak_kb, done = [0], threading.Event()

def watch():  # the drawing process's peak RSS (VmHWM), polled while it lives
    while not done.wait(0.05):
        for c in psutil.Process().children():
            try:
                with open(f"/proc/{c.pid}/status") as f:
                    hwm = next((int(l.split()[1]) for l in f if l.startswith("VmHWM")), 0)
                draw_peak_kb[0] = max(draw_peak_kb[0], hwm)
            except OSError:
                pass

threading.Thread(target=watch, daemon=True).start()

def cpu():  # this process and the drawing process it waited for
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))

t0, c0 = time.perf_counter(), cpu()
with tempfile.TemporaryDirectory(dir=tmp) as td:
    p = parse(src, td + "/parsed")
    t1 = time.perf_counter()
    s = stats(td + "/parsed", td + "/out", graphs=graphs)
    t2 = time.perf_counter()
    s_report_mb = __import__("os").path.getsize(td + "/out/report.html") / 1e6
    a = write_archive(td + "/out", td + "/results.zip")
    t3 = time.perf_counter()
done.set()
print(json.dumps({"parse": t1 - t0, "stats": t2 - t1 - s.report_seconds, "report": s.report_seconds,
                  "zip": t3 - t2, "total": t3 - t0, "cpu": cpu() - c0,
                  "graphs": s.graphs, "charts": s.charts, "draw_wait": s.draw_wait_seconds,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "draw_rss_mb": draw_peak_kb[0] / 1024,
                  "zip_mb": a.size / 1e6, "vectors": p.vectors, "samples": p.samples,
                  "report_mb": s_report_mb,
                  "index": next((f.index for f in p.files if f.index), None)}))
"""


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def measure(run_dir: Path, tmp: Path, graphs: str = "statistic") -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "plugins") + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", CHILD, str(run_dir), graphs, str(tmp)],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{r.stderr}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["load"] = load()
    return out


def best(run_dir: Path, tmp: Path, repeat: int, graphs: str = "statistic") -> dict:
    os.sync()  # earlier writes (unpack, generator) reach the disk before the clock starts
    return min((measure(run_dir, tmp, graphs) for _ in range(repeat)), key=lambda m: m["total"])


def row(label: str, m: dict, goal: float | None, rss_goal: float | None = None) -> dict:
    ok = (goal is None or m["total"] <= goal) and (rss_goal is None or m["rss_mb"] <= rss_goal)
    print(f"  {label:40s} {m['total']:6.2f} s wall, {m['cpu']:6.2f} s cpu (parse {m['parse']:.2f}, "
          f"stats {m['stats']:.2f}, report {m['report']:.2f}, zip {m['zip']:.2f}), peak RSS "
          f"{m['rss_mb']:.0f} MB (drawing process {m['draw_rss_mb']:.0f} MB), load {m['load']}", flush=True)
    return {"case": label, "goal": "" if goal is None else f"<= {goal:g} s" +
            (f", <= {rss_goal:g} MB" if rss_goal else ""), "ok": "yes" if ok else "NO", **m}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=float, default=1.07e9, help="bytes of the generated large .vec (default 1.07e9)")
    ap.add_argument("--skip-large", action="store_true", help="skip the generated ~1 GB file")
    ap.add_argument("--repeat", type=int, default=2, help="runs per case, the best counts (default 2)")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "plugins"))
    from omnetpp_results import fastparse
    from omnetpp_results.generate import generate, generate_sca, generate_study

    tmp = Path(tempfile.mkdtemp(prefix="simpost-bench-", dir=os.environ.get("BENCH_TMP")))
    rows: list = []
    try:
        print(f"parser back end: {fastparse.backend()}, threads {fastparse.threads()}, "
              f"load average {load()} on {os.cpu_count()} CPUs", flush=True)
        if LARGE.is_file():
            real = tmp / "real"
            real.mkdir()
            subprocess.run(["tar", "-xJf", str(LARGE), "-C", str(real)], check=True)
            run_dir = next(p for p in real.iterdir() if p.is_dir())
            rows.append(row("Net60 194 MB, 1200 vectors", best(run_dir, tmp, args.repeat), 3.0, 256))
            # the cost of a per-vector PNG: the same export with graphs "vector" against "none"
            none, m = best(run_dir, tmp, 1, graphs="none"), best(run_dir, tmp, 1, graphs="vector")
            per = (m["total"] - m["parse"] - none["total"] + none["parse"]) / max(m["graphs"], 1)
            print(f"  per-vector graphs: {m['graphs']} PNGs, {per:.3f} s per vector more than graphs "
                  f"\"none\" (goal <= 0.064), load {m['load']}", flush=True)
            rows.append({**row("Net60, graphs per vector", m, None), "goal": "<= 0.064 s/vector",
                         "ok": "yes" if per <= 0.064 else "NO"})
        else:
            print(f"(missing {LARGE}; real-file rows skipped)")
        inet = tmp / "inet"
        generate(inet, vectors=1700, names=190, target_bytes=30e6, seed=3)
        rows.append(row("generated 1,700 vectors, 190 names", best(inet, tmp, args.repeat), 3.0))
        shutil.rmtree(inet)
        sca = tmp / "sca"
        info = generate_sca(sca, scalars=3_800_000)
        m = best(sca, tmp, 1)
        rows.append(row(f"generated .sca {info['bytes'] / 1e6:.0f} MB, 3.8 M scalars", m, 5.0, 256))
        shutil.rmtree(sca)
        study = tmp / "study"
        info = generate_study(study, hosts=(10, 20), means=(1, 2, 3, 4, 5), repetitions=100, modules=50, names=100)
        m = best(study, tmp, 1)
        print(f"  study: {info['runs']} runs, report.html {m['report_mb']:.1f} MB (goal < 20)", flush=True)
        rows.append({**row(f"study {info['runs']} runs, {info['varying']} varying results", m, 60.0),
                     "ok": "yes" if m["total"] < 60 and m["report_mb"] < 20 else "NO"})
        shutil.rmtree(study)
        small = tmp / "small"
        generate(small, vectors=2000, target_bytes=1.3e6, seed=5)
        rows.append(row("generated 2000 vectors, 1.3 MB", best(small, tmp, args.repeat), 2.0))
        shutil.rmtree(small)
        if not args.skip_large:
            t = time.perf_counter()
            info = generate(tmp / "gen", vectors=1200, target_bytes=args.size, seed=7)
            print(f"generated {info['vec_bytes'] / 1e6:.0f} MB, {info['lines']} data lines in "
                  f"{time.perf_counter() - t:.1f} s", flush=True)
            subprocess.run(["cat", *map(str, (tmp / "gen").rglob("*.vec"))], stdout=subprocess.DEVNULL, check=True)
            label = f"generated {info['vec_bytes'] / 1e9:.2f} GB"
            rows.append(row(f"{label}, with .vci", best(tmp / "gen", tmp, args.repeat), 6.0))
            vci = next((tmp / "gen").rglob("*.vci"))
            vci.rename(tmp / "aside.vci")
            rows.append(row(f"{label}, without .vci", best(tmp / "gen", tmp, 1), None))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    hdr = ["case", "goal", "ok", "total", "cpu", "parse", "stats", "report", "zip", "rss_mb", "draw_rss_mb", "load"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for r in rows:
        print("| " + " | ".join(r[h] if isinstance(r[h], str) else f"{r[h]:.2f}" for h in hdr) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
