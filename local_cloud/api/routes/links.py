"""Share links (public): the file for programs, a page with the report for browsers."""
from __future__ import annotations

import re
from urllib.parse import quote

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.responses import FileResponse

from ... import share
from ...errors import Refusal
from ...registry import FileRow
from ...store import GONE, Store
from ..deps import LiveFile, StoreDep, found

router = APIRouter(prefix="/f")
GET_HEAD = ["GET", "HEAD"]


class _FileResponse(FileResponse):
    chunk_size = 1 << 20  # fewer thread hops per byte than Starlette's 64 KiB


def content_disposition(name: str) -> str:
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _wants_page(request: Request) -> bool:
    return not request.headers.get("range") and share.wants_page(request.headers.get("accept", ""))


def _file(store: Store, row: FileRow, request: Request) -> _FileResponse:
    st = store.servable(row)
    rng = request.headers.get("range", "")
    if request.method == "GET" and (not rng or re.match(r"^bytes=0-", rng)):
        store.count_download(row)
    return _FileResponse(store.files_dir / row.id, filename=row.name, stat_result=st,
                         headers={"content-disposition": content_disposition(row.name),
                                  "x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
                                  "x-checksum-sha256": row.sha256, "vary": "Accept"})


@router.api_route("/{file_id}", methods=GET_HEAD)
async def open_link(file_id: str, request: Request, store: StoreDep):
    """The file itself, unless the client asks for HTML by name and no Range: then the page."""
    row = store.live_file(file_id)
    if not _wants_page(request):
        return _file(store, found(row, GONE), request)
    if row is None:
        return HTMLResponse(share.gone_page(), 404, headers=share.PAGE_HEADERS)
    path = store.files_dir / row.id
    store.servable(row)
    report = await anyio.to_thread.run_sync(share.find_report, path)
    return HTMLResponse(share.page(row, report), headers=share.PAGE_HEADERS)


@router.api_route("/{file_id}/download", methods=GET_HEAD)
async def download(row: LiveFile, request: Request, store: StoreDep):
    """The file, whatever the client accepts (the page's download button)."""
    return _file(store, row, request)


@router.api_route("/{file_id}/" + share.REPORT, methods=GET_HEAD)
async def report(row: LiveFile, store: StoreDep):
    """The archive's report.html, streamed from the zip, sandboxed; no other member is reachable."""
    path = store.files_dir / row.id
    store.servable(row)
    found = await anyio.to_thread.run_sync(share.find_report, path)
    if found is None:
        raise Refusal(404, "this archive has no report.html")
    return StreamingResponse(share.report_chunks(path), media_type="text/html; charset=utf-8",
                             headers={**share.REPORT_HEADERS, "content-length": str(found.size)})
