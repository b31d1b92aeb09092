"""Python client of a local_cloud server (requests only; the storage backend wraps it).

Uploads are resumable: an upload session is opened, the bytes are PUT in large Content-Range
ranges read straight from disk, and after a dropped connection the client asks the server for
its offset and goes on from there. The SHA-256 is computed in a thread while the first ranges
are sent (small files: before, so that a retry of a stored file sends nothing at all).
"""
from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import requests

BLOCK = 1 << 20
Progress = Callable[[int, int], None]


class LocalCloudError(Exception):
    """A refused or failed call: `.status` is the HTTP code (None without a response), `.reason` the server's words."""

    def __init__(self, status: int | None, reason: str):
        super().__init__(f"{status} {reason}" if status else reason)
        self.status = status
        self.reason = reason


def base_url(server: str) -> str:
    """`host:port` or `http(s)://host:port[/prefix]` -> a base URL without trailing slash."""
    server = server.strip()
    if not server:
        raise ValueError("server address is empty")
    if "://" not in server:
        server = "http://" + server
    return server.rstrip("/")


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            h.update(block)
    return h.hexdigest()


class _Slice:
    """A byte range of a file as a sized iterable: requests sends it with Content-Length, 1 MiB per send."""

    def __init__(self, path, start: int, end: int, on_block: Callable[[int], None] | None):
        self.path, self.start, self.end, self.on_block = path, start, end, on_block

    def __len__(self) -> int:
        return self.end - self.start

    def __iter__(self):
        with open(self.path, "rb") as f:
            f.seek(self.start)
            left = self.end - self.start
            while left > 0:
                block = f.read(min(BLOCK, left))
                if not block:
                    raise LocalCloudError(None, "file shrank while being uploaded")
                left -= len(block)
                yield block
                if self.on_block:
                    self.on_block(len(block))


class _BackgroundHash:
    """SHA-256 of a file computed in a thread (hashlib releases the GIL on large blocks)."""

    def __init__(self, path):
        self._value: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self._thread.start()

    def _run(self, path) -> None:
        try:
            self._value = sha256_file(path)
        except BaseException as e:  # re-raised in the caller's thread by result()
            self._error = e

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _reason(resp: requests.Response) -> str:
    try:
        body = resp.json()
        detail = body.get("detail") if isinstance(body, dict) else None
        if detail:
            return detail if isinstance(detail, str) else str(detail)
    except ValueError:
        pass
    return resp.reason or "error"


class LocalCloudClient:
    """Talks to one local_cloud server with one API key (never shown in repr, logs or errors)."""

    def __init__(self, server: str, api_key: str, *, timeout: float = 60.0,
                 chunk_size: int = 64 << 20, retries: int = 8):
        self.base = base_url(server)
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.retries = retries
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {api_key}"

    def __repr__(self) -> str:
        return f"LocalCloudClient({self.base!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # plumbing ----------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, ok=(200,), **kw) -> requests.Response:
        kw.setdefault("timeout", self.timeout)
        try:
            resp = self._session.request(method, self.base + path, **kw)
        except requests.RequestException as e:
            raise LocalCloudError(None, f"cannot reach {self.base}: {type(e).__name__}") from None
        if resp.status_code not in ok:
            raise LocalCloudError(resp.status_code, _reason(resp))
        return resp

    # API ---------------------------------------------------------------------------------
    def health(self) -> dict:
        return self._call("GET", "/health").json()

    def status(self) -> dict:
        return self._call("GET", "/api/status").json()

    def list(self) -> list[dict]:
        return self._call("GET", "/api/files").json()

    def get(self, file_id: str) -> dict:
        return self._call("GET", f"/api/files/{quote(file_id, safe='')}").json()

    def delete(self, file_id: str) -> None:
        self._call("DELETE", f"/api/files/{quote(file_id, safe='')}", ok=(204,))

    def upload(self, path, name: str | None = None, *, keep_days: float = 0, progress: Progress | None = None,
               upload_key: str | None = None) -> dict:
        """Upload `path` as `name`; resumes after drops; returns the file record.

        The same name and content (or the same `upload_key`) gives back the record already
        stored, so a retried task never stores a file twice.
        """
        path = Path(path)
        name = name or path.name
        size = path.stat().st_size
        spec = {"name": name, "size": size, "keep_days": keep_days}
        if upload_key:
            spec["upload_key"] = upload_key
        hashing = _BackgroundHash(path)
        if size <= self.chunk_size:
            # One range: knowing the checksum first lets a retry of a stored file send nothing.
            spec["sha256"] = hashing.result()
        # else the file is hashed while its first ranges are sent, and the checksum goes with
        # the first PUT after it is known (at the latest with the last range).
        sess = self._open(spec)
        failures = 0
        while not sess.get("complete"):
            offset = sess["offset"]
            if offset >= size:
                # Every byte is there and another request is verifying and storing it: wait.
                failures += 1
                if failures > self.retries:
                    raise LocalCloudError(None, "upload complete on the server but never finished")
                sess = self._resume(spec, sess, failures)
                continue
            done = [offset]
            if progress:
                progress(offset, size)

            def on_block(n, done=done):
                done[0] += n
                progress(done[0], size)

            end = min(size, offset + self.chunk_size)
            headers = {"Content-Range": f"bytes {offset}-{end - 1}/{size}"}
            if end == size or hashing.done():
                spec["sha256"] = headers["X-Sha256"] = hashing.result()
            try:
                resp = self._session.put(
                    f"{self.base}/api/uploads/{sess['upload_id']}",
                    data=_Slice(path, offset, end, on_block if progress else None),
                    headers=headers, timeout=self.timeout)
            except requests.RequestException as e:
                failures += 1
                if failures > self.retries:
                    raise LocalCloudError(None, f"upload failed after {self.retries} retries: {type(e).__name__}") from None
                sess = self._resume(spec, sess, failures)
                continue
            if resp.status_code in (200, 201):
                new = resp.json()
                if not new.get("complete") and new["offset"] > offset:
                    failures = 0
                sess = new
            elif resp.status_code == 404:
                # Another request finished (or the server dropped) this session meanwhile:
                # opening again returns the stored file or a fresh session.
                failures += 1
                if failures > self.retries:
                    raise LocalCloudError(resp.status_code, _reason(resp))
                sess = self._open(spec)
            elif resp.status_code in (409, 502, 503, 504) or resp.status_code == 400 and not resp.content:
                failures += 1
                if failures > self.retries:
                    raise LocalCloudError(resp.status_code, _reason(resp))
                sess = self._resume(spec, sess, failures)
            else:
                raise LocalCloudError(resp.status_code, _reason(resp))
        if progress:
            progress(size, size)
        return sess["file"]

    def _open(self, spec: dict) -> dict:
        if spec["size"] == 0:
            # Nothing to resume: one PUT with an empty body.
            headers = {"X-Sha256": spec["sha256"], "X-Keep-Days": str(spec["keep_days"])}
            if spec.get("upload_key"):
                headers["X-Upload-Key"] = spec["upload_key"]
            resp = self._call("PUT", f"/api/files/{quote(spec['name'], safe='')}", ok=(200, 201),
                              data=b"", headers=headers)
            return {"complete": True, "file": resp.json()}
        body = self._call("POST", "/api/uploads", ok=(200, 201), json=spec).json()
        return body

    def _resume(self, spec: dict, sess: dict, failures: int) -> dict:
        """Wait a little, then learn where the server is; a vanished session starts anew."""
        deadline = time.monotonic() + self.timeout
        delay = min(0.2 * 2 ** (failures - 1), 5.0)
        while True:
            time.sleep(delay)  # back-off between attempts, not synchronisation
            try:
                resp = self._session.get(f"{self.base}/api/uploads/{sess['upload_id']}", timeout=self.timeout)
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise LocalCloudError(None, f"cannot reach {self.base} to resume the upload") from None
                delay = min(delay * 2, 5.0)
                continue
            if resp.status_code == 200:
                return resp.json()
            if resp.status_code == 404:
                return self._open(spec)  # finished meanwhile (the POST then returns it) or dropped
            raise LocalCloudError(resp.status_code, _reason(resp))

    def download(self, link_or_id: str, dest, *, progress: Progress | None = None) -> Path:
        """Fetch a file by its link or id into `dest` (a file path), streaming."""
        url = link_or_id if "://" in link_or_id else f"{self.base}/f/{quote(link_or_id, safe='')}"
        dest = Path(dest)
        try:
            with requests.get(url, stream=True, timeout=self.timeout) as resp:
                if resp.status_code != 200:
                    raise LocalCloudError(resp.status_code, _reason(resp))
                total = int(resp.headers.get("content-length", 0))
                done = 0
                with open(dest, "wb") as f:
                    for block in resp.iter_content(BLOCK):
                        f.write(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
        except requests.RequestException as e:
            raise LocalCloudError(None, f"download failed: {type(e).__name__}") from None
        return dest

