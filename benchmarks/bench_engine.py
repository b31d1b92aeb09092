"""Engine benchmark (make bench): parse + stats of (a) the real 194 MB OMNeT++ .vec and (b) a
~1 GB generated .vec of the same shape, each with and without its .vci; wall time, MB/s, peak
RSS, and the ratio to `wc -l` on the same file in the same run. Temp data stays in /tmp
(BENCH_TMP to change); nothing is written into the repo.

    .venv/bin/python benchmarks/bench_engine.py [--size BYTES] [--skip-large] [--graphs N]
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
import json, resource, sys, tempfile, time
from omnetpp_results import parse, stats
src, graphs, stat = sys.argv[1], sys.argv[2] == "1", json.loads(sys.argv[3])
t0 = time.perf_counter()
with tempfile.TemporaryDirectory(dir=sys.argv[4]) as td:
    p = parse(src, td + "/parsed", statistics=stat)
    t1 = time.perf_counter()
    s = stats(td + "/parsed", td + "/out", statistics=stat, graphs=graphs)
    t2 = time.perf_counter()
print(json.dumps({"parse": t1 - t0, "stats": t2 - t1, "total": t2 - t0,
                  "graph_seconds": s["graph_seconds"], "graphs": s["graphs"],
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "index": p["files"][0]["index"], "samples": p["samples"], "vectors": p["vectors"]}))
"""


def wc_seconds(path: Path) -> float:
    best = None
    for _ in range(2):
        t = time.perf_counter()
        subprocess.run(["wc", "-l", str(path)], check=True, capture_output=True)
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    return best


def measure(run_dir: Path, tmp: Path, graphs=False, statistics="all") -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "plugins") + os.pathsep + env.get("PYTHONPATH", "")
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CHILD, str(run_dir), "1" if graphs else "0",
                        json.dumps(statistics), str(tmp)],
                       capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{r.stderr}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["wall"] = wall
    return out


def bench_dataset(label: str, run_dir: Path, tmp: Path, rows: list) -> None:
    vec = next((run_dir / "results").glob("*.vec"))
    vci = vec.with_suffix(".vci")
    size = vec.stat().st_size
    subprocess.run(["cat", str(vec)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
    for with_index in (True, False):
        aside = tmp / "aside.vci"
        if not with_index:
            shutil.move(vci, aside)
        try:
            os.sync()  # let earlier writes (unpack, generator) reach the disk first
            wc = wc_seconds(vec)
            m = min((measure(run_dir, tmp) for _ in range(2)), key=lambda x: x["total"])
        finally:
            if not with_index:
                shutil.move(aside, vci)
        rows.append({"file": label, "vci": "yes" if with_index else "no", "MB": size / 1e6,
                     "index": m["index"], "parse_s": m["parse"], "stats_s": m["stats"],
                     "total_s": m["total"], "MB/s": size / 1e6 / m["total"], "rss_mb": m["rss_mb"],
                     "wc_s": wc, "x_wc": m["total"] / wc, "samples": m["samples"]})
        print(f"  {label:28s} vci={'yes' if with_index else 'no ':3s} {m['total']:6.2f} s "
              f"({m['parse']:.2f} parse + {m['stats']:.2f} stats), peak RSS {m['rss_mb']:.0f} MB, "
              f"wc -l {wc:.2f} s", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=float, default=1.07e9, help="bytes of the generated .vec (default 1.07e9)")
    ap.add_argument("--skip-large", action="store_true", help="skip the generated file")
    ap.add_argument("--graphs", type=int, default=57,
                    help="also time graphs for the real file's endToEndDelay vectors (0: skip)")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "plugins"))
    from omnetpp_results import fastparse
    from omnetpp_results.generate import generate

    base = Path(os.environ.get("BENCH_TMP") or tempfile.gettempdir())
    tmp = Path(tempfile.mkdtemp(prefix="simpost-bench-", dir=base))
    rows: list = []
    try:
        print(f"parser back end: {fastparse.backend()}, threads {fastparse._threads()}, "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
        if LARGE.is_file():
            real = tmp / "real"
            real.mkdir()
            t = time.perf_counter()
            subprocess.run(["tar", "-xJf", str(LARGE), "-C", str(real)], check=True)
            print(f"unpacked {LARGE.name} in {time.perf_counter() - t:.1f} s", flush=True)
            run_dir = next(p for p in real.iterdir() if p.is_dir())
            bench_dataset("real Net60 10s (OMNeT++ 6.1)", run_dir, tmp, rows)
            if args.graphs:
                m = measure(run_dir, tmp, graphs=True, statistics=["qlen:vector"][:1] if args.graphs > 60 else ["endToEndDelay:vector", "hopCount:vector", "sourceAddress:vector"])
                print(f"  graphs: {m['graphs']} vectors (PNG+PDF) in {m['graph_seconds']:.1f} s = "
                      f"{m['graph_seconds'] / max(m['graphs'], 1):.2f} s per vector", flush=True)
        else:
            print(f"(missing {LARGE}; real-file rows skipped)")
        if not args.skip_large:
            t = time.perf_counter()
            info = generate(tmp / "gen", vectors=1200, target_bytes=args.size, seed=7)
            print(f"generated {info['vec_bytes'] / 1e6:.0f} MB, {info['lines']} data lines, "
                  f"{info['blocks']} blocks in {time.perf_counter() - t:.1f} s", flush=True)
            bench_dataset(f"generated {info['vec_bytes'] / 1e9:.2f} GB", tmp / "gen", tmp, rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    hdr = ["file", "vci", "MB", "parse_s", "stats_s", "total_s", "MB/s", "rss_mb", "wc_s", "x_wc"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for r in rows:
        cells = [r["file"], r["vci"], f"{r['MB']:.0f}", f"{r['parse_s']:.2f}", f"{r['stats_s']:.2f}",
                 f"{r['total_s']:.2f}", f"{r['MB/s']:.0f}", f"{r['rss_mb']:.0f}", f"{r['wc_s']:.2f}",
                 f"{r['x_wc']:.0f}"]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
