"""Memory benchmark (make bench): peak RSS of parse, and of stats, on generated worst cases.

Each case is written into a temp folder (BENCH_TMP, default /tmp), then parse() and stats() each
run in a child process of their own, so every figure is that step's own peak (ru_maxrss). The goal
is <= 256 MB for every case whatever the input; a case the engine refuses with a clear
ResultsError counts as bounded too (the message is printed).

    .venv/bin/python benchmarks/bench_memory.py [--case NAME ...] [--scale 0.1] [--no-stats]
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
GOAL_MB = 256

CHILD = r"""
import json, resource, sys, time
from omnetpp_results import ResultsError, parse, stats
step, src, parsed, out = sys.argv[1:5]
t0 = time.perf_counter()
res = {}
try:
    if step == "parse":
        s = parse(src, parsed)
        res = {"vectors": s["vectors"], "scalars": s["scalars"], "samples": s["samples"],
               "problems": len(s.get("problems", [])),
               "index": [f.get("index") for f in s["files"] if f.get("index") not in (None, "none")]}
    else:
        s = stats(parsed, out, graphs=False)
        res = {"vectors": s["vectors"], "scalars": s["scalars"]}
except ResultsError as e:
    res = {"refused": str(e)[-300:]}
res["seconds"] = time.perf_counter() - t0
res["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(res))
"""


def _run_header(f, version=3, run="Bench-0-20261121-21:41:33-1"):
    f.write(f"version {version}\nrun {run}\nattr configname Bench\nattr network Net\n"
            f"attr runnumber 0\n\n".encode())


def case_big_sca(d: Path, scale: float) -> str:
    """A 200 MB .sca of 3.7 M scalars (one attr line every 100)."""
    n = int(3_700_000 * scale)
    with open(d / "big.sca", "wb") as f:
        _run_header(f)
        buf = []
        for i in range(n):
            buf.append(f"scalar Net.node[{i // 40}].app[{i % 7}] \"rx bytes:sum\" {i * 1.000001:.14g}\n")
            if i % 100 == 0:
                buf.append("attr unit B\n")
            if len(buf) >= 100_000:
                f.write("".join(buf).encode())
                buf = []
        f.write("".join(buf).encode() + b"\n")
    return f"{n} scalars, {(d / 'big.sca').stat().st_size / 1e6:.0f} MB"


def case_many_declarations(d: Path, scale: float) -> str:
    """1 M vector declarations (an attr line each), then a data line for every 10th vector."""
    n = int(1_000_000 * scale)
    with open(d / "decl.vec", "wb") as f:
        _run_header(f)
        for part in (lambda i: f"vector {i} Net.node[{i // 8}].app v{i % 8}:vector ETV\nattr unit s\n",
                     lambda i: f"{i}\t{i}\t1.5\t{i}\n" if i % 10 == 0 else ""):
            for a in range(0, n, 100_000):
                f.write("".join(part(i) for i in range(a, min(a + 100_000, n))).encode())
        f.write(b"\n")
    return f"{n} declarations, {(d / 'decl.vec').stat().st_size / 1e6:.0f} MB"


def case_vci_last_block(d: Path, scale: float) -> str:
    """A .vci that keeps only its last block line, beside a 665 MB .vec."""
    from omnetpp_results.generate import generate
    info = generate(d / "gen", vectors=1200, target_bytes=665e6 * scale, seed=11)
    vci = next((d / "gen").rglob("*.vci"))
    lines = vci.read_bytes().split(b"\n")
    blocks = [i for i, l in enumerate(lines) if l[:1].isdigit()]
    keep = set(blocks[-1:])
    vci.write_bytes(b"\n".join(l for i, l in enumerate(lines) if i not in blocks or i in keep))
    return f".vec {info['vec_bytes'] / 1e6:.0f} MB, .vci of 1 of {len(blocks)} blocks"


def case_one_line_vci(d: Path, scale: float) -> str:
    """A 500 MB .vci that is one line (starting like a fingerprint) beside a small .vec."""
    from omnetpp_results.generate import generate
    generate(d / "gen", vectors=24, target_bytes=200_000, seed=5)
    vec = next((d / "gen").rglob("*.vec"))
    vci = vec.with_suffix(".vci")
    size = int(500e6 * scale)
    with open(vci, "wb") as f:
        f.write(f"file {vec.stat().st_size} 1 ".encode())
        chunk = b"7" * (1 << 20)
        for _ in range(size >> 20):
            f.write(chunk)
    return f".vci {vci.stat().st_size / 1e6:.0f} MB in one line"


def case_one_line_log(d: Path, scale: float) -> str:
    """A 500 MB Cmdenv log that is one line after its first status line."""
    from omnetpp_results.generate import generate
    generate(d / "gen", vectors=24, target_bytes=200_000, seed=5)
    log = d / "gen" / "huge.stdout.log"
    with open(log, "wb") as f:
        f.write(b"** Event #0   t=0   Elapsed: 0s (0m 00s)  0% completed  (0% total)\n")
        chunk = b"x" * (1 << 20)
        for _ in range(int(500e6 * scale) >> 20):
            f.write(chunk)
    return f"log {log.stat().st_size / 1e6:.0f} MB in one line"


CASES = {"big-sca": case_big_sca, "1M-declarations": case_many_declarations,
         "vci-last-block": case_vci_last_block, "one-line-vci": case_one_line_vci,
         "one-line-log": case_one_line_log}


def child(step: str, src: Path, parsed: Path, out: Path, timeout: float) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "plugins") + os.pathsep + env.get("PYTHONPATH", "")
    try:
        r = subprocess.run([sys.executable, "-c", CHILD, step, str(src), str(parsed), str(out)],
                           capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"crashed": f"no result within {timeout:.0f} s (stopped)"}
    if r.returncode != 0:
        return {"crashed": (r.stderr.strip().splitlines() or ["?"])[-1][:300]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="run only these cases")
    ap.add_argument("--scale", type=float, default=1.0, help="size factor for quick runs")
    ap.add_argument("--no-stats", action="store_true", help="measure parse only")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds a step may take")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "plugins"))
    base = Path(os.environ.get("BENCH_TMP") or tempfile.gettempdir())
    print(f"memory goal {GOAL_MB} MB per step; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs", flush=True)
    rows = []
    for name in args.case or list(CASES):
        tmp = Path(tempfile.mkdtemp(prefix="simpost-mem-", dir=base))
        try:
            src = tmp / "src"
            src.mkdir()
            t = time.perf_counter()
            what = CASES[name](src, args.scale)
            print(f"{name}: {what} (written in {time.perf_counter() - t:.0f} s)", flush=True)
            for step in ("parse",) if args.no_stats else ("parse", "stats"):
                m = child(step, src, tmp / "parsed", tmp / "out", args.timeout)
                rows.append((name, step, m))
                rss = m.get("rss_mb")
                verdict = "" if rss is None else ("ok" if rss <= GOAL_MB else "OVER")
                print(f"  {step:5s} peak RSS {rss if rss is None else round(rss)} MB {verdict}  "
                      f"{json.dumps({k: v for k, v in m.items() if k != 'rss_mb'})[:400]}", flush=True)
                if "refused" in m or "crashed" in m:
                    break
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("| case | step | peak RSS MB | seconds | outcome |")
    print("|---|---|---|---|---|")
    for name, step, m in rows:
        outcome = m.get("refused") or m.get("crashed") or "ok"
        print(f"| {name} | {step} | {m.get('rss_mb', float('nan')):.0f} | {m.get('seconds', float('nan')):.1f} "
              f"| {outcome[:120]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
