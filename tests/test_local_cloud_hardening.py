"""local_cloud under hostile input and bad luck (issue 13 items 3, 5, 6, 13), real server processes.

Each test names the item it guards; the full-disk cases (item 4) and the figures are in
test_local_cloud_faults.py.
"""
from __future__ import annotations

import configparser
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from test_local_cloud import KEY, auth, poll, rand_file, raw_request, run_cli

from local_cloud.client import LocalCloudClient, LocalCloudError, sha256_file
from local_cloud.names import name_problem
from local_cloud.ratelimit import AuthFailures
from local_cloud.redact import link_tag
from local_cloud.testing import LocalCloudServer

REPO = Path(__file__).resolve().parents[1]


def open_sockets(port: int, n: int, first_bytes: bytes = b"") -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if first_bytes:
            s.sendall(first_bytes)
        socks.append(s)
    return socks


def closed_by_server(s: socket.socket) -> bool:
    """True once the server has closed the connection (EOF or reset); never blocks."""
    s.setblocking(False)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


# --- item 3: slow and idle connections ---------------------------------------------------------

def test_item3_connections_without_a_complete_header_are_closed_and_logged(tmp_path):
    with LocalCloudServer(tmp_path / "store", KEY, header_timeout=2) as srv:  # 10 s by default
        half = open_sockets(srv.port, 60, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        silent = open_sockets(srv.port, 40)
        try:
            for _ in range(30):  # others keep being served meanwhile
                assert requests.get(srv.url + "/health", timeout=5).status_code == 200
            poll(lambda: all(closed_by_server(s) for s in half + silent), timeout=30,
                 what="the server to close connections that never sent a whole header")
        finally:
            for s in half + silent:
                s.close()
        assert "closed connection(s) that sent no complete request" in srv.log_text()
        assert "no complete header within 2 s" in srv.log_text()


def test_item3_oversized_header_is_refused_with_431(tmp_path):
    with LocalCloudServer(tmp_path / "store", KEY) as srv:  # the default limit, 64 KiB
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            try:
                for _ in range(100):
                    s.sendall(b"X-Filler: " + b"a" * 1000 + b"\r\n")
                s.sendall(b"\r\n")
            except OSError:
                pass  # the server may close while we are still sending
            reply = s.recv(65536)
        assert reply.startswith(b"HTTP/1.1 431")
        assert requests.get(srv.url + "/health", timeout=5).status_code == 200


def test_item3_an_oversized_header_arriving_in_one_piece_is_refused_too(tmp_path):
    """The whole request in one segment: the chunk that completes the header is counted before parsing."""
    with LocalCloudServer(tmp_path / "store", KEY) as srv:
        request = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Filler: " + b"a" * 70_000 + b"\r\n\r\n"
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(request)
            reply = s.recv(65536)
        assert reply.startswith(b"HTTP/1.1 431")
        assert requests.get(srv.url + "/health", headers={"X-Filler": "a" * 60_000}, timeout=5).status_code == 200


def test_item3_a_flood_of_idle_connections_cannot_lock_clients_out(tmp_path):
    """What issue 13 reproduced: 1024 descriptors (systemd's default) and 1100 idle connections."""
    with LocalCloudServer(tmp_path / "store", KEY, max_open_files=1024) as srv:
        flood = open_sockets(srv.port, 1100)
        try:
            served = sum(requests.get(srv.url + "/health", timeout=5).status_code == 200 for _ in range(50))
            assert served == 50
            cap = int(re.search(r"at most (\d+) connections", srv.log_text())[1])
            assert cap < 1024 // 2  # fitted under the descriptor limit
            poll(lambda: sum(closed_by_server(s) for s in flood) >= 1100 - cap, what="the evictions")
        finally:
            for s in flood:
                s.close()
        assert "evicted to make room for a new connection" in srv.log_text()


def tcp_state(s: socket.socket) -> int:
    """The kernel's TCP state of a socket (1 = established), read without touching its data."""
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def test_item3_a_reader_that_stops_reading_is_cut_off(tmp_path):
    with LocalCloudServer(tmp_path / "store", KEY, idle_timeout=1) as srv:
        rec = LocalCloudClient(srv.url, KEY).upload(rand_file(tmp_path / "big.bin", 64 << 20), "big.bin")
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", srv.port))
        try:
            s.sendall(f"GET /f/{rec['id']} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            poll(lambda: "stopped reading" in srv.log_text(), timeout=30, what="the server to give up on the reader")
            # never read: the server must still let go of the connection (reset, not a polite wait)
            poll(lambda: tcp_state(s) != 1, timeout=30, what="the connection to be dropped")
        finally:
            s.close()
        assert requests.get(srv.url + "/health", timeout=5).status_code == 200


def test_item3_systemd_unit_allows_the_descriptors_the_server_needs():
    from local_cloud.server import FDS_PER_CONNECTION, SPARE_FDS
    from local_cloud.settings import ServerSettings

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((REPO / "deploy" / "local-cloud.service").read_text())
    limit = int(unit["Service"]["LimitNOFILE"])
    default_cap = ServerSettings.model_fields["max_connections"].default
    assert limit >= default_cap * FDS_PER_CONNECTION + SPARE_FDS


# --- item 5: space reserved for every upload ---------------------------------------------------

def test_item5_one_shot_uploads_reserve_their_space(tmp_path):
    """Two 12 MiB one-shot PUTs on a 20 MiB disk: the second is told 507 at once, the first succeeds."""
    with LocalCloudServer(tmp_path / "store", KEY, small_disk="20m", min_free=0) as srv:
        first = os.urandom(12 << 20)
        head = (f"PUT /api/files/first.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {len(first)}\r\n"
                f"X-Sha256: {hashlib.sha256(first).hexdigest()}\r\nAuthorization: Bearer {KEY}\r\n\r\n")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
            s.sendall(head.encode() + first[: 1 << 20])  # the first upload is under way...
            poll(lambda: any(p.stat().st_size for p in (srv.disk_path() / ".tmp").iterdir()), what="the first bytes")
            second = os.urandom(12 << 20)
            r = requests.put(srv.url + "/api/files/second.bin", data=second,
                             headers={"X-Sha256": hashlib.sha256(second).hexdigest(), **auth()})
            assert r.status_code == 507 and "reserved by other uploads" in r.json()["detail"]
            s.sendall(first[1 << 20:])  # ...and completes
            reply = s.recv(65536)
        assert reply.startswith(b"HTTP/1.1 201")
        (rec,) = LocalCloudClient(srv.url, KEY).list()
        assert hashlib.sha256(requests.get(rec["link"]).content).hexdigest() == rec["sha256"]
        assert LocalCloudClient(srv.url, KEY).status()["reserved_bytes"] == 0


def test_item5_retry_after_an_interruption_continues_instead_of_reserving_twice(tmp_path):
    """14 MiB on a 20 MiB disk, cut at 6 MiB before the checksum was sent: the shipped client's
    retry (a new process's client) continues that session; a second reservation would not fit."""
    src = rand_file(tmp_path / "run.zip", 14 << 20)
    data = src.read_bytes()
    with LocalCloudServer(tmp_path / "store", KEY, small_disk="20m", min_free=0) as srv:
        spec = {"name": "run.zip", "size": len(data)}  # no sha256: a big file is hashed while sent
        sid = requests.post(srv.url + "/api/uploads", json=spec, headers=auth()).json()["upload_id"]
        cut = 6 << 20
        raw_request(srv, f"PUT /api/uploads/{sid} HTTP/1.1", data[: 8 << 20],
                    {"Content-Range": f"bytes 0-{(8 << 20) - 1}/{len(data)}", **auth()}, close_after=cut)
        poll(lambda: f"upload {sid} dropped" in srv.log_text(), what="the partial upload to be kept")
        r = requests.post(srv.url + "/api/uploads", json={"name": "other.zip", "size": len(data)}, headers=auth())
        assert r.status_code == 507  # the interrupted session's space is still reserved
        seen = []
        retry = LocalCloudClient(srv.url, KEY, chunk_size=4 << 20)
        rec = retry.upload(src, "run.zip", progress=lambda done, total: seen.append(done))
        assert seen[0] == cut  # went on from the earlier attempt's bytes
        assert rec["sha256"] == sha256_file(src)
        assert hashlib.sha256(requests.get(rec["link"]).content).hexdigest() == rec["sha256"]
        assert requests.get(srv.url + "/api/uploads", headers=auth()).json() == []


def test_item5_a_session_of_other_content_is_not_continued(tmp_path):
    src = rand_file(tmp_path / "mine.zip", 6 << 20)
    with LocalCloudServer(tmp_path / "store", KEY) as srv:
        spec = {"name": "mine.zip", "size": 6 << 20}
        sid = requests.post(srv.url + "/api/uploads", json=spec, headers=auth()).json()["upload_id"]
        other = os.urandom(1 << 20)  # same name and size, different bytes
        r = requests.put(f"{srv.url}/api/uploads/{sid}", data=other,
                         headers={"Content-Range": f"bytes 0-{len(other) - 1}/{6 << 20}", **auth()})
        assert r.json()["offset"] == 1 << 20
        seen = []
        rec = LocalCloudClient(srv.url, KEY, chunk_size=2 << 20).upload(src, "mine.zip",
                                                                        progress=lambda d, t: seen.append(d))
        assert seen[0] == 0 and rec["sha256"] == sha256_file(src)
        assert requests.get(f"{srv.url}/api/uploads/{sid}", headers=auth()).json()["offset"] == 1 << 20


def test_item5_aborting_a_session_releases_its_space(tmp_path):
    with LocalCloudServer(tmp_path / "store", KEY, small_disk="20m", min_free=0) as srv:
        spec = {"name": "a.zip", "size": 15 << 20}
        sid = requests.post(srv.url + "/api/uploads", json=spec, headers=auth()).json()["upload_id"]
        assert requests.post(srv.url + "/api/uploads", json={**spec, "name": "b.zip"}, headers=auth()).status_code == 507
        assert requests.delete(f"{srv.url}/api/uploads/{sid}", headers=auth()).status_code == 204
        assert requests.post(srv.url + "/api/uploads", json={**spec, "name": "b.zip"}, headers=auth()).status_code == 201


# --- item 6: an older registry never deletes newer files -----------------------------------------

def test_item6_restoring_an_older_registry_quarantines_files_it_does_not_know(tmp_path):
    srv = LocalCloudServer(tmp_path / "store", KEY)
    with srv:
        c = LocalCloudClient(srv.url, KEY)
        old = c.upload(rand_file(tmp_path / "old.bin", 10_000), "old.bin")
    backup = tmp_path / "registry-backup.sqlite3"
    shutil.copy(srv.folder / "registry.sqlite3", backup)  # clean stop: the WAL is merged
    with srv:
        c = LocalCloudClient(srv.url, KEY)
        newer = [c.upload(rand_file(tmp_path / f"n{i}.bin", 20_000 + i), f"n{i}.bin") for i in range(3)]
    for suffix in ("-wal", "-shm"):
        (srv.folder / f"registry.sqlite3{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, srv.folder / "registry.sqlite3")
    with srv:
        c = LocalCloudClient(srv.url, KEY)
        assert [r["id"] for r in c.list()] == [old["id"]]
        status = c.status()
        moved = status["reconcile"]["quarantined"]
        assert sorted(Path(m["file"]).name for m in moved) == sorted(r["id"] for r in newer)
        assert status["quarantine"]["files"] == 3 and status["quarantine"]["bytes"] == sum(r["size"] for r in newer)
        for m, rec in zip(sorted(moved, key=lambda m: Path(m["file"]).name), sorted(newer, key=lambda r: r["id"])):
            assert sha256_file(srv.folder / m["file"]) == rec["sha256"]  # every byte kept
            assert m["reason"] == "not in the registry"
    assert "moved 3 file(s) to" in srv.log_text() and "nothing was deleted" in srv.log_text()


def test_item6_a_registered_file_changed_on_disk_is_quarantined_at_start(tmp_path):
    srv = LocalCloudServer(tmp_path / "store", KEY)
    with srv:
        rec = LocalCloudClient(srv.url, KEY).upload(rand_file(tmp_path / "a.bin", 10_000), "a.bin")
    path = srv.folder / "files" / rec["id"]
    path.write_bytes(b"x" * 10_000)  # same size, other content
    with srv:
        c = LocalCloudClient(srv.url, KEY)
        assert c.list() == []
        (moved,) = c.status()["reconcile"]["quarantined"]
        assert "checksum differs" in moved["reason"]
        sidecar = (srv.folder / moved["file"]).with_name(rec["id"] + ".json").read_text()
        assert '"name": "a.bin"' in sidecar and rec["sha256"] in sidecar


# --- item 13: leaks and small holes --------------------------------------------------------------

@pytest.fixture
def lone_server(tmp_path):
    with LocalCloudServer(tmp_path / "store", KEY) as srv:
        yield srv


def test_item13_api_key_in_the_url_is_refused_and_never_logged(lone_server):
    srv = lone_server
    for query in (f"api_key={KEY}", f"token={KEY}", f"whatever={KEY}", "key=not-the-key"):
        r = requests.get(f"{srv.url}/api/files?{query}")
        assert r.status_code == 400 and "never be sent in the URL" in r.json()["detail"], query
        assert KEY not in r.text
    requests.get(f"{srv.url}/f/{'x' * 32}?api_key={KEY}")  # public route: ignored, still not logged
    poll(lambda: srv.log_text().count("?…") >= 5, what="the access log lines")
    assert KEY not in srv.log_text()


def test_item13_link_ids_are_logged_as_tags_only(lone_server, tmp_path):
    srv = lone_server
    c = LocalCloudClient(srv.url, KEY)
    rec = c.upload(rand_file(tmp_path / "a.bin", 5000), "a.bin")
    listed = run_cli("list", "--server", srv.url)
    assert f"{rec['id']}  {link_tag(rec['id'])}" in listed.stdout  # the CLI matches ids to log lines
    requests.get(rec["link"])
    requests.get(rec["link"], headers={"Accept": "text/html"})
    c.get(rec["id"])
    c.delete(rec["id"])
    requests.get(rec["link"])
    tag = link_tag(rec["id"])
    poll(lambda: srv.log_text().count(tag) >= 6, what="the log lines of those calls")
    assert rec["id"] not in srv.log_text()
    assert f'"GET /f/{tag} HTTP/1.1" 200' in srv.log_text()
    assert f"stored {tag} (a.bin" in srv.log_text() and f"deleted {tag} (a.bin)" in srv.log_text()


def test_item13_x_forwarded_for_is_not_believed_unless_configured(tmp_path):
    spoofed = {"X-Forwarded-For": "203.0.113.9"}
    with LocalCloudServer(tmp_path / "a", KEY) as srv:
        requests.get(srv.url + "/health", headers=spoofed)
        poll(lambda: '"GET /health' in srv.log_text(), what="the access log line")
        assert "203.0.113.9" not in srv.log_text() and '127.0.0.1 "GET /health' in srv.log_text()
    with LocalCloudServer(tmp_path / "b", KEY, forwarded_allow_ips="127.0.0.1") as srv:
        requests.get(srv.url + "/health", headers=spoofed)
        poll(lambda: '203.0.113.9 "GET /health' in srv.log_text(), what="the proxied client in the log")


def test_item13_wrong_keys_are_rate_limited_per_client(lone_server):
    srv = lone_server
    wrong = auth("wrong-" + KEY)
    t0 = time.monotonic()
    codes = [requests.get(srv.url + "/api/files", headers={**wrong, "X-Forwarded-For": f"198.51.100.{i}"}).status_code
             for i in range(30)]
    elapsed = time.monotonic() - t0
    assert codes[:10] == [403] * 10 and codes[10] == 429  # rotating X-Forwarded-For does not help
    assert codes.count(403) <= 10 + elapsed + 1 and set(codes) == {403, 429}  # one more per second at most
    while requests.get(srv.url + "/api/files", headers=wrong).status_code != 429:
        pass
    limited = requests.get(srv.url + "/api/files", headers=auth())
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1  # not even the right key
    assert requests.get(srv.url + "/health").status_code == 200  # public routes are not limited
    poll(lambda: requests.get(srv.url + "/api/files", headers=auth()).status_code == 200, timeout=10,
         what="the bucket to refill")
    assert "further attempts rate-limited" in srv.log_text()


def test_item13_rate_limit_memory_is_bounded():
    now = [0.0]
    failures = AuthFailures(burst=2, rate=1.0, max_clients=100, clock=lambda: now[0])
    for i in range(100_000):
        failures.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(failures) == 100
    failures.failed("10.9.9.9")
    failures.failed("10.9.9.9")
    assert failures.wait("10.9.9.9") == pytest.approx(1.0)
    now[0] += 1.0
    assert failures.wait("10.9.9.9") == 0


def test_item13_a_file_changed_on_disk_is_not_served_with_its_checksum(lone_server, tmp_path):
    srv = lone_server
    rec = LocalCloudClient(srv.url, KEY).upload(rand_file(tmp_path / "a.bin", 100_000), "a.bin")
    path = srv.folder / "files" / rec["id"]
    with open(path, "r+b") as f:
        f.truncate(50_000)
    for method in ("GET", "HEAD"):
        r = requests.request(method, rec["link"])
        assert r.status_code == 500 and "x-checksum-sha256" not in r.headers
    path.write_bytes(os.urandom(100_000))  # right size, new content: its mtime changed
    r = requests.get(rec["link"])
    assert r.status_code == 500 and "changed on disk" in r.json()["detail"]
    assert "changed on disk" in srv.log_text() and rec["id"] not in srv.log_text()


def test_item13_a_zero_size_upload_session_completes(lone_server):
    srv = lone_server
    empty = hashlib.sha256(b"").hexdigest()
    r = requests.post(srv.url + "/api/uploads", json={"name": "e1", "size": 0, "sha256": empty}, headers=auth())
    assert r.status_code == 201 and r.json()["complete"] and r.json()["file"]["size"] == 0
    sess = requests.post(srv.url + "/api/uploads", json={"name": "e2", "size": 0}, headers=auth()).json()
    put = f"{srv.url}/api/uploads/{sess['upload_id']}"
    r = requests.put(put, headers={"Content-Range": "bytes */0", "X-Sha256": hashlib.sha256(b"x").hexdigest(), **auth()})
    assert r.status_code == 422
    sess = requests.post(srv.url + "/api/uploads", json={"name": "e2", "size": 0}, headers=auth()).json()
    put = f"{srv.url}/api/uploads/{sess['upload_id']}"
    assert requests.put(put, headers={"Content-Range": "bytes */0", **auth()}).status_code == 400  # no checksum
    r = requests.put(put, headers={"Content-Range": "bytes */0", "X-Sha256": empty, **auth()})
    assert r.status_code == 201 and requests.get(r.json()["file"]["link"]).content == b""


def test_item13_corrupt_registry_gives_one_line_error(tmp_path):
    good = LocalCloudServer(tmp_path / "good", KEY)
    with good:
        LocalCloudClient(good.url, KEY).upload(rand_file(tmp_path / "a.bin", 1000), "a.bin")
    registry = (good.folder / "registry.sqlite3").read_bytes()
    cases = {"garbage": os.urandom(8192), "truncated": registry[: len(registry) // 2],
             "zeroed page": registry[:4096] + b"\0" * 4096 + registry[8192:]}
    for label, content in cases.items():
        folder = tmp_path / label
        (folder / "files").mkdir(parents=True)
        (folder / "registry.sqlite3").write_bytes(content)
        r = subprocess.run([sys.executable, "-m", "local_cloud", "serve", "--folder", str(folder), "--port", "0"],
                           env={**os.environ, "LOCAL_CLOUD_API_KEY": KEY}, capture_output=True, text=True, timeout=30)
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0 and "Traceback" not in r.stderr, (label, r.stderr)
        assert len(lines) == 1 and "registry.sqlite3" in lines[0] and "restore" in lines[0], (label, r.stderr)


CONFUSABLE = ["a\u0085b", "a\u009bb", "evil\u202egpj.exe", "a\u2066b", "a\u200bb", "\uff0e\uff0e", "a\uff0fb",
              "a\uff3cb", "\u2024\u2024", "a\u2215b", "a\u2044b", "a\u29f8b", "a\ufeffb", "a\u2028b", "a\ue000b",
              "a\ufe68b", "x\u0338y"]


@pytest.mark.parametrize("name", CONFUSABLE)
def test_item13_names_with_controls_bidi_and_confusables_are_refused(lone_server, name):
    assert name_problem(name) is not None
    spec = {"name": name, "size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}
    r = requests.post(lone_server.url + "/api/uploads", json=spec, headers=auth())
    assert r.status_code == 400 and "invalid file name" in r.json()["detail"]


@pytest.mark.parametrize("name", ["résumé v2.pdf", "ノート.zip", "Aloha-run 3 (copy).zip", "😀.zip", "..hidden",
                                  "a\u00a0b.zip", "Ω≈ç.csv"])
def test_plain_unicode_names_stay_accepted(name):
    assert name_problem(name) is None


def test_item13_bad_requests_name_the_field_and_echo_nothing(lone_server):
    r = requests.post(lone_server.url + "/api/uploads", json={"name": "a", "size": "3", "sha256": "0" * 64},
                      headers=auth())
    assert r.status_code == 400 and r.json()["detail"].startswith("size:")
    r = requests.post(lone_server.url + "/api/uploads", data=b"{" + b" " * (70 << 10), headers=auth())
    assert r.status_code == 413
    r = requests.post(lone_server.url + "/api/uploads", data=b"{" + b" " * (70 << 10))
    assert r.status_code == 401  # no key: the body is not even read


def test_serve_reports_bad_settings_in_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "local_cloud", "serve", "--folder", str(tmp_path), "--max-size", "lots"],
                       env={**os.environ, "LOCAL_CLOUD_API_KEY": KEY}, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert re.search(r"max_size: .*not a size", r.stderr) and KEY not in r.stderr


# --- the client's one retry layer and its budget ---------------------------------------------------

def test_client_gives_up_on_a_dead_server_after_its_retry_budget(tmp_path):
    """A server that accepts and hangs up at once: retried with back-off until the budget is spent."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = [0]

    def hang_up():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted[0] += 1
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    src = rand_file(tmp_path / "a.bin", 1000)
    client = LocalCloudClient(f"http://127.0.0.1:{listener.getsockname()[1]}", KEY, retry_budget=3)
    t0 = time.monotonic()
    with pytest.raises(LocalCloudError) as e:
        client.upload(src, "a.bin")
    elapsed = time.monotonic() - t0
    listener.close()
    assert e.value.status is None and e.value.transient
    assert 3 <= elapsed < 3 + 5  # the budget, plus at most one short request; never a retry stack
    assert 3 <= accepted[0] <= 8  # 0.25-0.5, 0.5-1, 1-2 s waits between attempts


def test_client_waits_out_a_429_and_succeeds(lone_server):
    srv = lone_server
    while requests.get(srv.url + "/api/files", headers=auth("wrong-" + KEY)).status_code != 429:
        pass
    assert LocalCloudClient(srv.url, KEY, retry_budget=30).list() == []  # Retry-After honoured, then served

    def statuses():
        return [line.split('HTTP/1.1" ')[1].split()[0] for line in srv.log_text().splitlines()
                if '"GET /api/files HTTP/1.1"' in line]

    poll(lambda: statuses()[-1:] == ["200"], what="the access log line")
    assert statuses().count("429") == 2  # the loop stopped at its first 429: the other is the client's
    assert statuses()[-2:] == ["429", "200"]  # refused, waited, served
