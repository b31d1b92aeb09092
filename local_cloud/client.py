"""Python client of a local_cloud server (requests only; the storage backend wraps it).

Uploads are resumable: an upload session is opened, the bytes are PUT in large Content-Range
ranges read straight from disk, and after a dropped connection the client asks the server for
its offset and goes on from there. The SHA-256 is computed in a thread while the first ranges
are sent (small files: before, so that a retry of a stored file sends nothing at all).

Retries: this client is the one retry layer of every call (tenacity; the storage backend adds
none, Airflow's task retries are the outer layer). A call is retried on network errors, 429 and
5xx (except 507) with jittered exponential back-off, until `retry_budget` seconds pass without
progress: for an upload, without the server acknowledging new bytes; for other calls, since the
call started. So a server that is down costs an upload at most `retry_budget` seconds plus one
connect timeout before it fails.
"""
from __future__ import annotations

import hashlib
import logging
import os
import random
import secrets
import threading
import time
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception

from .redact import safe_path

BLOCK = 1 << 20
# seconds without progress before a call gives up; LOCAL_CLOUD_RETRY_BUDGET sets it for every client
# made after it is set (an operator who would rather fail fast; the tests, which stop servers on purpose)
RETRY_BUDGET_ENV, DEFAULT_RETRY_BUDGET = "LOCAL_CLOUD_RETRY_BUDGET", 120.0
CONNECT_TIMEOUT = 10.0
FIRST_WAIT, MAX_WAIT = 0.5, 10.0  # back-off between attempts: 0.5, 1, 2, 4, 8, 10, 10 ... s (+ jitter)
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
PROVISIONAL = "pending/"  # key prefix the server swaps for name + sha256 once the checksum is known
Progress = Callable[[int, int], None]
log = logging.getLogger("local_cloud.client")


class LocalCloudError(Exception):
    """A refused or failed call: `.status` is the HTTP code (None without a response), `.reason` the server's words."""

    def __init__(self, status: int | None, reason: str, *, transient: bool | None = None,
                 retry_after: float | None = None):
        super().__init__(f"{status} {reason}" if status else reason)
        self.status = status
        self.reason = reason
        self.transient = (status is None or status in TRANSIENT_STATUS) if transient is None else transient
        self.retry_after = retry_after


def base_url(server: str) -> str:
    """`host:port` or `http(s)://host:port[/prefix]` -> a base URL without trailing slash."""
    server = server.strip()
    if not server:
        raise ValueError("server address is empty")
    if "://" not in server:
        server = "http://" + server
    return server.rstrip("/")


def sha256_file(path, limit: int | None = None) -> str:
    """SHA-256 of a file, or of its first `limit` bytes."""
    h = hashlib.sha256()
    left = limit
    with open(path, "rb") as f:
        while block := f.read(BLOCK if left is None else min(BLOCK, left)):
            h.update(block)
            if left is not None:
                left -= len(block)
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
                    raise LocalCloudError(None, "file shrank while being uploaded", transient=False)
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


def _json(resp: requests.Response) -> dict:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refused(resp: requests.Response) -> LocalCloudError:
    try:
        after = float(resp.headers.get("retry-after", ""))
    except ValueError:
        after = None
    return LocalCloudError(resp.status_code, _reason(resp), retry_after=after)


class _Clock:
    """When a call last made progress; the retry budget counts from there."""

    def __init__(self):
        self.last = time.monotonic()

    def tick(self) -> None:
        self.last = time.monotonic()


class LocalCloudClient:
    """Talks to one local_cloud server with one API key (never shown in repr, logs or errors)."""

    def __init__(self, server: str, api_key: str, *, timeout: float = 60.0,
                 chunk_size: int = 64 << 20, retry_budget: float | None = None):
        self.base = base_url(server)
        self.timeout = (min(CONNECT_TIMEOUT, timeout), timeout)  # (connect, read)
        self.chunk_size = chunk_size
        self.retry_budget = retry_budget if retry_budget is not None \
            else float(os.environ.get(RETRY_BUDGET_ENV) or DEFAULT_RETRY_BUDGET)
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

    # the one retry layer -------------------------------------------------------------------
    def _retrying(self, clock: _Clock, what: str) -> Retrying:
        budget = self.retry_budget

        def out_of_budget(state: RetryCallState) -> bool:
            return time.monotonic() - clock.last >= budget

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception()
            backoff = min(MAX_WAIT, FIRST_WAIT * 2 ** (state.attempt_number - 1)) * random.uniform(0.5, 1.0)
            hinted = exc.retry_after if isinstance(exc, LocalCloudError) and exc.retry_after else backoff
            return max(0.0, min(hinted, budget - (time.monotonic() - clock.last)))

        def before_sleep(state: RetryCallState) -> None:
            log.warning("%s at %s: %s; retry %d in %.1f s", what, self.base, state.outcome.exception(),
                        state.attempt_number, state.next_action.sleep)

        return Retrying(retry=retry_if_exception(lambda e: isinstance(e, LocalCloudError) and e.transient),
                        stop=out_of_budget, wait=wait, before_sleep=before_sleep, reraise=True)

    def _request(self, method: str, url: str, **kw) -> requests.Response:
        kw.setdefault("timeout", self.timeout)
        try:
            return self._session.request(method, url, **kw)
        except requests.RequestException as e:
            raise LocalCloudError(None, f"cannot reach {self.base}: {type(e).__name__}") from None

    def _call(self, method: str, path: str, *, ok=(200,), gone_ok: bool = False, **kw) -> requests.Response:
        """One API call with retries; `gone_ok`: a 404 after a failed attempt means that attempt did it."""
        for attempt in self._retrying(_Clock(), f"{method} {safe_path(path)}"):
            with attempt:
                resp = self._request(method, self.base + path, **kw)
                done = resp.status_code in ok or (gone_ok and resp.status_code == 404
                                                  and attempt.retry_state.attempt_number > 1)
                if not done:
                    raise _refused(resp)
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

    def verify(self, file_id: str) -> dict:
        """The file's record with `size`/`sha256` of its bytes as re-read on disk now, and `intact`."""
        return self._call("GET", f"/api/files/{quote(file_id, safe='')}/verify").json()

    def delete(self, file_id: str) -> None:
        self._call("DELETE", f"/api/files/{quote(file_id, safe='')}", ok=(204,), gone_ok=True)

    def upload(self, path, name: str | None = None, *, keep_days: float = 0, progress: Progress | None = None,
               upload_key: str | None = None) -> dict:
        """Upload `path` as `name`; resumes after drops; returns the file record.

        The same name and content (or the same `upload_key`) gives back the record already
        stored, so a retried task never stores a file twice; an earlier interrupted upload of
        the same file is continued where it stopped, so a retry never needs the space twice.
        """
        job = _Upload(self, Path(path), name or Path(path).name, keep_days, upload_key, progress)
        for attempt in self._retrying(job.clock, f"upload of {job.name}"):
            with attempt:
                record = job.attempt()
        if progress:
            progress(job.size, job.size)
        return record

    def download(self, link_or_id: str, dest, *, progress: Progress | None = None) -> Path:
        """Fetch a file by its link or id into `dest` (a file path), streaming; resumes after drops."""
        url = link_or_id if "://" in link_or_id else f"{self.base}/f/{quote(link_or_id, safe='')}"
        dest = Path(dest)
        clock = _Clock()
        with open(dest, "wb") as f:
            for attempt in self._retrying(clock, "download"):
                with attempt:
                    _fetch_rest(url, f, clock, self.timeout, progress)
        return dest


def _fetch_rest(url: str, f, clock: _Clock, timeout, progress: Progress | None) -> None:
    """GET what `f` does not hold yet (Range from its size); links are public: no API key sent."""
    have = f.tell()
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with requests.get(url, stream=True, timeout=timeout, headers=headers) as resp:
            if resp.status_code not in (200, 206):
                raise _refused(resp)
            if resp.status_code == 200 and have:
                f.seek(0)
                f.truncate()
            total = f.tell() + int(resp.headers.get("content-length", 0))
            for block in resp.iter_content(BLOCK):
                f.write(block)
                clock.tick()
                if progress:
                    progress(f.tell(), total)
            if f.tell() < total:
                raise LocalCloudError(None, "download cut short")
    except requests.RequestException as e:
        raise LocalCloudError(None, f"download failed: {type(e).__name__}") from None


class _Upload:
    """The state of one upload across attempts: the file, its checksum, the server's session."""

    def __init__(self, client: LocalCloudClient, path: Path, name: str, keep_days: float,
                 upload_key: str | None, progress: Progress | None):
        self.c, self.path, self.name, self.progress = client, path, name, progress
        self.size = path.stat().st_size
        self.clock = _Clock()
        self.explicit_key = upload_key
        # A provisional key makes a retried POST (answer lost) find its session instead of
        # opening a second one that would reserve the space again; the stored file's key is
        # still name + sha256 (the server swaps it once the checksum is known).
        self.spec = {"name": name, "size": self.size, "keep_days": keep_days,
                     "upload_key": upload_key or PROVISIONAL + secrets.token_urlsafe(12)}
        self.hashing = _BackgroundHash(path)
        if self.size <= client.chunk_size:
            # One range: knowing the checksum first lets a retry of a stored file send nothing.
            self._know_sha()
        # else the file is hashed while its first ranges are sent, and the checksum goes with
        # the first PUT after it is known (at the latest with the last range).
        self.sess: dict | None = None

    def _know_sha(self) -> str:
        self.spec["sha256"] = self.hashing.result()
        return self.spec["sha256"]

    def attempt(self) -> dict:
        """Continue from wherever the server is; returns the record once stored."""
        self.sess = self._start() if self.sess is None else self._where()
        while not self.sess.get("complete"):
            self.sess = self._send_next()
        return self.sess["file"]

    def _api(self, method: str, path: str, **kw) -> requests.Response:
        return self.c._request(method, self.c.base + path, **kw)

    def _start(self) -> dict:
        if "sha256" not in self.spec and not self.explicit_key:
            earlier = self._earlier_session()
            if earlier is not None:
                return earlier
        return self._open()

    def _open(self) -> dict:
        if self.hashing.done() and "sha256" not in self.spec:
            self._know_sha()
        resp = self._api("POST", "/api/uploads", json=self.spec)
        if resp.status_code not in (200, 201):
            raise _refused(resp)
        return resp.json()

    def _earlier_session(self) -> dict | None:
        """An interrupted session of this very file (e.g. by the attempt before a task retry).

        Same name and size, and the server's hash of the bytes it holds equals the hash of as
        many bytes of our file: then those bytes need not be sent again.
        """
        resp = self._api("GET", "/api/uploads")
        if resp.status_code != 200:
            raise _refused(resp)
        candidates = [s for s in resp.json() if s["name"] == self.name and s["size"] == self.size and s["offset"] > 0]
        for s in sorted(candidates, key=lambda s: -s["offset"]):
            detail = self._api("GET", f"/api/uploads/{s['upload_id']}")
            if detail.status_code != 200 or not detail.json().get("received_sha256"):
                continue  # finished meanwhile, or somebody is writing to it
            body = detail.json()
            if sha256_file(self.path, body["offset"]) == body["received_sha256"]:
                log.info("upload of %s continues an earlier upload at byte %d", self.name, body["offset"])
                return body
        return None

    def _where(self) -> dict:
        """After a failure: the session's offset, or a fresh start when it is gone."""
        resp = self._api("GET", f"/api/uploads/{self.sess['upload_id']}")
        if resp.status_code == 200:
            return resp.json()
        if resp.status_code == 404:
            return self._open()  # finished meanwhile (the POST then returns it) or dropped
        raise _refused(resp)

    def _reporter(self, offset: int) -> Callable[[int], None] | None:
        """Progress callback for the blocks of one range starting at `offset`."""
        if not self.progress:
            return None
        self.progress(offset, self.size)
        done = [offset]

        def on_block(n: int) -> None:
            done[0] += n
            self.progress(done[0], self.size)

        return on_block

    def _send_next(self) -> dict:
        size, offset = self.size, self.sess["offset"]
        if offset >= size:
            # Every byte is there and another request is verifying and storing it: wait.
            raise LocalCloudError(None, "upload complete on the server, waiting for it to be stored", transient=True)
        end = min(size, offset + self.c.chunk_size)
        headers = {"Content-Range": f"bytes {offset}-{end - 1}/{size}"}
        if end == size or self.hashing.done():
            headers["X-Sha256"] = self._know_sha()
        resp = self._api("PUT", f"/api/uploads/{self.sess['upload_id']}",
                         data=_Slice(self.path, offset, end, self._reporter(offset)), headers=headers)
        if resp.status_code in (200, 201):
            new = resp.json()
            if new.get("complete") or new["offset"] > offset or new["upload_id"] != self.sess["upload_id"]:
                self.clock.tick()
            return new
        if resp.status_code == 404:  # finished by another request, or dropped: open again
            return self._open()
        if resp.status_code == 409 and "upload_id" in (body := _json(resp)):
            return body  # not at the server's offset: continue from there
        if resp.status_code == 409 or (resp.status_code == 400 and not resp.content):
            # busy with another request, or the server saw our body end early
            raise LocalCloudError(resp.status_code, _reason(resp), transient=True)
        raise _refused(resp)
