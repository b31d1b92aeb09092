"""Benchmark: one storage_verify pass over 1,000 catalogued copies, per service, with its requests.

    .venv/bin/python benchmarks/bench_verify.py [--service local|dropbox|seafile|s3|all] [--copies 1000]
                                                [--size 64K] [--catalog URL]

Uploads N archives of random bytes through the service's backend and records each copy as the
upload task does (simpost.copies.upload_copy; not timed), then times one verify pass
(simpost.verify: one listing per backend for adoption, and per copy either the listing's entry
where the listing carries the checksum (Dropbox, Seafile) or a stat (local_cloud re-hashes the
stored bytes, S3 answers a HEAD with its SHA-256), and the catalog writes), counting the requests
the service received and the catalog's SQL statements. Services: local_cloud for real on loopback,
the Dropbox and Seafile emulators of tests/emulators, S3 as moto's server (the Dropbox emulator
pages like Dropbox at limit=2000). Goal (DESIGN.md): a pass over 1,000 copies in under a minute.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO), str(REPO / "tests")]

from sqlalchemy import event  # noqa: E402

from emulators.fixtures import settings_of  # noqa: E402
from local_cloud.settings import parse_size  # noqa: E402
from simpost.catalog import Catalog  # noqa: E402
from simpost.copies import upload_copy  # noqa: E402
from simpost.verify import verify_pass  # noqa: E402
from storage_backends import open_backend, remote_name  # noqa: E402
from storage_backends.base import file_sha256  # noqa: E402

SERVICES = ("local", "dropbox", "seafile", "s3")


def local_cloud(stack: contextlib.ExitStack, tmp: Path):
    """(backend, requests counter): a real local_cloud; requests counted on the client's session."""
    from emulators.fixtures import local_conn_json
    from local_cloud.testing import LocalCloudServer

    key = secrets.token_urlsafe(24)
    server = LocalCloudServer(tmp / "cloud", key)
    server.start()
    stack.callback(server.stop)
    backend = open_backend(settings_of("lc", local_conn_json(server.url, api_key=key, keep_days=0)))
    seen = collections.Counter()
    backend.service.client._session.hooks["response"].append(
        lambda r, *a, **k: seen.update([f"{r.request.method} {r.request.path_url.split('/')[2]}"
                                        f"{'/verify' if r.request.path_url.endswith('/verify') else ''}"]))
    return backend, seen


class EmulatorCalls:
    """An emulator's own record of the calls it answered, as a Counter of route names."""

    def __init__(self, emulator):
        self.emulator = emulator

    def clear(self) -> None:
        self.emulator.calls.clear()

    def items(self):
        return collections.Counter(call[0] for call in self.emulator.calls).items()


def dropbox(stack: contextlib.ExitStack, tmp: Path):
    from emulators.fixtures import _start_dropbox, dropbox_conn_json
    from emulators.tls import TestCA

    from storage_backends.dropbox_backend import LIST_PAGE

    emulator = _start_dropbox(TestCA(tmp / "tls"), stack)
    emulator.page_size = LIST_PAGE  # pages as Dropbox does at the backend's limit
    return open_backend(settings_of("dbx", dropbox_conn_json(keep_days=0))), EmulatorCalls(emulator)


def seafile(stack: contextlib.ExitStack, tmp: Path):
    from emulators.fixtures import SEAFILE_PASSWORD, SEAFILE_REPO, SEAFILE_TOKEN, SEAFILE_USER, seafile_conn_json
    from emulators.seafile_api import SeafileEmulator
    from emulators.server import LoopbackServer

    emulator = SeafileEmulator(token=SEAFILE_TOKEN, username=SEAFILE_USER, password=SEAFILE_PASSWORD,
                               repo_id=SEAFILE_REPO)
    server = LoopbackServer(emulator.app())
    emulator.base_url = server.url()
    stack.enter_context(server)
    return open_backend(settings_of("sea", seafile_conn_json(emulator.base_url, keep_days=0))), EmulatorCalls(emulator)


def s3(stack: contextlib.ExitStack, tmp: Path):
    """moto's server; requests counted by operation on the backend's boto3 client."""
    from emulators.s3 import moto_s3_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    server = stack.enter_context(moto_s3_server())
    backend = open_backend(settings_of("s3", server.conn_json(keep_days=0)))
    seen = collections.Counter()
    backend.service.client.meta.events.register("before-call.s3", lambda model, **kw: seen.update([model.name]))
    return backend, seen


def fill(catalog: Catalog, backend, backend_id: str, n: int, size: int, tmp: Path) -> None:
    """n archives uploaded and recorded the way the upload task does it."""
    path = tmp / "archive.zip"
    for i in range(n):
        path.write_bytes(os.urandom(size))
        sha = file_sha256(str(path))
        catalog.record_archive(sha, size, f"bench-{i}", "bench", f"run-{i}")
        copy = upload_copy(catalog, backend, backend_id, str(path), sha, remote_name("bench", f"bench-{i}", sha), 0,
                           last_try=True, log=lambda m: None)
        assert copy.state == "present", copy


def bench(service: str, n: int, size: int, catalog_url: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp_dir, contextlib.ExitStack() as stack:
        tmp = Path(tmp_dir)
        backend, requests_seen = {"local": local_cloud, "dropbox": dropbox, "seafile": seafile, "s3": s3}[service](
            stack, tmp)
        with Catalog.open(catalog_url or f"sqlite:///{tmp / 'catalog.db'}") as catalog:
            fill(catalog, backend, service, n, size, tmp)
            requests_seen.clear()
            statements = collections.Counter()
            event.listen(catalog.engine, "before_cursor_execute",
                         lambda conn, cur, sql, *a: statements.update([sql.split()[0].upper()]))
            t0 = time.perf_counter()
            report = verify_pass(catalog, {service: backend}, tmp / "work", batch=n, log=lambda m: None)
            seconds = time.perf_counter() - t0
            dialect = catalog.engine.dialect.name
    assert report.verified == n and not report.lost and not report.errors, report.summary()
    return {"service": service, "seconds": seconds, "summary": report.summary(), "dialect": dialect,
            "requests": dict(sorted(requests_seen.items())), "statements": dict(sorted(statements.items()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", choices=(*SERVICES, "all"), default="all")
    parser.add_argument("--copies", type=int, default=1000)
    parser.add_argument("--size", default="64K", help="bytes per archive (K/M/G)")
    parser.add_argument("--catalog", help="SQLAlchemy URL (default: a SQLite file in a temp dir)")
    args = parser.parse_args()
    for service in SERVICES if args.service == "all" else (args.service,):
        r = bench(service, args.copies, parse_size(args.size), args.catalog)
        print(f"verify pass over {args.copies} copies of {args.size} on {service} ({r['dialect']} catalog):"
              f" {r['seconds']:.2f} s ({1000 * r['seconds'] / args.copies:.1f} ms per copy)")
        print(f"  {r['summary']}")
        print(f"  {service} requests: {sum(r['requests'].values())} ({r['requests']})")
        print(f"  catalog statements: {sum(r['statements'].values())} ({r['statements']})")
        print("  goal: < 60 s" + ("" if r["seconds"] < 60 else "  ** MISSED **"))


if __name__ == "__main__":
    main()
