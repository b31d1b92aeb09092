"""Archive benchmark (make bench): write_archive (manifest + zip + its sha256) against `zip -r` on the
same folder: the archive parts of the real 194 MB OMNeT++ run resampled every BENCH_PRECISION s
(default 0.001: large CSVs).
Temp data stays in /tmp (BENCH_TMP to change).

    .venv/bin/python benchmarks/bench_archive.py
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omnetpp_results import parse, stats, write_archive
from omnetpp_results.archive import LEVEL

LARGE = Path(__file__).resolve().parents[2] / "shared" / "omnetpp-results-large" / \
    "routing-Net60StoreAndForward-10s.tar.xz"
PRECISION = float(os.environ.get("BENCH_PRECISION", "0.001"))


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    if shutil.which("zip") is None:
        print("bench_archive: `zip` is not installed (apt-get install zip); skipped", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as td:
        tmp = Path(td)
        subprocess.run(["tar", "-xJf", str(LARGE), "-C", str(tmp)], check=True)
        content = tmp / "content"
        parse(next(tmp.glob("routing-*")), tmp / "parsed")
        stats(tmp / "parsed", content, precision=PRECISION, graphs="none")
        size = sum(p.stat().st_size for p in content.rglob("*") if p.is_file())
        files = sum(1 for p in content.rglob("*") if p.is_file())
        ours = best_of(3, lambda: write_archive(content, tmp / "ours.zip"))
        (content / "MANIFEST.sha256").unlink()  # zip -r gets the same files write_archive started from

        def zip_r():
            (tmp / "zip-r.zip").unlink(missing_ok=True)
            subprocess.run(["zip", "-qr", f"-{LEVEL}", str(tmp / "zip-r.zip"), "."], cwd=content, check=True)

        theirs = best_of(3, zip_r)
        print(f"\narchive of {files} files, {size / 1e6:.0f} MB (real Net60 run, resampled at {PRECISION} s)\n")
        print("| tool | seconds | MB/s | zip MB |\n|---|---|---|---|")
        print(f"| write_archive (deflate {LEVEL}, sha256 of each file while zipped, sha256 of the zip) | {ours:.2f} | {size / 1e6 / ours:.0f} "
              f"| {(tmp / 'ours.zip').stat().st_size / 1e6:.1f} |")
        print(f"| zip -r -{LEVEL} | {theirs:.2f} | {size / 1e6 / theirs:.0f} | {(tmp / 'zip-r.zip').stat().st_size / 1e6:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
