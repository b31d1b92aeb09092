"""Stored files: one-shot upload, list, record, delete (all behind the API key)."""
from __future__ import annotations

import hashlib
import logging

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ...errors import Refusal, is_disk_full
from ...redact import link_tag
from ...store import default_key
from ...streaming import Dropped, pump
from ..deps import Authenticated, LiveFile, SettingsDep, StoreDep, link_for
from ..models import OneShotHeaders, checked_name, parse

log = logging.getLogger("local_cloud")
router = APIRouter(prefix="/api/files", dependencies=Authenticated)


@router.put("/{name:path}")
async def put_file(name: str, request: Request, store: StoreDep, settings: SettingsDep):
    """The whole file in one body; space reserved for it while it arrives."""
    try:
        name = checked_name(name)
    except ValueError as e:
        raise Refusal(400, str(e)) from None
    headers = parse(OneShotHeaders, dict(request.headers))
    key = headers.upload_key or default_key(name, headers.sha256)
    cl = request.headers.get("content-length")
    if cl is None or not cl.isdigit():
        raise Refusal(411, "Content-Length is required (use the resumable API for streams)")
    size = int(cl)
    if (row := store.existing(key, name, size, headers.sha256)) is not None:
        return JSONResponse(row.record(link_for(request, row.id)), 200)
    store.check_size(size)
    with store.one_shot(size) as tmp:
        hasher = hashlib.sha256()
        try:
            with open(tmp, "wb") as fh:
                await pump(request, fh, hasher, size, settings.idle_timeout)
        except Dropped as e:
            log.info("upload of %s dropped after %s of %d bytes; temp removed", name, e.args[0], size)
            return Response(status_code=400)
        except OSError as e:
            if is_disk_full(e):
                raise Refusal(507, "disk full while receiving the upload; nothing was stored") from None
            raise
        if hasher.hexdigest() != headers.sha256:
            raise Refusal(422, f"checksum mismatch: received data has sha256 {hasher.hexdigest()}")
        row = await anyio.to_thread.run_sync(store.place, tmp, name, size, headers.sha256, key,
                                             headers.keep_days)
    return JSONResponse(row.record(link_for(request, row.id)), 201)


@router.get("")
async def list_files(request: Request, store: StoreDep):
    return [r.record(link_for(request, r.id)) for r in store.live_files()]


@router.get("/{file_id}")
async def get_file(row: LiveFile, request: Request):
    return row.record(link_for(request, row.id))


@router.get("/{file_id}/verify")
async def verify_file(row: LiveFile, request: Request, store: StoreDep):
    """The stored bytes re-read and hashed now: `size` and `sha256` are what is on disk (null when
    its data file is gone), `intact` whether they still equal what was uploaded. Read-only: a
    damaged file is set aside when its upload is sent again (Store.existing)."""
    on_disk = await anyio.to_thread.run_sync(store.hash_on_disk, row)
    size, sha256 = on_disk or (None, None)
    if on_disk != (row.size, row.sha256):
        log.error("stored file %s (%s) is not what was uploaded: %s", link_tag(row.id), row.name,
                  "its data file is missing" if on_disk is None else f"{size} bytes, sha256 {sha256[:12]}")
    return {**row.record(link_for(request, row.id)), "size": size, "sha256": sha256,
            "intact": on_disk == (row.size, row.sha256)}


@router.delete("/{file_id}", status_code=204)
async def delete_file(row: LiveFile, store: StoreDep):
    await anyio.to_thread.run_sync(store.remove_file, row)
    log.info("deleted %s (%s)", link_tag(row.id), row.name)
    return Response(status_code=204)
