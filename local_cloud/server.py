"""The local_cloud HTTP server: FastAPI routes over a folder and a SQLite registry.

Layout of the folder:
    registry.sqlite3   what is stored and what is being uploaded (the truth for serving)
    files/<id>         verified files, named by their random id (a user's name never becomes a path)
    .tmp/              uploads in progress; renamed into files/ only once complete and verified

See README.md in this package for the HTTP API.
"""
from __future__ import annotations

import asyncio
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import socket
import time
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import anyio.to_thread
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse

from . import __version__
from .names import name_problem
from .registry import FileRow, Registry, SessionRow, iso

log = logging.getLogger("local_cloud")

BUFFER = 1 << 20  # bytes handed to a worker thread per write+hash; bounds memory per upload
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
MAX_KEEP_DAYS = 36500
PENDING = "pending/"  # upload-key prefix of a session whose checksum is not known yet


@dataclass
class Settings:
    folder: Path
    api_key: str
    max_size: int = 50 << 30
    min_free: int = 64 << 20  # disk left free after an upload, so the box keeps breathing
    purge_interval: float = 600.0
    session_ttl: float = 86400.0  # an untouched resumable upload is dropped after this
    idle_timeout: float = 120.0  # a body that sends nothing for this long is treated as dropped
    public_url: str | None = None
    fsync: bool = True


@dataclass
class _Hashing:
    """Running SHA-256 of a session's part file, valid while `offset` equals the file size."""

    hasher: "hashlib._Hash"
    offset: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class _Dropped(Exception):
    """The client went away (or stalled) before the body was complete."""


class Store:
    """Folder + registry + in-memory upload state; everything the routes need."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.folder = Path(settings.folder)
        self.files_dir = self.folder / "files"
        self.tmp_dir = self.folder / ".tmp"
        self.registry: Registry | None = None
        self.hashing: dict[str, _Hashing] = {}
        self.report: dict = {}

    # start-up ----------------------------------------------------------------------------
    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # One server per folder: the running hashes of open uploads live in this process.
        self._lock_fh = open(self.folder / ".lock", "w")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"{self.folder} is already served by another local_cloud process") from None
        db = self.folder / "registry.sqlite3"
        if not db.exists() and any(d.is_dir() and any(d.iterdir()) for d in (self.files_dir, self.tmp_dir)):
            # Reconciling would delete every file it does not know: never do that to a folder
            # that was not ours or whose registry was lost.
            raise SystemExit(f"{self.folder} holds files/ or .tmp/ content but no registry.sqlite3; "
                             "refusing to start (restore the registry or choose another folder)")
        self.files_dir.mkdir(exist_ok=True)
        self.tmp_dir.mkdir(exist_ok=True)
        self.registry = Registry(db)
        self.report = self.reconcile()

    def reconcile(self) -> dict:
        """Make the registry and the folder agree after a crash or a hand edit; log what changed."""
        reg = self.registry
        sessions = {s.id: s for s in reg.sessions()}
        removed_tmp = []
        for p in self.tmp_dir.iterdir():
            sid = p.name[: -len(".part")] if p.name.endswith(".part") else None
            if sid is None or sid not in sessions:
                removed_tmp.append(p.name)
                _unlink(p)
        for s in sessions.values():
            if not self.part(s.id).exists():
                log.warning("upload session %s (%s): part file missing, session dropped", s.id, s.name)
                reg.delete_session(s.id)
        known = {f.id: f for f in reg.files()}
        unregistered = []
        for p in self.files_dir.iterdir():
            if p.name not in known:
                # Renamed into place but never recorded (crash in between): never acknowledged
                # to any client, so the client will retry; keeping it would only leak space.
                unregistered.append(p.name)
                _unlink(p)
        missing = []
        for f in known.values():
            p = self.files_dir / f.id
            try:
                ok = p.stat().st_size == f.size
            except FileNotFoundError:
                ok = False
            if not ok:
                missing.append({"id": f.id, "name": f.name})
                log.warning("registered file %s (%s) is missing or has the wrong size; unregistered", f.id, f.name)
                reg.delete_file(f.id)
                _unlink(p)
        if removed_tmp:
            log.info("removed %d orphan temp file(s): %s", len(removed_tmp), ", ".join(removed_tmp))
        if unregistered:
            log.warning("removed %d unregistered file(s) from files/", len(unregistered))
        report = {
            "checked_at": iso(time.time()),
            "files": len(known) - len(missing),
            "sessions": len(reg.sessions()),
            "orphan_temp_removed": removed_tmp,
            "unregistered_removed": unregistered,
            "missing": missing,
        }
        log.info("registry reconciled: %d file(s), %d open upload(s), %d missing",
                 report["files"], report["sessions"], len(missing))
        return report

    def close(self) -> None:
        if self.registry:
            self.registry.close()
        if getattr(self, "_lock_fh", None):
            self._lock_fh.close()

    # paths and checks --------------------------------------------------------------------
    def part(self, sid: str) -> Path:
        return self.tmp_dir / f"{sid}.part"

    def check_space(self, size: int, exclude_session: str | None = None) -> None:
        """507 when the announced size (plus what open uploads still need) does not fit."""
        outstanding = 0
        for s in self.registry.sessions():
            if s.id != exclude_session:
                with suppress(FileNotFoundError):
                    outstanding += max(0, s.size - self.part(s.id).stat().st_size)
        free = shutil.disk_usage(self.folder).free
        if size + outstanding + self.settings.min_free > free:
            raise HTTPException(507, f"not enough free disk for {size} bytes ({free} bytes free, "
                                     f"{outstanding} reserved by open uploads, {self.settings.min_free} kept free)")

    def check_size(self, size: int) -> None:
        if size > self.settings.max_size:
            raise HTTPException(413, f"file of {size} bytes is larger than the maximum of {self.settings.max_size} bytes")

    def existing(self, key: str, name: str, size: int, sha256: str) -> FileRow | None:
        """The stored file for this upload key, if any; 409 when the key was used for other content."""
        row = self.registry.file_by_key(key)
        if row is None:
            return None
        if row.expired():
            self.remove_file(row)
            return None
        if (row.name, row.size, row.sha256) != (name, size, sha256):
            raise HTTPException(409, "upload key already used for a different name or content")
        return row

    # storing -----------------------------------------------------------------------------
    def place(self, src: Path, fh, name: str, size: int, sha256: str, key: str, keep_days: float,
              session: str | None = None) -> FileRow:
        """Durably move a verified temp file into files/ and register it (runs in a thread)."""
        fh.flush()
        if self.settings.fsync:
            os.fsync(fh.fileno())
        fh.close()
        file_id = secrets.token_urlsafe(24)  # 192 random bits: the link is the only secret
        dest = self.files_dir / file_id
        os.replace(src, dest)
        if self.settings.fsync:
            _fsync_dir(self.files_dir)
        now = time.time()
        row = FileRow(file_id, name, size, sha256, key, now,
                      now + keep_days * 86400 if keep_days > 0 else None, 0)
        stored = (self.registry.complete_session(session, row) if session
                  else self.registry.add_file(row))
        if stored.id != file_id:  # the same upload key finished first elsewhere: keep one copy
            _unlink(dest)
        log.info("stored %s (%s, %d bytes)", stored.id, stored.name, stored.size)
        return stored

    def remove_file(self, row: FileRow) -> None:
        self.registry.delete_file(row.id)
        _unlink(self.files_dir / row.id)

    def drop_session(self, sid: str) -> None:
        self.registry.delete_session(sid)
        self.hashing.pop(sid, None)
        _unlink(self.part(sid))

    def hashing_for(self, sid: str) -> _Hashing:
        st = self.hashing.get(sid)
        if st is None:
            st = self.hashing[sid] = _Hashing(hashlib.sha256(), -1)
        return st

    async def sync_hashing(self, sid: str, st: _Hashing) -> None:
        """Rebuild a session's running hash from its part file (after a restart or a crash).

        Called with the session's lock held, so no write is in progress.
        """
        if st.offset != self.part(sid).stat().st_size:
            st.hasher, st.offset = await anyio.to_thread.run_sync(_hash_file, self.part(sid))

    # expiry ------------------------------------------------------------------------------
    def purge_victims(self, now: float) -> tuple[list[FileRow], list[str]]:
        files = self.registry.expired_files(now)
        stale = [s.id for s in self.registry.sessions()
                 if s.updated_at < now - self.settings.session_ttl
                 and not (s.id in self.hashing and self.hashing[s.id].lock.locked())]
        for f in files:
            self.registry.delete_file(f.id)
        for sid in stale:
            self.registry.delete_session(sid)
            self.hashing.pop(sid, None)
        return files, stale

    def purge_disk(self, files: list[FileRow], stale: list[str]) -> None:
        for f in files:
            _unlink(self.files_dir / f.id)
            log.info("expired: %s (%s)", f.id, f.name)
        for sid in stale:
            _unlink(self.part(sid))
            log.info("abandoned upload %s dropped", sid)

    async def purge(self) -> int:
        files, stale = self.purge_victims(time.time())
        if files or stale:
            await anyio.to_thread.run_sync(self.purge_disk, files, stale)
        return len(files)


def _unlink(p: Path) -> None:
    with suppress(FileNotFoundError):
        p.unlink()


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _hash_file(p: Path):
    h = hashlib.sha256()
    n = 0
    with open(p, "rb") as f:
        while block := f.read(BUFFER):
            h.update(block)
            n += len(block)
    return h, n


def _write_and_hash(fh, hasher, chunks: list) -> int:
    n = 0
    for c in chunks:  # the chunks as received: no joining copy
        fh.write(c)
        hasher.update(c)
        n += len(c)
    return n


async def _pump(request: Request, fh, hasher, limit: int, idle_timeout: float) -> int:
    """Stream the request body into fh and hasher with bounded memory; return bytes written.

    Network receive and disk write+hash overlap: one buffer fills on the event loop while the
    previous one is written by a worker thread. Whatever arrived before a drop is still written
    (a resumable upload keeps it). Raises _Dropped after writing when the body ended early.
    """
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    last = [loop.time()]
    stalled = [False]

    async def watchdog():
        while True:
            await asyncio.sleep(min(5.0, idle_timeout / 2))
            if loop.time() - last[0] > idle_timeout:
                stalled[0] = True
                me.cancel()
                return

    dog = asyncio.create_task(watchdog())
    written = 0
    buf: list = []
    buffered = 0
    pending = None
    dropped = False
    try:
        async for chunk in request.stream():
            last[0] = loop.time()
            if written + buffered + len(chunk) > limit:
                raise HTTPException(400, "body longer than announced")
            buf.append(chunk)
            buffered += len(chunk)
            if buffered >= BUFFER:
                if pending is not None:
                    written += await pending
                data, buf, buffered = buf, [], 0
                pending = asyncio.ensure_future(anyio.to_thread.run_sync(_write_and_hash, fh, hasher, data))
    except ClientDisconnect:
        dropped = True
    except asyncio.CancelledError:
        if not stalled[0]:
            raise
        me.uncancel()
        dropped = True
    finally:
        dog.cancel()
        if pending is not None:
            written += await pending
    if buf:
        written += await anyio.to_thread.run_sync(_write_and_hash, fh, hasher, buf)
    if dropped or written < limit:
        raise _Dropped(written)
    return written


def _content_disposition(name: str) -> str:
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


class _FileResponse(FileResponse):
    chunk_size = 1 << 20  # fewer thread hops per byte than Starlette's 64 KiB


def _keep_days(value) -> float:
    try:
        days = float(value)
    except (TypeError, ValueError):
        raise HTTPException(400, "keep_days must be a number >= 0") from None
    if not (0 <= days <= MAX_KEEP_DAYS):
        raise HTTPException(400, f"keep_days must be between 0 and {MAX_KEEP_DAYS}")
    return days


def _checked_name(name) -> str:
    problem = name_problem(name)
    if problem:
        raise HTTPException(400, f"invalid file name: {problem}")
    return name


def _checked_sha(value) -> str:
    if not isinstance(value, str) or not SHA256_RE.match(value.lower()):
        raise HTTPException(400, "sha256 must be 64 hexadecimal digits")
    return value.lower()


def _default_key(name: str, sha256: str) -> str:
    return f"{name}/{sha256}"  # '/' cannot occur in a name, so this is unambiguous


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    """Build the ASGI app; the folder is opened and reconciled in the lifespan unless already open."""
    store = store or Store(settings)
    api_key = settings.api_key.encode()

    async def purge_loop():
        while True:
            await asyncio.sleep(settings.purge_interval)
            try:
                await store.purge()
            except Exception:  # keep purging on later rounds whatever one round hit
                log.exception("purge failed")

    @asynccontextmanager
    async def lifespan(app):
        if store.registry is None:
            store.open()
        await store.purge()
        task = asyncio.create_task(purge_loop())
        try:
            yield
        finally:
            task.cancel()
            store.close()

    app = FastAPI(title="local_cloud", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store

    def require_key(request: Request) -> None:
        auth = request.headers.get("authorization", "")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-api-key", "")
        if not key:
            raise HTTPException(401, "missing API key (Authorization: Bearer ... or X-API-Key)",
                                headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(key.encode(), api_key):
            raise HTTPException(403, "wrong API key")

    auth = [Depends(require_key)]

    def link(request: Request, file_id: str) -> str:
        base = settings.public_url or str(request.base_url)
        return f"{base.rstrip('/')}/f/{file_id}"

    def session_body(s: SessionRow, offset: int) -> dict:
        return {"complete": False, "upload_id": s.id, "name": s.name, "size": s.size,
                "sha256": s.sha256 or None, "offset": offset, "created_at": iso(s.created_at),
                "updated_at": iso(s.updated_at)}

    @app.get("/health")
    async def health():
        return {"status": "ok", "version": __version__}

    @app.get("/api/status", dependencies=auth)
    async def status():
        rows = store.registry.files()
        return {"files": len(rows), "bytes": sum(r.size for r in rows),
                "sessions": len(store.registry.sessions()),
                "free_bytes": shutil.disk_usage(store.folder).free,
                "max_size": settings.max_size, "reconcile": store.report}

    # uploads: one shot -------------------------------------------------------------------
    @app.put("/api/files/{name:path}", dependencies=auth)
    async def put_file(name: str, request: Request):
        name = _checked_name(name)
        sha = _checked_sha(request.headers.get("x-sha256"))
        keep = _keep_days(request.headers.get("x-keep-days", "0"))
        key = request.headers.get("x-upload-key") or _default_key(name, sha)
        if len(key) > 1024:
            raise HTTPException(400, "X-Upload-Key longer than 1024 characters")
        cl = request.headers.get("content-length")
        if cl is None or not cl.isdigit():
            raise HTTPException(411, "Content-Length is required (use the resumable API for streams)")
        size = int(cl)
        if (row := store.existing(key, name, size, sha)) is not None:
            return JSONResponse(row.record(link(request, row.id)), 200)
        store.check_size(size)
        store.check_space(size)
        tmp = store.tmp_dir / f"{secrets.token_hex(16)}.upload"
        fh = open(tmp, "wb")
        try:
            hasher = hashlib.sha256()
            try:
                await _pump(request, fh, hasher, size, settings.idle_timeout)
            except _Dropped as e:
                log.info("upload of %s dropped after %s of %d bytes; temp removed", name, e.args[0], size)
                return Response(status_code=400)
            if hasher.hexdigest() != sha:
                raise HTTPException(422, f"checksum mismatch: received data has sha256 {hasher.hexdigest()}")
            row = await anyio.to_thread.run_sync(store.place, tmp, fh, name, size, sha, key, keep)
            return JSONResponse(row.record(link(request, row.id)), 201)
        finally:
            fh.close()
            _unlink(tmp)

    # uploads: resumable ------------------------------------------------------------------
    @app.post("/api/uploads", dependencies=auth)
    async def create_upload(request: Request):
        try:
            spec = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HTTPException(400, "body must be JSON") from None
        if not isinstance(spec, dict):
            raise HTTPException(400, "body must be a JSON object")
        name = _checked_name(spec.get("name"))
        size = spec.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise HTTPException(400, "size must be an integer >= 0")
        # The checksum may come later (X-Sha256 on a PUT): a big file is then hashed by the
        # client while it is being sent instead of in a full read before.
        sha = _checked_sha(spec["sha256"]) if spec.get("sha256") is not None else ""
        keep = _keep_days(spec.get("keep_days", 0) or 0)
        explicit = spec.get("upload_key")
        if explicit is not None and (not isinstance(explicit, str) or not 0 < len(explicit) <= 1024):
            raise HTTPException(400, "upload_key must be a string of 1 to 1024 characters")
        sid = secrets.token_urlsafe(18)
        key = explicit or (_default_key(name, sha) if sha else f"{PENDING}{sid}")
        if sha and (row := store.existing(key, name, size, sha)) is not None:
            return JSONResponse({"complete": True, "file": row.record(link(request, row.id))}, 200)
        if (s := store.registry.session_by_key(key)) is not None:
            if (s.name, s.size) != (name, size) or (sha and s.sha256 and s.sha256 != sha):
                raise HTTPException(409, "upload key already used by an open upload of different content")
            return JSONResponse(session_body(s, store.part(s.id).stat().st_size), 200)
        store.check_size(size)
        store.check_space(size)
        now = time.time()
        s = SessionRow(sid, key, name, size, sha, keep, now, now)
        store.part(s.id).touch()
        got = store.registry.add_session(s)
        if got.id != s.id:
            _unlink(store.part(s.id))
        return JSONResponse(session_body(got, store.part(got.id).stat().st_size), 201 if got.id == s.id else 200)

    def get_session(sid: str) -> SessionRow:
        s = store.registry.session(sid)
        if s is None or not store.part(sid).exists():
            raise HTTPException(404, "no such upload (finished, aborted or expired)")
        return s

    @app.get("/api/uploads", dependencies=auth)
    async def list_uploads():
        out = []
        for s in store.registry.sessions():
            with suppress(FileNotFoundError):
                out.append(session_body(s, store.part(s.id).stat().st_size))
        return out

    @app.get("/api/uploads/{sid}", dependencies=auth)
    async def get_upload(sid: str):
        s = get_session(sid)
        return session_body(s, store.part(sid).stat().st_size)

    @app.delete("/api/uploads/{sid}", dependencies=auth, status_code=204)
    async def abort_upload(sid: str):
        get_session(sid)
        st = store.hashing.get(sid)
        if st is not None and st.lock.locked():
            raise HTTPException(409, "a request is writing to this upload right now")
        store.drop_session(sid)
        return Response(status_code=204)

    @app.put("/api/uploads/{sid}", dependencies=auth)
    async def put_chunk(sid: str, request: Request):
        s = get_session(sid)
        m = RANGE_RE.match(request.headers.get("content-range", ""))
        if not m:
            raise HTTPException(400, "Content-Range: bytes START-END/TOTAL is required")
        start, end, total = map(int, m.groups())
        if total != s.size or end < start or end >= s.size:
            raise HTTPException(416, f"range {start}-{end}/{total} does not fit an upload of {s.size} bytes")
        cl = request.headers.get("content-length")
        if cl is None or int(cl) != end - start + 1:
            raise HTTPException(400, "Content-Length must equal the length of Content-Range")
        st = store.hashing_for(sid)
        if st.lock.locked():
            raise HTTPException(409, "another request is writing to this upload")
        async with st.lock:
            s = get_session(sid)  # again: a racing request may have finished or announced it
            await store.sync_hashing(sid, st)
            if request.headers.get("x-sha256"):
                announced = _checked_sha(request.headers["x-sha256"])
                if s.sha256 and s.sha256 != announced:
                    raise HTTPException(400, "X-Sha256 differs from the checksum this upload was opened with")
                if not s.sha256:
                    key = s.upload_key if not s.upload_key.startswith(PENDING) else _default_key(s.name, announced)
                    try:
                        row = store.existing(key, s.name, s.size, announced)
                    except HTTPException:
                        store.drop_session(sid)
                        raise
                    if row is not None:  # a retry of something already stored: stop sending
                        store.drop_session(sid)
                        return JSONResponse({"complete": True, "file": row.record(link(request, row.id))}, 200)
                    other = store.registry.session_by_key(key)
                    if other is not None and other.id != sid and store.part(other.id).exists():
                        # An earlier, interrupted upload of the same content (e.g. by a task
                        # before its retry) is further along: continue that one instead.
                        other_offset = store.part(other.id).stat().st_size
                        if other_offset > st.offset:
                            store.drop_session(sid)
                            log.info("upload %s continues upload %s at offset %d", sid, other.id, other_offset)
                            return JSONResponse(session_body(other, other_offset), 200,
                                                headers={"Upload-Offset": str(other_offset)})
                    s = store.registry.announce(sid, announced, key)
            if end == s.size - 1 and not s.sha256:
                raise HTTPException(400, "X-Sha256 is required with the last range (no checksum announced yet)")
            if start != st.offset:
                return JSONResponse({"detail": f"upload is at offset {st.offset}, not {start}",
                                     **session_body(s, st.offset)}, 409,
                                    headers={"Upload-Offset": str(st.offset)})
            with open(store.part(sid), "ab") as fh:
                try:
                    n = await _pump(request, fh, st.hasher, end - start + 1, settings.idle_timeout)
                except _Dropped as e:
                    st.offset += e.args[0]
                    store.registry.touch_session(sid, time.time())
                    log.info("upload %s dropped at offset %d of %d; resumable", sid, st.offset, s.size)
                    return Response(status_code=400)
                except BaseException:
                    st.offset = -1  # unknown state: rebuild from the file next time
                    raise
                st.offset += n
                store.registry.touch_session(sid, time.time())
                if st.offset < s.size:
                    return JSONResponse(session_body(s, st.offset), 200,
                                        headers={"Upload-Offset": str(st.offset)})
                digest = st.hasher.hexdigest()
                if digest != s.sha256:
                    store.drop_session(sid)
                    raise HTTPException(422, f"checksum mismatch: received data has sha256 {digest}; upload discarded")
                row = await anyio.to_thread.run_sync(
                    store.place, store.part(sid), fh, s.name, s.size, s.sha256,
                    _default_key(s.name, s.sha256) if s.upload_key.startswith(PENDING) else s.upload_key,
                    s.keep_days, sid)
            store.hashing.pop(sid, None)
            return JSONResponse({"complete": True, "file": row.record(link(request, row.id))}, 201)

    # management --------------------------------------------------------------------------
    def live_file(file_id: str) -> FileRow:
        row = store.registry.file(file_id)
        if row is None or row.expired():
            raise HTTPException(404, "no such file (expired or deleted)")
        return row

    @app.get("/api/files", dependencies=auth)
    async def list_files(request: Request):
        now = time.time()
        return [r.record(link(request, r.id)) for r in store.registry.files() if not r.expired(now)]

    @app.get("/api/files/{file_id}", dependencies=auth)
    async def get_file(file_id: str, request: Request):
        row = live_file(file_id)
        return row.record(link(request, row.id))

    @app.delete("/api/files/{file_id}", dependencies=auth, status_code=204)
    async def delete_file(file_id: str):
        row = live_file(file_id)
        await anyio.to_thread.run_sync(store.remove_file, row)
        log.info("deleted %s (%s)", row.id, row.name)
        return Response(status_code=204)

    # download ----------------------------------------------------------------------------
    @app.api_route("/f/{file_id}", methods=["GET", "HEAD"])
    async def download(file_id: str, request: Request):
        row = live_file(file_id)
        path = store.files_dir / row.id
        try:
            st = path.stat()
        except FileNotFoundError:
            raise HTTPException(404, "no such file (expired or deleted)") from None
        rng = request.headers.get("range", "")
        if request.method == "GET" and (not rng or re.match(r"^bytes=0-", rng)):
            store.registry.count_download(row.id)
        return _FileResponse(path, filename=row.name, stat_result=st,
                             headers={"content-disposition": _content_disposition(row.name),
                                      "x-content-type-options": "nosniff",
                                      "x-checksum-sha256": row.sha256})

    return app


def bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves so that port 0 works and the real port is known."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=2048)


def serve(settings: Settings, host: str, port: int, *, port_file: str | None = None,
          log_level: str = "info", root_path: str = "") -> None:
    """Run the server until SIGINT/SIGTERM."""
    import uvicorn

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    store = Store(settings)
    store.open()  # before listening: a folder we must not serve fails with a plain message
    sock = bind(host, port)
    real_port = sock.getsockname()[1]
    if port_file:
        tmp = f"{port_file}.tmp"
        Path(tmp).write_text(str(real_port))
        os.replace(tmp, port_file)
    log.info("serving %s on http://%s:%d", settings.folder, host, real_port)
    config = uvicorn.Config(create_app(settings, store), log_level=log_level, root_path=root_path,
                            timeout_graceful_shutdown=5, server_header=False)
    uvicorn.Server(config).run(sockets=[sock])
