"""Benchmark: local_cloud upload and download throughput on loopback, next to `cp` as the floor.

    .venv/bin/python benchmarks/bench_local_cloud.py [--sizes 100M,1G] [--tmp DIR]

For each size a fresh server is started (so its peak RSS, VmHWM, belongs to that size alone); the
upload is the client's full call (64 MiB ranges while the client hashes the file in a thread,
server-side SHA-256 while streaming to disk, verify, fsync, rename), the download streams the
link to a file. Data lives in a temp dir outside the repo.
Goal (DESIGN.md): >= 200 MB/s both ways, server memory independent of file size.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local_cloud.settings import parse_size  # noqa: E402
from local_cloud.client import LocalCloudClient, sha256_file  # noqa: E402
from local_cloud.testing import LocalCloudServer  # noqa: E402


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_file(path: Path, size: int) -> None:
    """Random bytes, so nothing on the way can profit from compression or repetition."""
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(1 << 22, left)
            f.write(os.urandom(n))
            left -= n


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_size(tmp: Path, size: int, rows: list, repeat: int) -> None:
    label = f"{size / 1e6:,.0f} MB"
    src = tmp / "src.bin"
    make_file(src, size)
    mb = size / 1e6
    t_cp = timed(lambda: subprocess.run(["cp", str(src), str(tmp / "cp.bin")], check=True))
    rows.append((label, "cp (floor)", t_cp, mb / t_cp, None))
    (tmp / "cp.bin").unlink()
    src_sha = ""

    def hash_src():
        nonlocal src_sha
        src_sha = sha256_file(src)

    t_sha = timed(hash_src)
    rows.append((label, "sha256 of the file alone (reference)", t_sha, mb / t_sha, None))
    key = secrets.token_urlsafe(24)
    srv = LocalCloudServer(tmp / "store", key, max_size=str(size * 2), log_level="warning")
    ups, downs, ok = [], [], True
    with srv:
        rss_idle = peak_rss_mb(srv.proc.pid)
        client = LocalCloudClient(srv.url, key, timeout=300)
        dst = tmp / "down.bin"
        for i in range(repeat):
            rec = {}
            ups.append(timed(lambda: rec.update(client.upload(src, f"bench-{i}.bin"))))
            downs.append(timed(lambda: client.download(rec["link"], dst)))
            ok = ok and sha256_file(dst) == rec["sha256"] == src_sha
            dst.unlink()
            client.delete(rec["id"])  # the next round is a fresh upload, not a dedup hit
        rss = peak_rss_mb(srv.proc.pid)
    for what, times in (("upload (client.upload, end to end)", ups), ("download (GET link -> file)", downs)):
        best, median = min(times), statistics.median(times)
        rows.append((label, f"{what}, best of {repeat}", best, mb / best, rss))
        rows.append((label, f"{what}, median of {repeat}", median, mb / median, None))
    rows.append((label, f"server idle RSS; round trips sha256 {'equal' if ok else 'DIFFERENT'}", None, None, rss_idle))
    shutil.rmtree(tmp / "store")
    src.unlink()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100M,1G", help="comma-separated sizes (binary units)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds per size (the box is shared: best and median)")
    ap.add_argument("--tmp", default=None, help="scratch folder (default: system temp, outside the repo)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-local-cloud-", dir=args.tmp))
    rows: list = []
    try:
        for s in args.sizes.split(","):
            bench_size(tmp, parse_size(s), rows, args.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nlocal_cloud on loopback ({os.cpu_count()} CPUs, load average {load}, temp in {Path(tmp).parent})\n")
    print(f"| {'size':>9} | {'operation':<56} | {'seconds':>7} | {'MB/s':>7} | {'server peak RSS MB':>18} |")
    print(f"|{'-' * 11}|{'-' * 58}|{'-' * 9}|{'-' * 9}|{'-' * 20}|")
    for label, op, secs, rate, rss in rows:
        s = f"{secs:7.2f}" if secs is not None else " " * 7
        r = f"{rate:7.0f}" if rate is not None else " " * 7
        m = f"{rss:18.1f}" if rss is not None else " " * 18
        print(f"| {label:>9} | {op:<56} | {s} | {r} | {m} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
