"""Resumable uploads: open a session, PUT byte ranges, ask for the offset, abort.

A session reserves the space of its whole file from the moment it is opened until it completes,
is aborted or is dropped (idle for the session TTL); see Store.reserved.
"""
from __future__ import annotations

import logging
import secrets
import time

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ...errors import Refusal, is_disk_full
from ...registry import SessionRow, iso
from ...store import PENDING, Hashing, Store, default_key
from ...streaming import Dropped, pump
from ..deps import Authenticated, SettingsDep, StoreDep, found, link_for
from ..models import RangeHeaders, UploadSpec, parse, small_json

log = logging.getLogger("local_cloud")
router = APIRouter(prefix="/api/uploads", dependencies=Authenticated)
NO_SESSION = "no such upload (finished, aborted or expired)"


def session_body(s: SessionRow, offset: int) -> dict:
    return {"complete": False, "upload_id": s.id, "name": s.name, "size": s.size,
            "sha256": s.sha256 or None, "offset": offset, "created_at": iso(s.created_at),
            "updated_at": iso(s.updated_at)}


def _at(s: SessionRow, offset: int, status: int = 200, **extra) -> JSONResponse:
    return JSONResponse({**extra, **session_body(s, offset)}, status, headers={"Upload-Offset": str(offset)})


def _session(store: Store, sid: str) -> SessionRow:
    return found(store.session(sid), NO_SESSION)


def _stored_key(s: SessionRow) -> str:
    return default_key(s.name, s.sha256) if s.upload_key.startswith(PENDING) else s.upload_key


@router.post("")
async def create_upload(request: Request, store: StoreDep):
    spec = parse(UploadSpec, await small_json(request))
    sha = spec.sha256 or ""
    sid = secrets.token_urlsafe(18)
    # A key starting with "pending/" is provisional (it only finds this session again when the
    # client repeats the POST); the stored file's key is then name + sha256 as without a key.
    provisional = spec.upload_key if spec.upload_key and spec.upload_key.startswith(PENDING) else None
    explicit = None if provisional else spec.upload_key
    key = explicit or (default_key(spec.name, sha) if sha else provisional or f"{PENDING}{sid}")
    if sha and (row := store.existing(key, spec.name, spec.size, sha)) is not None:
        return JSONResponse({"complete": True, "file": row.record(link_for(request, row.id))}, 200)
    if (s := store.session_by_key(provisional or key)) is None and provisional:
        s = store.session_by_key(key)
    if s is not None:
        if (s.name, s.size) != (spec.name, spec.size) or (sha and s.sha256 and s.sha256 != sha):
            raise Refusal(409, "upload key already used by an open upload of different content")
        return JSONResponse(session_body(s, store.offset(s.id)), 200)
    store.check_size(spec.size)
    store.check_space(spec.size)  # and, without an await in between, the session that reserves it:
    now = time.time()
    got = store.open_session(SessionRow(sid, key, spec.name, spec.size, sha, spec.keep_days or 0, now, now))
    if got.id == sid and spec.size == 0 and sha:  # nothing to send: finish it now
        st = store.hashing_for(sid)
        async with st.lock:
            await store.sync_hashing(sid, st)
            return await _finish(request, store, got, st)
    return JSONResponse(session_body(got, store.offset(got.id)), 201 if got.id == sid else 200)


@router.get("")
async def list_uploads(store: StoreDep):
    out = []
    for s in store.registry.sessions():
        if store.session(s.id) is not None:
            out.append(session_body(s, store.offset(s.id)))
    return out


@router.get("/{sid}")
async def get_upload(sid: str, store: StoreDep):
    """The session and its offset; `received_sha256` is the SHA-256 of the bytes received so far
    (null while a request is writing), so a new client can tell whether they are its file's."""
    s = _session(store, sid)
    st = store.hashing_for(sid)
    received = None
    if not st.lock.locked():
        async with st.lock:
            await store.sync_hashing(sid, st)
            received = st.hasher.copy().hexdigest()
    return {**session_body(s, store.offset(sid)), "received_sha256": received}


@router.delete("/{sid}", status_code=204)
async def abort_upload(sid: str, store: StoreDep):
    _session(store, sid)
    st = store.hashing.get(sid)
    if st is not None and st.lock.locked():
        raise Refusal(409, "a request is writing to this upload right now")
    await anyio.to_thread.run_sync(store.drop_session, sid)
    return Response(status_code=204)


def _announce(request: Request, store: Store, s: SessionRow, st: Hashing, announced: str):
    """A checksum arrives with a PUT: the session, or the answer when the content is known already."""
    if s.sha256:
        if s.sha256 != announced:
            raise Refusal(400, "X-Sha256 differs from the checksum this upload was opened with")
        return s
    key = s.upload_key if not s.upload_key.startswith(PENDING) else default_key(s.name, announced)
    try:
        row = store.existing(key, s.name, s.size, announced)
    except Refusal:
        store.drop_session(s.id)
        raise
    if row is not None:  # a retry of something already stored: stop sending
        store.drop_session(s.id)
        return JSONResponse({"complete": True, "file": row.record(link_for(request, row.id))}, 200)
    other = store.session_by_key(key)
    if other is not None and other.id != s.id and store.offset(other.id) > st.offset:
        # An earlier, interrupted upload of the same content (e.g. by a task before its retry)
        # is further along: continue that one instead.
        store.drop_session(s.id)
        log.info("upload %s continues upload %s at offset %d", s.id, other.id, store.offset(other.id))
        return _at(other, store.offset(other.id))
    return store.registry.announce(s.id, announced, key)


async def _finish(request: Request, store: Store, s: SessionRow, st: Hashing) -> JSONResponse:
    """All bytes are there: verify, store, answer 201 with the file record."""
    digest = st.hasher.hexdigest()
    if digest != s.sha256:
        store.drop_session(s.id)
        raise Refusal(422, f"checksum mismatch: received data has sha256 {digest}; upload discarded")
    row = await anyio.to_thread.run_sync(store.place, store.part(s.id), s.name, s.size, s.sha256,
                                         _stored_key(s), s.keep_days, s.id)
    store.hashing.pop(s.id, None)
    return JSONResponse({"complete": True, "file": row.record(link_for(request, row.id))}, 201)


async def _receive(request: Request, store: Store, s: SessionRow, st: Hashing, length: int,
                   idle_timeout: float) -> Response | None:
    """Append the body to the part file; a response when the body did not arrive whole."""
    try:
        with open(store.part(s.id), "ab") as fh:
            n = await pump(request, fh, st.hasher, length, idle_timeout)
    except Dropped as e:
        st.offset += e.args[0]
        store.touch_session(s.id)
        log.info("upload %s dropped at offset %d of %d; resumable", s.id, st.offset, s.size)
        return Response(status_code=400)
    except BaseException as e:
        st.offset = -1  # unknown state: rebuild from the file next time
        if isinstance(e, OSError) and is_disk_full(e):
            raise Refusal(507, "disk full while receiving the upload; what arrived is kept") from None
        raise
    st.offset += n
    store.touch_session(s.id)
    return None


@router.put("/{sid}")
async def put_range(sid: str, request: Request, store: StoreDep, settings: SettingsDep):
    s = _session(store, sid)
    h = parse(RangeHeaders, dict(request.headers))
    start, end, total = h.span
    if total != s.size or end < start or end > s.size:
        raise Refusal(416, f"range {h.content_range.removeprefix('bytes ')} does not fit an upload of {s.size} bytes")
    if h.content_length != end - start:
        raise Refusal(400, "Content-Length must equal the length of Content-Range")
    st = store.hashing_for(sid)
    if st.lock.locked():
        raise Refusal(409, "another request is writing to this upload")
    async with st.lock:
        s = _session(store, sid)  # again: a racing request may have finished or announced it
        await store.sync_hashing(sid, st)
        if h.sha256:
            outcome = _announce(request, store, s, st, h.sha256)
            if isinstance(outcome, Response):
                return outcome
            s = outcome
        if end == s.size and not s.sha256:
            raise Refusal(400, "X-Sha256 is required with the last range (no checksum announced yet)")
        if start != st.offset:
            return _at(s, st.offset, 409, detail=f"upload is at offset {st.offset}, not {start}")
        if end > start and (dropped := await _receive(request, store, s, st, end - start, settings.idle_timeout)):
            return dropped
        if st.offset < s.size:
            return _at(s, st.offset)
        return await _finish(request, store, s, st)
