"""local_cloud against a real server process on loopback (started by local_cloud.testing)."""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from local_cloud.client import LocalCloudClient, LocalCloudError, sha256_file
from local_cloud.redact import link_tag
from local_cloud.testing import LocalCloudServer

KEY = "test-key-" + secrets.token_hex(16)


def rand_file(path: Path, size: int, block: int = 1 << 22) -> Path:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(block, left)
            f.write(os.urandom(n))
            left -= n
    return path


def poll(check, timeout: float = 20.0, what: str = "condition"):
    """Poll `check` until it returns a truthy value (the test's only way to wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def auth(key: str = KEY) -> dict:
    return {"Authorization": f"Bearer {key}"}


def assert_key_not_in(server: LocalCloudServer) -> None:
    assert KEY not in server.log_text()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = LocalCloudServer(tmp_path_factory.mktemp("lc") / "store", KEY, max_size="200M")
    srv.start()
    yield srv
    srv.stop()
    assert_key_not_in(srv)


@pytest.fixture
def client(server):
    c = LocalCloudClient(server.url, KEY)
    yield c
    for rec in c.list():  # each test starts from an empty store
        c.delete(rec["id"])
    c.close()


def peak_rss_mb(server: LocalCloudServer) -> float:
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def tmp_entries(server: LocalCloudServer) -> list[str]:
    return sorted(p.name for p in (server.folder / ".tmp").iterdir())


def stored_entries(server: LocalCloudServer) -> list[str]:
    return sorted(p.name for p in (server.folder / "files").iterdir())


# --- round trip, download ---------------------------------------------------------------------

def test_round_trip_100mb(server, client, tmp_path):
    src = rand_file(tmp_path / "results.zip", 100 * 1024 * 1024)
    seen = []
    peak_before = peak_rss_mb(server)
    rec = client.upload(src, "run 42 résultats.zip", keep_days=3, progress=lambda d, t: seen.append((d, t)))
    assert peak_rss_mb(server) - peak_before < 40  # bounded buffers, not the 100 MB file
    assert rec["size"] == src.stat().st_size
    assert rec["sha256"] == sha256_file(src)
    assert rec["name"] == "run 42 résultats.zip"
    assert rec["expires_at"] is not None and rec["expires_at"].endswith("Z")
    assert seen[-1] == (rec["size"], rec["size"]) and len(seen) > 10
    file_id = urlsplit(rec["link"]).path.rsplit("/", 1)[1]
    assert file_id == rec["id"] and len(file_id) >= 22  # >= 128 bits in url-safe base64
    assert rec["link"].startswith(server.url)

    head = requests.head(rec["link"])
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == rec["size"]
    assert "filename*=UTF-8''run%2042%20r%C3%A9sultats.zip" in head.headers["content-disposition"]
    assert head.headers["accept-ranges"] == "bytes"

    dst = client.download(rec["link"], tmp_path / "back.zip")
    assert sha256_file(dst) == rec["sha256"]
    assert peak_rss_mb(server) - peak_before < 40
    assert [r["downloads"] for r in client.list()] == [1]
    assert stored_entries(server) == [rec["id"]] and tmp_entries(server) == []


def test_empty_file(server, client, tmp_path):
    src = tmp_path / "empty.txt"
    src.write_bytes(b"")
    rec = client.upload(src, "empty.txt")
    assert rec["size"] == 0 and rec["sha256"] == hashlib.sha256(b"").hexdigest()
    r = requests.get(rec["link"])
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "0"
    assert client.upload(src, "empty.txt")["id"] == rec["id"]


def test_range_requests(server, client, tmp_path):
    src = rand_file(tmp_path / "r.bin", 300_000)
    data = src.read_bytes()
    link = client.upload(src, "r.bin")["link"]
    r = requests.get(link, headers={"Range": "bytes=1000-1999"})
    assert r.status_code == 206
    assert r.headers["content-range"] == "bytes 1000-1999/300000"
    assert r.headers["content-length"] == "1000" and r.content == data[1000:2000]
    r = requests.get(link, headers={"Range": "bytes=-10"})
    assert r.status_code == 206 and r.content == data[-10:]
    r = requests.get(link, headers={"Range": "bytes=299990-"})
    assert r.status_code == 206 and r.content == data[299990:]
    assert requests.get(link, headers={"Range": "bytes=400000-400010"}).status_code == 416
    # a range that does not start at 0 is a resumed download, not a new one
    assert client.list()[0]["downloads"] == 0


def test_no_listing_and_unknown_ids(server):
    for path in ["/", "/f", "/f/", "/files", "/files/", "/.tmp/", "/registry.sqlite3", "/docs",
                 "/openapi.json", "/f/" + secrets.token_urlsafe(24)]:
        assert requests.get(server.url + path).status_code == 404, path


def test_delete_makes_link_404(server, client, tmp_path):
    rec = client.upload(rand_file(tmp_path / "d.bin", 5000), "d.bin")
    assert requests.get(rec["link"]).status_code == 200
    client.delete(rec["id"])
    assert requests.get(rec["link"]).status_code == 404
    assert requests.head(rec["link"]).status_code == 404
    assert client.list() == [] and stored_entries(server) == []
    with pytest.raises(LocalCloudError) as e:
        client.delete(rec["id"])
    assert e.value.status == 404


# --- refusals ---------------------------------------------------------------------------------

def test_api_key_required(server, client, tmp_path):
    spec = {"name": "a.bin", "size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}
    calls = [("GET", "/api/files", {}), ("POST", "/api/uploads", {"json": spec}),
             ("PUT", "/api/files/a.bin", {"data": b"abc", "headers": {"X-Sha256": spec["sha256"]}}),
             ("DELETE", "/api/files/x", {}), ("GET", "/api/status", {})]
    for method, path, kw in calls:
        headers = kw.pop("headers", {})
        r = requests.request(method, server.url + path, headers=headers, **kw)
        assert r.status_code == 401, (method, path)
        assert r.headers["www-authenticate"] == "Bearer"
        r = requests.request(method, server.url + path, headers={**headers, **auth("wrong-" + KEY)}, **kw)
        assert r.status_code == 403, (method, path)
        assert KEY not in r.text
    assert client.list() == []
    bad = LocalCloudClient(server.url, "wrong-" + KEY)
    assert "wrong" not in repr(bad) and KEY not in repr(bad)
    with pytest.raises(LocalCloudError) as e:
        bad.upload(rand_file(tmp_path / "x.bin", 10), "x.bin")
    assert e.value.status == 403 and "wrong API key" in str(e.value)
    assert KEY not in str(e.value) and KEY not in repr(e.value)
    # X-API-Key works as well as Bearer
    assert requests.get(server.url + "/api/files", headers={"X-API-Key": KEY}).status_code == 200


BAD_NAMES = ["../x", "/etc/passwd", "%2e%2e%2f", "%2e%2e%2fetc%2fpasswd", "..", ".", "a/b", "a\\b",
             "nul\x00byte", "new\nline", "x" * 256, "é" * 128, "", " padded "]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_refused_in_session(server, client, name):
    spec = {"name": name, "size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}
    r = requests.post(server.url + "/api/uploads", json=spec, headers=auth())
    assert r.status_code == 400 and "invalid file name" in r.json()["detail"]
    assert client.list() == [] and tmp_entries(server) == []


@pytest.mark.parametrize("raw_path", ["..%2Fx", "%2e%2e%2f", "%252e%252e%252f", "%2Fetc%2Fpasswd", "a%00b",
                                      "a%5Cb", "..", "x" * 300])
def test_bad_names_refused_in_one_shot_put(server, client, raw_path):
    # Raw socket: HTTP libraries normalise '..' and percent-escapes before sending.
    body = b"abc"
    status = raw_request(server, f"PUT /api/files/{raw_path} HTTP/1.1", body,
                         {"X-Sha256": hashlib.sha256(body).hexdigest(), **auth()})
    assert status == 400
    assert client.list() == [] and tmp_entries(server) == []
    assert not (server.folder.parent / "x").exists() and not (server.folder / "x").exists()


def test_plain_names_accepted_in_one_shot_put(server, client):
    body = b"abc"
    for raw_path, name in [("ok.bin", "ok.bin"), ("r%C3%A9sum%C3%A9%20v2.pdf", "résumé v2.pdf"),
                           ("..hidden", "..hidden")]:
        status = raw_request(server, f"PUT /api/files/{raw_path} HTTP/1.1", body,
                             {"X-Sha256": hashlib.sha256(body).hexdigest(), **auth()})
        assert status == 201
        assert name in [r["name"] for r in client.list()]


def test_too_large_413(server):
    big = 201 * 1024 * 1024  # the server runs with --max-size 200M
    spec = {"name": "big.bin", "size": big, "sha256": "0" * 64}
    r = requests.post(server.url + "/api/uploads", json=spec, headers=auth())
    assert r.status_code == 413 and "larger than the maximum" in r.json()["detail"]
    status = raw_request(server, "PUT /api/files/big.bin HTTP/1.1", b"", {
        "X-Sha256": "0" * 64, "Content-Length": str(big), **auth()}, send_body=False)
    assert status == 413
    assert tmp_entries(server) == []


def test_not_enough_disk_507(tmp_path):
    folder = tmp_path / "store"
    with LocalCloudServer(folder, KEY, max_size="1000T") as srv:
        free = shutil.disk_usage(tmp_path).free
        spec = {"name": "huge.bin", "size": free + (1 << 30), "sha256": "0" * 64}
        r = requests.post(srv.url + "/api/uploads", json=spec, headers=auth())
        assert r.status_code == 507 and "not enough free disk" in r.json()["detail"]
        spec["size"] = 1000
        assert requests.post(srv.url + "/api/uploads", json=spec, headers=auth()).status_code == 201
    assert_key_not_in(srv)


def test_checksum_mismatch_422(server, client, tmp_path):
    data = os.urandom(3 * 1024 * 1024)
    wrong = hashlib.sha256(b"something else").hexdigest()
    r = requests.put(server.url + "/api/files/c.bin", data=data, headers={"X-Sha256": wrong, **auth()})
    assert r.status_code == 422 and "checksum mismatch" in r.json()["detail"]
    spec = {"name": "c.bin", "size": len(data), "sha256": wrong}
    sess = requests.post(server.url + "/api/uploads", json=spec, headers=auth()).json()
    r = requests.put(f"{server.url}/api/uploads/{sess['upload_id']}", data=data,
                     headers={"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}", **auth()})
    assert r.status_code == 422
    assert requests.get(f"{server.url}/api/uploads/{sess['upload_id']}", headers=auth()).status_code == 404
    assert client.list() == [] and tmp_entries(server) == [] and stored_entries(server) == []


def test_bad_requests_400(server):
    url = server.url + "/api/uploads"
    for spec in [{"name": "a", "size": -1, "sha256": "0" * 64}, {"name": "a", "size": 1, "sha256": "xyz"},
                 {"name": "a", "size": 1, "sha256": "0" * 64, "keep_days": -1}, ["not", "an", "object"]]:
        assert requests.post(url, json=spec, headers=auth()).status_code == 400, spec
    assert requests.post(url, data=b"{nope", headers=auth()).status_code == 400
    r = requests.put(server.url + "/api/files/a.bin", data=b"abc", headers=auth())
    assert r.status_code == 400 and "sha256" in r.json()["detail"]


# --- idempotency ------------------------------------------------------------------------------

def test_retry_same_name_and_content_is_idempotent(server, client, tmp_path):
    src = rand_file(tmp_path / "same.bin", 2 * 1024 * 1024)
    first = client.upload(src, "same.bin", keep_days=1)
    again = client.upload(src, "same.bin", keep_days=1)
    assert again["id"] == first["id"] and again["link"] == first["link"]
    # one-shot PUT of the same name and content returns the same record too (200, not 201)
    r = requests.put(server.url + "/api/files/same.bin", data=src.read_bytes(),
                     headers={"X-Sha256": first["sha256"], **auth()})
    assert r.status_code == 200 and r.json()["id"] == first["id"]
    other = client.upload(src, "other-name.bin")
    assert other["id"] != first["id"]
    assert sorted(stored_entries(server)) == sorted([first["id"], other["id"]])
    # an explicit upload key is the identity: same key, same record; same key, other content: 409
    keyed = client.upload(src, "k.bin", upload_key="run-7")
    assert client.upload(src, "k.bin", upload_key="run-7")["id"] == keyed["id"]
    with pytest.raises(LocalCloudError) as e:
        client.upload(rand_file(tmp_path / "new.bin", 100), "k.bin", upload_key="run-7")
    assert e.value.status == 409
    assert len(client.list()) == 3


def test_retry_of_a_big_file_stores_it_once(server, client, tmp_path):
    # ranges smaller than the file: the checksum is computed while sending and announced later
    src = rand_file(tmp_path / "big.bin", 6 * 1024 * 1024)
    small_ranges = LocalCloudClient(server.url, KEY, chunk_size=1024 * 1024)
    first = small_ranges.upload(src, "big.bin")
    again = small_ranges.upload(src, "big.bin")
    assert again["id"] == first["id"] and first["sha256"] == sha256_file(src)
    assert stored_entries(server) == [first["id"]] and tmp_entries(server) == []
    # content announced with a range, then checked against the data
    assert len(client.list()) == 1


def test_checksum_announced_with_a_later_range(server, client):
    data = os.urandom(3000)
    url = server.url + "/api/uploads"
    sess = requests.post(url, json={"name": "late.bin", "size": 3000}, headers=auth()).json()
    assert sess["sha256"] is None
    put = f"{url}/{sess['upload_id']}"
    r = requests.put(put, data=data[:1000], headers={"Content-Range": "bytes 0-999/3000", **auth()})
    assert r.status_code == 200 and r.json()["offset"] == 1000
    # the last range without any checksum is refused before its body is read
    r = requests.put(put, data=data[1000:], headers={"Content-Range": "bytes 1000-2999/3000", **auth()})
    assert r.status_code == 400 and "X-Sha256" in r.json()["detail"]
    wrong = hashlib.sha256(b"not it").hexdigest()
    r = requests.put(put, data=data[1000:], headers={"Content-Range": "bytes 1000-2999/3000",
                                                     "X-Sha256": wrong, **auth()})
    assert r.status_code == 422 and client.list() == [] and tmp_entries(server) == []
    sess = requests.post(url, json={"name": "late.bin", "size": 3000}, headers=auth()).json()
    r = requests.put(f"{url}/{sess['upload_id']}", data=data, headers={
        "Content-Range": "bytes 0-2999/3000", "X-Sha256": hashlib.sha256(data).hexdigest(), **auth()})
    assert r.status_code == 201 and r.json()["file"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_concurrent_uploads_20(server, client, tmp_path):
    files = [rand_file(tmp_path / f"c{i}.bin", 1024 * 1024 + i * 7919) for i in range(20)]
    results, errors = {}, []
    barrier = threading.Barrier(20)

    def work(i):
        try:
            with LocalCloudClient(server.url, KEY) as c:
                barrier.wait()
                results[i] = c.upload(files[i], f"c{i}.bin")
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    listed = {r["name"]: r for r in client.list()}
    assert len(listed) == 20
    for i, src in enumerate(files):
        rec = listed[f"c{i}.bin"]
        assert rec["sha256"] == sha256_file(src) and rec["id"] == results[i]["id"]
        assert hashlib.sha256(requests.get(rec["link"]).content).hexdigest() == rec["sha256"]
    assert tmp_entries(server) == []


def test_concurrent_retries_of_one_file_store_it_once(server, client, tmp_path):
    src = rand_file(tmp_path / "dup.bin", 4 * 1024 * 1024)
    ids, errors = [], []

    def work():
        try:
            with LocalCloudClient(server.url, KEY) as c:
                ids.append(c.upload(src, "dup.bin")["id"])
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(ids)) == 1
    assert stored_entries(server) == ids[:1] and tmp_entries(server) == []


# --- interrupted uploads ----------------------------------------------------------------------

def raw_request(server, request_line: str, body: bytes, headers: dict, *, send_body: bool = True,
                close_after: int | None = None) -> int | None:
    """Send one HTTP request over a plain socket; optionally hang up after `close_after` body bytes."""
    headers = {"Host": f"127.0.0.1:{server.port}", "Content-Length": str(len(body)), **headers}
    head = request_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head.encode("latin-1"))
        if close_after is not None:
            s.sendall(body[:close_after])
            return None
        if send_body:
            s.sendall(body)
        reply = s.recv(65536).decode("latin-1")
    return int(reply.split(" ", 2)[1])


def test_client_disconnect_mid_upload_leaves_nothing(server, client):
    body = os.urandom(8 * 1024 * 1024)
    hdr = {"X-Sha256": hashlib.sha256(body).hexdigest(), **auth()}
    raw_request(server, "PUT /api/files/cut.bin HTTP/1.1", body, hdr, close_after=3 * 1024 * 1024)
    poll(lambda: "upload of cut.bin dropped" in server.log_text(), what="the server to notice the drop")
    assert tmp_entries(server) == [] and stored_entries(server) == []
    assert client.list() == []


def test_resume_interrupted_upload(server, client, tmp_path):
    src = rand_file(tmp_path / "resume.bin", 12 * 1024 * 1024)
    data = src.read_bytes()
    spec = {"name": "resume.bin", "size": len(data), "sha256": sha256_file(src)}
    sess = requests.post(server.url + "/api/uploads", json=spec, headers=auth()).json()
    sid, cut = sess["upload_id"], 5 * 1024 * 1024 + 123
    raw_request(server, f"PUT /api/uploads/{sid} HTTP/1.1", data,
                {"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}", **auth()}, close_after=cut)
    poll(lambda: requests.get(f"{server.url}/api/uploads/{sid}", headers=auth()).json()["offset"] == cut
         and f"upload {sid} dropped" in server.log_text(), what="the partial upload to be kept")
    assert client.list() == []  # a partial upload is never listed
    # a PUT that does not start at the server's offset is refused with the offset to use
    r = requests.put(f"{server.url}/api/uploads/{sid}", data=data[:10],
                     headers={"Content-Range": f"bytes 0-9/{len(data)}", **auth()})
    assert r.status_code == 409 and r.json()["offset"] == cut and r.headers["upload-offset"] == str(cut)
    seen = []
    rec = client.upload(src, "resume.bin", progress=lambda d, t: seen.append(d))
    assert seen[0] == cut  # the client went on from the server's offset, not from zero
    assert rec["sha256"] == spec["sha256"]
    assert hashlib.sha256(requests.get(rec["link"]).content).hexdigest() == spec["sha256"]
    assert tmp_entries(server) == []


def test_new_client_continues_an_earlier_interrupted_upload(server, client, tmp_path):
    """A task retry (new process, new client) finds the earlier attempt's bytes once it knows the checksum."""
    src = rand_file(tmp_path / "retry.bin", 8 * 1024 * 1024)
    data = src.read_bytes()
    spec = {"name": "retry.bin", "size": len(data), "sha256": sha256_file(src)}
    sid = requests.post(server.url + "/api/uploads", json=spec, headers=auth()).json()["upload_id"]
    cut = 6 * 1024 * 1024 + 17
    raw_request(server, f"PUT /api/uploads/{sid} HTTP/1.1", data,
                {"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}", **auth()}, close_after=cut)
    poll(lambda: f"upload {sid} dropped" in server.log_text(), what="the partial upload to be kept")
    seen = []
    fresh = LocalCloudClient(server.url, KEY, chunk_size=512 * 1024)  # hashes while sending
    rec = fresh.upload(src, "retry.bin", progress=lambda d, t: seen.append(d))
    assert cut in seen and seen.index(cut) < len(seen) - 1  # jumped to the earlier attempt's offset
    assert rec["sha256"] == spec["sha256"]
    assert hashlib.sha256(requests.get(rec["link"]).content).hexdigest() == spec["sha256"]
    assert tmp_entries(server) == [] and stored_entries(server) == [rec["id"]]


def test_client_resumes_after_server_crash(tmp_path):
    src = rand_file(tmp_path / "crash.bin", 24 * 1024 * 1024)
    srv = LocalCloudServer(tmp_path / "store", KEY)
    srv.start()
    try:
        client = LocalCloudClient(srv.url, KEY, chunk_size=4 * 1024 * 1024, timeout=20)
        seen, crashed = [], []

        def progress(done, total):
            seen.append(done)
            if done >= 10 * 1024 * 1024 and not crashed:
                crashed.append(done)
                srv.kill()  # SIGKILL mid-upload: no clean-up runs
                srv.start()  # same folder, same port

        rec = client.upload(src, "crash.bin", progress=progress)
        assert crashed
        after = seen[seen.index(crashed[0]) + 1]
        assert 0 < after <= crashed[0]  # resumed from what the server had on disk, not from 0
        assert rec["sha256"] == sha256_file(src)
        assert hashlib.sha256(requests.get(rec["link"]).content).hexdigest() == rec["sha256"]
        assert [r["id"] for r in client.list()] == [rec["id"]]
        assert list((srv.folder / ".tmp").iterdir()) == []
    finally:
        srv.stop()
    assert_key_not_in(srv)


def test_stalled_upload_is_dropped(tmp_path):
    with LocalCloudServer(tmp_path / "store", KEY, idle_timeout=1) as srv:
        body = os.urandom(2 * 1024 * 1024)
        head = (f"PUT /api/files/stall.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                f"X-Sha256: {hashlib.sha256(body).hexdigest()}\r\nAuthorization: Bearer {KEY}\r\n\r\n")
        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            s.sendall(head.encode() + body[:100_000])  # then silence, connection kept open
            poll(lambda: "upload of stall.bin dropped" in srv.log_text(), what="the idle timeout")
            assert list((srv.folder / ".tmp").iterdir()) == []
        assert LocalCloudClient(srv.url, KEY).list() == []


def test_abort_upload_session(server, client):
    spec = {"name": "abort.bin", "size": 10, "sha256": "0" * 64}
    sid = requests.post(server.url + "/api/uploads", json=spec, headers=auth()).json()["upload_id"]
    assert tmp_entries(server) == [f"{sid}.part"]
    assert [s["upload_id"] for s in requests.get(server.url + "/api/uploads", headers=auth()).json()] == [sid]
    assert requests.delete(f"{server.url}/api/uploads/{sid}", headers=auth()).status_code == 204
    assert tmp_entries(server) == []
    assert requests.get(f"{server.url}/api/uploads/{sid}", headers=auth()).status_code == 404


# --- restart, reconcile, expiry ---------------------------------------------------------------

def test_restart_keeps_registry_and_reconciles(tmp_path):
    srv = LocalCloudServer(tmp_path / "store", KEY)
    with srv:
        c = LocalCloudClient(srv.url, KEY)
        a = c.upload(rand_file(tmp_path / "a.bin", 100_000), "a.bin", keep_days=2)
        b = c.upload(rand_file(tmp_path / "b.bin", 50_000), "b.bin")
        requests.get(a["link"])
        spec = {"name": "half.bin", "size": 100, "sha256": "0" * 64}
        sid = requests.post(srv.url + "/api/uploads", json=spec, headers=auth()).json()["upload_id"]
    # while stopped: a crash left an orphan temp file, and someone removed b's data by hand
    (srv.folder / ".tmp" / "deadbeef.upload").write_bytes(b"partial")
    (srv.folder / "files" / "stray").write_bytes(b"never registered")
    (srv.folder / "files" / b["id"]).unlink()
    with srv:
        c = LocalCloudClient(srv.url, KEY)
        listed = c.list()
        assert [r["id"] for r in listed] == [a["id"]]
        assert listed[0]["downloads"] == 1 and listed[0]["expires_at"] == a["expires_at"]
        assert requests.get(a["link"]).content == (tmp_path / "a.bin").read_bytes()
        assert requests.get(b["link"]).status_code == 404
        report = c.status()["reconcile"]
        assert report["missing"] == [{"id": b["id"], "name": "b.bin"}]
        assert report["orphan_temp_removed"] == ["deadbeef.upload"]
        assert report["unregistered_removed"] == ["stray"]
        assert sorted(p.name for p in (srv.folder / ".tmp").iterdir()) == [f"{sid}.part"]  # resumable
        assert requests.get(f"{srv.url}/api/uploads/{sid}", headers=auth()).status_code == 200
    assert f"registered file {link_tag(b['id'])} (b.bin) is missing" in srv.log_text()
    assert b["id"] not in srv.log_text()  # link ids are capabilities: logged as tags only
    assert_key_not_in(srv)


def test_one_server_per_folder_and_no_foreign_folders(tmp_path):
    with LocalCloudServer(tmp_path / "store", KEY) as srv:
        second = LocalCloudServer(tmp_path / "store", KEY)
        with pytest.raises(RuntimeError, match="already served by another local_cloud process"):
            second.start()
        assert requests.get(srv.url + "/health").status_code == 200
    foreign = tmp_path / "someones-folder"
    (foreign / "files").mkdir(parents=True)
    (foreign / "files" / "thesis.pdf").write_bytes(b"precious")
    with pytest.raises(RuntimeError, match="no registry.sqlite3; refusing to start"):
        LocalCloudServer(foreign, KEY).start()
    assert (foreign / "files" / "thesis.pdf").read_bytes() == b"precious"


def test_expiry_purged_on_servers_own_schedule(tmp_path):
    with LocalCloudServer(tmp_path / "store", KEY, purge_interval=0.3) as srv:
        c = LocalCloudClient(srv.url, KEY)
        short = c.upload(rand_file(tmp_path / "s.bin", 1000), "s.bin", keep_days=1.5 / 86400)
        keep = c.upload(rand_file(tmp_path / "k.bin", 1000), "k.bin", keep_days=1)
        forever = c.upload(rand_file(tmp_path / "f.bin", 1000), "f.bin")
        assert forever["expires_at"] is None
        assert requests.get(short["link"]).status_code == 200
        poll(lambda: not (srv.folder / "files" / short["id"]).exists(), what="the purge")
        assert requests.get(short["link"]).status_code == 404
        assert sorted(r["id"] for r in c.list()) == sorted([keep["id"], forever["id"]])
        assert f"expired: {link_tag(short['id'])} (s.bin)" in srv.log_text()
        assert short["id"] not in srv.log_text()


def test_expired_file_is_404_before_the_purge_runs(tmp_path):
    with LocalCloudServer(tmp_path / "store", KEY, purge_interval=3600) as srv:
        c = LocalCloudClient(srv.url, KEY)
        rec = c.upload(rand_file(tmp_path / "s.bin", 1000), "s.bin", keep_days=1 / 86400)
        poll(lambda: requests.get(rec["link"]).status_code == 404, what="expiry")
        assert (srv.folder / "files" / rec["id"]).exists()  # not purged yet, but not served either
        assert c.list() == []


def test_stale_upload_sessions_are_purged(tmp_path):
    with LocalCloudServer(tmp_path / "store", KEY, purge_interval=0.3, session_ttl=1 / 3600) as srv:
        spec = {"name": "idle.bin", "size": 10, "sha256": "0" * 64}
        sid = requests.post(srv.url + "/api/uploads", json=spec, headers=auth()).json()["upload_id"]
        # an expired session answers 404 at once; its partial file goes at the purge after that
        poll(lambda: requests.get(f"{srv.url}/api/uploads/{sid}", headers=auth()).status_code == 404
             and not any((srv.folder / ".tmp").iterdir()), what="the stale session purge")


# --- CLI, packaging ---------------------------------------------------------------------------

def run_cli(*args, key: str | None = KEY):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCAL_CLOUD_")}
    if key:
        env["LOCAL_CLOUD_API_KEY"] = key
    return subprocess.run([sys.executable, "-m", "local_cloud", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_cli_upload_list_delete(server, client, tmp_path):
    src = rand_file(tmp_path / "cli.bin", 300_000)
    up = run_cli("upload", str(src), "--server", server.url, "--keep-days", "2", "--progress")
    assert up.returncode == 0, up.stderr
    link = up.stdout.strip().splitlines()[-1]
    assert link.startswith(server.url + "/f/") and "100.0%" in up.stderr
    assert requests.get(link).content == src.read_bytes()
    hostport = urlsplit(server.url).netloc  # the backend token form: host:port
    ls = run_cli("list", "--server", hostport)
    assert ls.returncode == 0 and "cli.bin" in ls.stdout
    got = run_cli("download", link, "-o", str(tmp_path / "got.bin"), key=None)
    assert got.returncode == 0 and (tmp_path / "got.bin").read_bytes() == src.read_bytes()
    file_id = link.rsplit("/", 1)[1]
    assert run_cli("delete", file_id, "--server", server.url).returncode == 0
    assert requests.get(link).status_code == 404
    refused = run_cli("upload", str(src), "--server", server.url, "--api-key", "wrong-" + KEY, key=None)
    assert refused.returncode != 0
    assert "403 wrong API key" in refused.stderr and KEY not in refused.stderr + refused.stdout
    gone = run_cli("delete", file_id, "--server", server.url)
    assert gone.returncode != 0 and "404" in gone.stderr


def test_serve_refuses_to_start_without_api_key(tmp_path):
    r = run_cli("serve", "--folder", str(tmp_path / "s"), "--port", "0", key=None)
    assert r.returncode != 0 and "API key" in r.stderr
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    with ServerWithKeyFile(tmp_path / "s", key_file) as srv:
        assert requests.get(srv.url + "/api/files", headers=auth()).status_code == 200


class ServerWithKeyFile(LocalCloudServer):
    """A server reading its key from --api-key-file (the systemd way), not from the environment."""

    def __init__(self, folder, key_file):
        super().__init__(folder, "")
        self.key_file = key_file

    def _command(self, port, port_file):
        return super()._command(port, port_file) + ["--api-key-file", str(self.key_file)]


def test_client_does_not_import_the_server():
    code = ("import sys, local_cloud.client, local_cloud.testing; "
            "bad = [m for m in ('fastapi', 'uvicorn', 'starlette', 'airflow') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_server_address_forms():
    from local_cloud.client import base_url

    assert base_url("box:8600") == "http://box:8600"
    assert base_url("https://files.lab.example/cloud/") == "https://files.lab.example/cloud"
    with pytest.raises(ValueError):
        base_url("  ")


# --- name rules (no server needed) ------------------------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from local_cloud.names import name_problem  # noqa: E402


@settings(max_examples=400, deadline=None)
@given(st.text(min_size=1, max_size=80))
def test_accepted_names_are_one_path_component(name):
    """Whatever the name, an accepted one stays a single component inside the folder."""
    if name_problem(name) is None:
        base = Path("/srv/store")
        joined = (base / name).resolve()
        assert joined.parent == base and joined.name == name
        assert "/" not in name and "\x00" not in name


@given(st.sampled_from(["../", "..\\", "/", "%2f", "%2F", "%5c", "\x00", "%00", "\n"]),
       st.text(max_size=10), st.text(max_size=10))
def test_separators_anywhere_are_refused(bad, pre, post):
    assert name_problem(pre + bad + post) is not None
