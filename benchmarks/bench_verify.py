"""Benchmark: one storage_verify pass over 1,000 catalogued copies on a real local_cloud.

    .venv/bin/python benchmarks/bench_verify.py [--copies 1000] [--size 64K] [--catalog URL]

Uploads N archives of random bytes to a fresh local_cloud on loopback (not timed), records each
with its copy in a catalog (a SQLite file by default), then times one verify pass (simpost.verify:
listing for adoption, a stat per copy, which makes local_cloud re-hash the stored bytes, and the
catalog writes), counting the HTTP requests local_cloud received and the catalog's SQL statements.
Goal (DESIGN.md): a pass over 1,000 copies in under a minute.
"""
from __future__ import annotations

import argparse
import collections
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event  # noqa: E402

from local_cloud.settings import parse_size  # noqa: E402
from local_cloud.testing import LocalCloudServer  # noqa: E402
from simpost.catalog import Catalog  # noqa: E402
from simpost.verify import verify_pass  # noqa: E402
from storage_backends import open_backend, remote_name  # noqa: E402
from storage_backends.settings import from_connection  # noqa: E402


def local_backend(url: str, key: str):
    conn = SimpleNamespace(conn_id="bench_local", password=key, description="bench", extra={
        "storage_backend": "bench", "storage_backend_id": "local", "storage_backend_config": f'{{"server": "{url}"}}',
        "storage_backend_keep_days": 0, "storage_backend_active": True})
    return open_backend(from_connection(conn))


def fill(catalog: Catalog, backend, n: int, size: int, tmp: Path) -> None:
    path = tmp / "archive.zip"
    for i in range(n):
        path.write_bytes(os.urandom(size))
        name = remote_name("bench", f"bench-{i}", "0" * 64)
        up = backend.upload(str(path), name, 0)
        catalog.record_archive(up.sha256, up.size, f"bench-{i}", "bench", f"run-{i}")
        catalog.record_copy(up.sha256, "lc", "present", remote_id=up.remote_id, remote_name=name, link=up.link,
                            uploaded=up.uploaded_at, checksum=f"sha256:{up.sha256}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=1000)
    parser.add_argument("--size", default="64K", help="bytes per archive (K/M/G)")
    parser.add_argument("--catalog", help="SQLAlchemy URL (default: a SQLite file in a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp_dir:
        tmp = Path(tmp_dir)
        key = secrets.token_urlsafe(24)
        server = LocalCloudServer(tmp / "cloud", key)
        server.start()
        try:
            backend = local_backend(server.url, key)
            requests_seen = collections.Counter()
            backend.service.client._session.hooks["response"].append(
                lambda r, *a, **k: requests_seen.update([f"{r.request.method} {r.request.path_url.split('/')[2]}"
                                                         f"{'/verify' if r.request.path_url.endswith('/verify') else ''}"]))
            with Catalog.open(args.catalog or f"sqlite:///{tmp / 'catalog.db'}") as catalog:
                fill(catalog, backend, args.copies, parse_size(args.size), tmp)
                requests_seen.clear()
                statements = collections.Counter()
                event.listen(catalog.engine, "before_cursor_execute",
                             lambda conn, cur, sql, *a: statements.update([sql.split()[0].upper()]))
                t0 = time.perf_counter()
                report = verify_pass(catalog, {"lc": backend}, tmp / "work", batch=args.copies, log=lambda m: None)
                seconds = time.perf_counter() - t0
        finally:
            server.stop()
    print(f"verify pass over {args.copies} copies of {args.size} on local_cloud ({catalog.engine.dialect.name} catalog):"
          f" {seconds:.2f} s ({1000 * seconds / args.copies:.1f} ms per copy)")
    print(f"  {report.summary()}")
    print(f"  local_cloud requests: {sum(requests_seen.values())} ({dict(sorted(requests_seen.items()))})")
    print(f"  catalog statements: {sum(statements.values())} ({dict(sorted(statements.items()))})")
    print("  goal: < 60 s" + ("" if seconds < 60 else "  ** MISSED **"))


if __name__ == "__main__":
    main()
