"""Command line: `python -m omnetpp_results export|generate ...` (exit code 2 on a clear error)."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

from .contents import GRAPHS
from .errors import ResultsError


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _statistics_arg(values):
    if not values:
        return "all"
    if len(values) == 1:
        return values[0]  # a preset name, or a single pattern (Selection tells them apart)
    return list(values)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m omnetpp_results",
                                 description="Post-process OMNeT++ result files into the simpost archive parts.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("export", help="parse RESULTS_DIR and write the archive's content (csv/, graphs/, "
                                       "simrun/, INFO.txt, report.html, report.pdf) into OUT_DIR")
    ex.add_argument("results_dir")
    ex.add_argument("out_dir")
    ex.add_argument("--precision", type=float, default=100.0, help="seconds between resampled points (default 100)")
    ex.add_argument("--statistics", nargs="+", metavar="all|ops|PATTERN",
                    help="'all' (default), the 'ops' preset, or glob patterns on result names")
    ex.add_argument("--runconfig", help="keep only the runs of this OMNeT++ config")
    ex.add_argument("--graphs", choices=GRAPHS, default="statistic",
                    help="PNGs under graphs/: the report's charts, one per result name (statistic, the "
                         "default), one per vector (vector), or none; the report is always written")
    ex.add_argument("--resources", type=json.loads, metavar="JSON",
                    help="what the simulator measured, e.g. '{\"peak_sim_ram_bytes\": 1e9, "
                         "\"sim_wall_seconds\": 42}' (wins over a `time -v` file in RESULTS_DIR)")
    ex.add_argument("--zip", metavar="ZIP", help="also write the archive (with MANIFEST.sha256) to ZIP")
    ex.add_argument("--quiet", action="store_true", help="no progress on stderr")
    ge = sub.add_parser("generate", help="write a synthetic, format-faithful OMNeT++ result set")
    ge.add_argument("out_dir")
    ge.add_argument("--vectors", type=int, default=24)
    g = ge.add_mutually_exclusive_group()
    g.add_argument("--target-bytes", type=float, help="approximate .vec size in bytes (e.g. 1e9)")
    g.add_argument("--sim-time", type=float, help="simulated seconds")
    ge.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "export":
            from . import parse, stats, write_archive
            progress = None if args.quiet else _stderr
            stat = _statistics_arg(args.statistics)
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="omnetpp-parsed-") as td:
                p = parse(args.results_dir, td, runconfig=args.runconfig, statistics=stat,
                          progress=progress)
                s = stats(td, args.out_dir, precision=args.precision, statistics=stat, graphs=args.graphs,
                          resources=args.resources, progress=progress)
            out = {"parse": p.as_dict(), "stats": s.as_dict(), "seconds": round(time.perf_counter() - t0, 3)}
            if args.zip:
                out["archive"] = write_archive(args.out_dir, args.zip).as_dict()
            print(json.dumps(out, indent=1, default=str))
        else:
            from .generate import generate
            info = generate(args.out_dir, vectors=args.vectors, target_bytes=args.target_bytes,
                            sim_time=args.sim_time, seed=args.seed,
                            progress=_stderr)
            print(json.dumps(info, indent=1))
    except ResultsError as e:
        _stderr(f"error: {e}")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
