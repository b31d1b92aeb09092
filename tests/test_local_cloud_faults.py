"""Fault and abuse suite for local_cloud (issue 13): real servers, real sockets, a really full disk.

Each test states its figures; they are printed at the end of the module (also under -q):
slow connections held vs served, uploads interrupted and resumed with 0 partial files served,
downloads/deletes/abort/purge on a full disk (item 4), bytes lost after SIGKILL and restart.
"""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from test_local_cloud import KEY, auth, poll, rand_file

from local_cloud.client import LocalCloudClient, sha256_file
from local_cloud.testing import LocalCloudServer


@pytest.fixture(scope="module")
def figures(request):
    lines: list[str] = []
    yield lines
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # printed even when output is captured
            reporter.write_line("")
            reporter.write_sep("-", "local_cloud fault suite figures")
            for line in lines:
                reporter.write_line(line)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- slow connections ------------------------------------------------------------------------

def test_slow_connections_are_dropped_while_others_are_served(tmp_path, figures):
    """600 slowloris connections trickling a header byte every 0.3 s, against a 300-connection cap
    and a 2 s header timeout, while 8 clients download and list as fast as they can."""
    n_slow, cap = 600, 300
    with LocalCloudServer(tmp_path / "store", KEY, header_timeout=2, max_connections=cap) as srv:
        rec = LocalCloudClient(srv.url, KEY).upload(rand_file(tmp_path / "f.bin", 1 << 20), "f.bin")
        slow = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(n_slow)]
        for s in slow:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        stop = threading.Event()

        def trickle():  # one more header byte per connection every 0.3 s, never the end
            while not stop.is_set():
                for s in slow:
                    try:
                        s.send(b"a")
                    except OSError:
                        pass
                stop.wait(0.3)

        def client_work(_):
            ok = 0
            for _ in range(15):
                r = requests.get(rec["link"], timeout=10)
                ok += r.status_code == 200 and sha(r.content) == rec["sha256"]
            return ok

        trickler = threading.Thread(target=trickle)
        trickler.start()
        t0 = time.monotonic()
        try:
            with ThreadPoolExecutor(8) as pool:
                served = sum(pool.map(client_work, range(8)))
            poll(lambda: all(_closed(s) for s in slow), timeout=30, what="every slow connection to be dropped")
            all_dropped_after = time.monotonic() - t0
        finally:
            stop.set()
            trickler.join()
            for s in slow:
                s.close()
        assert served == 8 * 15
    figures.append(f"slow connections: {n_slow} opened trickling headers; all dropped within "
                   f"{all_dropped_after:.1f} s (header timeout 2 s, cap {cap}); normal downloads served "
                   f"meanwhile: {served}/{8 * 15}")


def _closed(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


# --- interrupted uploads ---------------------------------------------------------------------

class CuttingProxy:
    """A TCP proxy in front of the server that cuts upload connections after a random number of
    bytes, `cuts` times in all: the network failing under the shipped client."""

    def __init__(self, upstream_port: int, cuts: int, seed: int = 7):
        self.upstream = upstream_port
        self.cuts_left = cuts
        self.cut = 0
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.upstream))
            with self.lock:
                budget = self.rng.randint(1 << 20, 5 << 20) if self.cuts_left > 0 else None
            for src, dst, limit in ((down, up, budget), (up, down, None)):
                t = threading.Thread(target=self._pipe, args=(src, dst, limit, down, up), daemon=True)
                t.start()
                self.threads.append(t)

    def _pipe(self, src, dst, limit, down, up):
        sent = 0
        try:
            while data := src.recv(1 << 16):
                if limit is not None and sent + len(data) > limit:
                    with self.lock:
                        if self.cuts_left > 0:
                            self.cuts_left -= 1
                            self.cut += 1
                            raise ConnectionResetError("cut by the test proxy")
                    limit = None
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (down, up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.listener.close()


def test_uploads_cut_by_the_network_resume_and_nothing_partial_is_served(tmp_path, figures):
    sizes = [6 << 20, 9 << 20, 12 << 20, 7 << 20, 10 << 20, 8 << 20]
    files = [rand_file(tmp_path / f"u{i}.bin", n) for i, n in enumerate(sizes)]
    with LocalCloudServer(tmp_path / "store", KEY) as srv:
        proxy = CuttingProxy(srv.port, cuts=10)
        served, partial, stop = [0], [0], threading.Event()

        def watch():  # everything listed must download whole and match its checksum
            watcher = LocalCloudClient(srv.url, KEY)
            while not stop.is_set():
                for rec in watcher.list():
                    r = requests.get(rec["link"])
                    if r.status_code == 200:
                        served[0] += 1
                        partial[0] += len(r.content) != rec["size"] or sha(r.content) != rec["sha256"]

        watcher = threading.Thread(target=watch)
        watcher.start()
        progress: dict[int, list[int]] = {i: [] for i in range(len(files))}

        def upload(i):
            c = LocalCloudClient(f"http://127.0.0.1:{proxy.port}", KEY, chunk_size=2 << 20, retry_budget=60)
            return c.upload(files[i], files[i].name, progress=lambda done, total: progress[i].append(done))

        try:
            with ThreadPoolExecutor(3) as pool:
                records = list(pool.map(upload, range(len(files))))
        finally:
            stop.set()
            watcher.join()
            proxy.close()
        for f, rec in zip(files, records):
            assert rec["sha256"] == sha256_file(f)
            assert sha(requests.get(f"{srv.url}/f/{rec['id']}").content) == rec["sha256"]
        resent = sum(sum(max(0, a - b) for a, b in zip(p, p[1:]) if b < a) for p in progress.values())
        assert proxy.cut == 10 and partial[0] == 0
        assert sorted(p.name for p in (srv.folder / "files").iterdir()) == sorted(r["id"] for r in records)
        assert list((srv.folder / ".tmp").iterdir()) == []
    figures.append(f"interrupted uploads: {len(files)} uploads ({sum(sizes) >> 20} MiB) through a proxy that "
                   f"cut {proxy.cut} connections; all stored and verified; bytes sent twice: {resent >> 10} KiB; "
                   f"partial files served: {partial[0]} of {served[0]} downloads during the run")


# --- full disk (item 4) ----------------------------------------------------------------------

def fill(folder: Path) -> None:
    """Fill the file system under `folder` to its last byte (a new filler file each call)."""
    with open(folder / f"filler-{time.monotonic_ns()}", "wb", buffering=0) as f:
        for block in (1 << 20, 4096, 1):
            try:
                while f.write(b"\0" * block):
                    pass
            except OSError:
                continue
    assert shutil.disk_usage(folder).free == 0


def test_item4_full_disk_downloads_deletes_abort_and_purge_work(tmp_path, figures):
    """Every operation below runs on a disk with 0 bytes free (refilled before each)."""
    with LocalCloudServer(tmp_path / "store", KEY, small_disk="24m", min_free=0, purge_interval=0.5) as srv:
        c = LocalCloudClient(srv.url, KEY)
        disk = srv.disk_path()
        recs = [c.upload(rand_file(tmp_path / f"f{i}.bin", 2 << 20), f"f{i}.bin") for i in range(3)]
        sess = requests.post(srv.url + "/api/uploads", json={"name": "p.bin", "size": 3 << 20}, headers=auth()).json()
        part = os.urandom(1 << 20)
        requests.put(f"{srv.url}/api/uploads/{sess['upload_id']}", data=part,
                     headers={"Content-Range": f"bytes 0-{len(part) - 1}/{3 << 20}", **auth()})
        expiring = c.upload(rand_file(tmp_path / "e.bin", 1 << 20), "e.bin", keep_days=10 / 86400)
        fill(disk)
        assert (disk / "files" / expiring["id"]).exists()  # the purge below runs on the full disk

        downloads = [requests.get(rec["link"]) for rec in recs for _ in range(5)]
        ok_downloads = sum(r.status_code == 200 and sha(r.content) == r.headers["x-checksum-sha256"] for r in downloads)
        assert ok_downloads == len(downloads) == 15
        refused = requests.put(srv.url + "/api/files/late.bin", data=b"x" * 4096,
                               headers={"X-Sha256": sha(b"x" * 4096), **auth()})
        assert refused.status_code == 507
        poll(lambda: not (disk / "files" / expiring["id"]).exists(), timeout=30, what="the expiry purge")
        fill(disk)
        deletes = [requests.delete(f"{srv.url}/api/files/{rec['id']}", headers=auth()) for rec in recs[:2]]
        assert [d.status_code for d in deletes] == [204, 204]
        fill(disk)
        abort = requests.delete(f"{srv.url}/api/uploads/{sess['upload_id']}", headers=auth())
        assert abort.status_code == 204
        fill(disk)
        status = c.status()
        assert status["files"] == 1 and status["sessions"] == 0
        assert [r["id"] for r in c.list()] == [recs[2]["id"]]  # the registry agrees with the disk
        assert sorted(p.name for p in (disk / "files").iterdir()) == [recs[2]["id"]]
        assert list((disk / ".tmp").iterdir()) == []
        assert all(requests.get(r["link"]).status_code == 404 for r in recs[:2] + [expiring])
        assert requests.get(f"{srv.url}/api/uploads/{sess['upload_id']}", headers=auth()).status_code == 404
        for p in disk.glob("filler-*"):
            p.unlink()
        again = c.upload(rand_file(tmp_path / "after.bin", 1 << 20), "after.bin")  # and on with life
        assert sha(requests.get(again["link"]).content) == again["sha256"]
    assert "not counted" in srv.log_text()
    figures.append(f"full disk (tmpfs 24 MiB, refilled to 0 bytes free before each step): downloads "
                   f"{ok_downloads}/{len(downloads)} whole, expired file purged 1/1, deletes "
                   f"{sum(d.status_code == 204 for d in deletes)}/2, abort {int(abort.status_code == 204)}/1, "
                   f"new upload refused with {refused.status_code} (not 500); registry and disk agree")


# --- SIGKILL -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_sigkill_and_restart_lose_no_acknowledged_byte(tmp_path, figures):
    sizes = [8 << 20, 12 << 20, 16 << 20, 10 << 20, 6 << 20, 14 << 20]
    files = [rand_file(tmp_path / f"k{i}.bin", n) for i, n in enumerate(sizes)]
    srv = LocalCloudServer(tmp_path / "store", KEY)
    srv.start()
    kills, acknowledged, lock = [0], [], threading.Lock()
    progressed = threading.Event()

    def upload(i):
        c = LocalCloudClient(srv.url, KEY, chunk_size=2 << 20, retry_budget=60)
        rec = c.upload(files[i], files[i].name, progress=lambda d, t: progressed.set())
        with lock:
            acknowledged.append(rec)
        return rec

    try:
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(upload, i) for i in range(len(files))]
            while kills[0] < 3 and not all(f.done() for f in futures):
                progressed.clear()
                progressed.wait(30)  # let some bytes arrive, then pull the plug
                srv.kill()
                kills[0] += 1
                srv.start()
            records = [f.result() for f in futures]
        lost = 0
        for rec in acknowledged:
            r = requests.get(rec["link"])
            lost += rec["size"] if r.status_code != 200 or sha(r.content) != rec["sha256"] else 0
        assert kills[0] == 3 and lost == 0
        assert sorted(r["sha256"] for r in records) == sorted(sha256_file(f) for f in files)
        assert sorted(p.name for p in (srv.folder / "files").iterdir()) == sorted(r["id"] for r in records)
        status = LocalCloudClient(srv.url, KEY).status()
        assert status["quarantine"]["files"] == 0 and status["sessions"] == 0
    finally:
        srv.stop()
    figures.append(f"SIGKILL: server killed {kills[0]} times during {len(files)} concurrent uploads "
                   f"({sum(sizes) >> 20} MiB) and restarted; all {len(records)} stored and verified; "
                   f"acknowledged bytes lost: {lost}")
