"""Benchmark: an archive uploaded by the s3 backend to a loopback S3 server (moto), and its memory.

    .venv/bin/python benchmarks/bench_s3.py [--sizes 100M,1G] [--tmp DIR]

moto's server runs as its own process; each upload runs in a fresh child process (the backend's
full call: one pass for the SHA-256 and the composite checksum, the managed multipart transfer,
the HeadObject check), so the child's peak RSS (VmHWM) is the upload's alone. The throughput is
bounded by moto (Python, werkzeug), not by S3; it says what our side costs, not what AWS gives.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins"), str(REPO / "tests"), str(REPO / "benchmarks")]

from bench_local_cloud import make_file, peak_rss_mb  # noqa: E402
from local_cloud.settings import parse_size  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child(url: str, path: str) -> None:
    """One upload through open_backend, as the upload task makes it; prints its figures as JSON."""
    from emulators.fixtures import settings_of
    from emulators.s3 import MotoS3

    from storage_backends import open_backend, remote_name

    cfg = json.loads(os.environ["BENCH_S3"])
    s3 = MotoS3(url, cfg["access_key_id"], cfg["secret_access_key"])
    backend = open_backend(settings_of("bench_s3", s3.conn_json(keep_days=7)))
    from storage_backends.s3_backend import digests

    t0 = time.perf_counter()
    digests(path, os.path.getsize(path))  # the checksum pass alone, for scale (the upload repeats it)
    hashing = time.perf_counter() - t0
    before = peak_rss_mb("self")
    t0 = time.perf_counter()
    upload = backend.upload(path, remote_name("bench", "bench-s3", "ab" * 32), 7)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "hashing": hashing, "size": upload.size, "rss_before_mb": before,
                      "peak_rss_mb": peak_rss_mb("self")}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100M,1G")
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--child", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    import boto3
    import requests

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{url}/moto-api/", timeout=2)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise SystemExit("moto server did not start")
                time.sleep(0.2)
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="bench")
        key = iam.create_access_key(UserName="bench")["AccessKey"]
        creds = {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
        boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=creds["access_key_id"],
                     aws_secret_access_key=creds["secret_access_key"]).create_bucket(Bucket="simpost-lab")
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            print(f"{'size':>10} {'seconds':>8} {'MB/s':>8} {'of it hashing s':>16} {'RSS before MB':>14} "
                  f"{'upload peak RSS MB':>19} {'moto RSS MB':>12}")
            for text in args.sizes.split(","):
                size = parse_size(text)
                src = Path(tmp) / "archive.zip"
                make_file(src, size)
                out = subprocess.run([sys.executable, __file__, "--child", url, str(src)], check=True,
                                     capture_output=True, text=True, env={**os.environ, "BENCH_S3": json.dumps(creds)})
                fig = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{size / 1e6:>8,.0f}MB {fig['seconds']:>8.1f} {size / 1e6 / fig['seconds']:>8.1f} "
                      f"{fig['hashing']:>16.1f} {fig['rss_before_mb']:>14.0f} {fig['peak_rss_mb']:>19.0f} "
                      f"{peak_rss_mb(server.pid):>12.0f}")
                src.unlink()
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
