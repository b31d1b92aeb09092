"""The catalog in the api-server: the Results page, its JSON, and catalog export/import.

Mounted by the simpost plugin under `/simpost` (plugin.py):

    GET  /simpost/results                   the Results page (HTML; Airflow's UI shows it in its menu)
    GET  /simpost/api/archives              ?simulation_id=&q=&limit=&offset= -> {"archives": [...], ...}
    GET  /simpost/api/catalog/export        ?since= -> versioned JSON lines (simpost.catalog.exchange)
    POST /simpost/api/catalog/import        JSON lines body -> counts, or 400 naming the bad line

Airflow protects only its own routes: a plugin's FastAPI app is reachable without a login unless it
checks Airflow's JWT itself. Every route here does, through Airflow's own `get_user` (the token in
`Authorization: Bearer`, else the `_token` cookie the UI's login sets, which the browser sends when
the UI opens this page in its iframe), and then asks the auth manager whether the user may use the
custom view "simpost catalog" (GET to read, POST to import; an import also needs leave to start runs
of simulation_postprocess, whose uploads write the catalog). The import takes its token only from the
Authorization header: a cookie alone never writes (no cross-site request can set the header).
"""
from __future__ import annotations

import functools
from dataclasses import asdict
from datetime import date, datetime, time, timezone
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from simpost.catalog import Archive, Catalog, CatalogError, ImportRefused
from simpost_airflow import results_page

RESOURCE = "simpost catalog"  # the custom view an auth manager grants (FAB, Keycloak: a permission)
WRITING_DAG = "simulation_postprocess"  # whose runs write the catalog; an import needs leave to start them
MAX_LIMIT = 500
MAX_IMPORT_BYTES = 256 << 20  # far above any catalog of this project's scale; the body is held in memory
NO_STORE = {"cache-control": "no-store"}

app = FastAPI(title="simpost catalog", description=__doc__.split("\n\n")[0], docs_url=None, redoc_url=None,
              openapi_url=None)
_bearer = HTTPBearer(auto_error=False)


@functools.cache
def catalog() -> Catalog:
    """The deployment's catalog, opened (and migrated) on first use; a failed open is retried next time."""
    from simpost_airflow.catalog import catalog_url

    return Catalog.open(catalog_url())


def _access(method: str):
    """A dependency: the Airflow user of the request, allowed `method` on the catalog, else 401/403."""

    async def user(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)):
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.core_api.security import get_user

        if method != "GET" and credentials is None:
            raise HTTPException(401, "Not authenticated: send the Airflow JWT as Authorization: Bearer")
        found = await get_user(request, None, credentials)
        manager = get_auth_manager()
        allowed = manager.is_authorized_custom_view(method=method, resource_name=RESOURCE, user=found)
        if allowed and method != "GET":  # an import writes what upload tasks write: only for who may start them
            from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

            allowed = manager.is_authorized_dag(method="POST", user=found, access_entity=DagAccessEntity.RUN,
                                                details=DagDetails(id=WRITING_DAG))
        if not allowed:
            raise HTTPException(403, f"user {found.get_name()!r} may not {'read' if method == 'GET' else 'change'}"
                                     " the simpost catalog")
        return found

    return user


Reader = Depends(_access("GET"))
Writer = Depends(_access("POST"))


async def _page_reader(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)):
    """The page's check: the refusal itself (rendered as a page), or None when the user may read."""
    try:
        await _access("GET")(request, credentials)
    except HTTPException as refused:
        return refused
    return None


def _open() -> Catalog:
    try:
        return catalog()
    except CatalogError as err:  # its message names the database, never a password
        raise HTTPException(503, str(err)) from None


def archive_json(archive: Archive) -> dict:
    data = asdict(archive)
    for copy in data["copies"]:
        del copy["archive_sha256"]
    return _iso(data)


def _iso(value):
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso(v) for v in value]
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()
    return value


def _slice(simulation_id: str | None, search: str | None, limit: int, offset: int) -> tuple[list[Archive], bool]:
    """One page of archives and whether more follow (one row more is asked for to know)."""
    found = _open().archives(simulation_id=simulation_id or None, search=search or None, limit=limit + 1,
                             offset=offset)
    return found[:limit], len(found) > limit


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0)]


@app.get("/api/archives", dependencies=[Reader])
def list_archives(simulation_id: str | None = None, q: str | None = None, limit: Limit = 100, offset: Offset = 0):
    archives, more = _slice(simulation_id, q, limit, offset)
    return JSONResponse({"archives": [archive_json(a) for a in archives], "limit": limit, "offset": offset,
                         "more": more}, headers=NO_STORE)


@app.get("/results", response_class=HTMLResponse)
def results(request: Request, refused: Annotated[HTTPException | None, Depends(_page_reader)],
            simulation_id: str | None = None, q: str = "", offset: Offset = 0):
    if refused is not None:
        from airflow.api_fastapi.app import get_auth_manager

        login = get_auth_manager().get_url_login(next_url=str(request.url))
        return HTMLResponse(results_page.refusal(refused.status_code, refused.detail, login), refused.status_code,
                            headers=results_page.HEADERS)
    query = results_page.Query(path=request.url.path, search=q.strip(),
                               simulation_id=simulation_id or None, offset=offset)
    archives, more = _slice(query.simulation_id, query.search, query.limit, offset)
    return HTMLResponse(results_page.render(archives, query, more), headers=results_page.HEADERS)


def parse_since(text: str | None) -> datetime | None:
    """A date or an ISO time; without a zone it is UTC."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(text), time())
        except ValueError:
            raise HTTPException(400, f"since: {text[:40]!r} is not a date like 2026-11-21 or 2026-11-21T14:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@app.get("/api/catalog/export", dependencies=[Reader])
def export_catalog(since: str | None = None):
    moment = parse_since(since)
    lines = _open().export_lines(since=moment)
    name = f"simpost-catalog-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.jsonl"
    return StreamingResponse((line + "\n" for line in lines), media_type="application/x-ndjson",
                             headers={**NO_STORE, "content-disposition": f'attachment; filename="{name}"'})


@app.post("/api/catalog/import", dependencies=[Writer])
async def import_catalog(request: Request):
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_IMPORT_BYTES:
            raise HTTPException(413, f"an import is at most {MAX_IMPORT_BYTES >> 20} MiB; nothing was imported")
    try:
        lines = decode_lines(bytes(body))
        result = await run_in_threadpool(_open().import_lines, lines)
    except ImportRefused as err:
        return JSONResponse({"detail": str(err), "line": err.line}, 400, headers=NO_STORE)
    return JSONResponse({**asdict(result), "changed": result.changed}, headers=NO_STORE)


def decode_lines(body: bytes) -> list[str]:
    """The body's lines as text; a line that is not UTF-8 is refused by its number."""
    lines = []
    for number, raw in enumerate(body.split(b"\n"), 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise ImportRefused(number, f"not UTF-8 (byte {err.start + 1})") from None
    return lines
