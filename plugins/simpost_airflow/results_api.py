"""The catalog in the api-server: the Results page, its JSON, and catalog export/import.

Mounted by the simpost plugin under `/simpost` (plugin.py):

    GET  /simpost/results                   the Results page (HTML; Airflow's UI shows it in its menu)
    GET  /simpost/api/archives              ?simulation_id=&q=&limit=&offset= -> {"archives": [...], ...}
    GET  /simpost/api/catalog/export        ?since= -> versioned JSON lines (simpost.catalog.exchange)
    POST /simpost/api/catalog/import        JSON lines body -> counts, or 400 naming the bad line
    POST /simpost/api/archives/{sha256}/restore              start storage_restore for the user -> 202
    GET  /simpost/api/archives/{sha256}/restore              where that restore stands
    GET  /simpost/api/archives/{sha256}/copies/{backend}/link  a fresh link (S3's expire) -> 200
    (and ?fresh_links=true on /api/archives: every such copy's link signed anew)

Airflow protects only its own routes: a plugin's FastAPI app is reachable without a login unless it
checks Airflow's JWT itself. Every route here does, through Airflow's own `get_user` (the token in
`Authorization: Bearer`, else the `_token` cookie the UI's login sets, which the browser sends when
the UI opens this page in its iframe), and then asks the auth manager whether the user may use the
custom view "simpost catalog" (GET to read, POST to import; an import also needs leave to start runs
of simulation_postprocess, whose uploads write the catalog). The import takes its token only from the
Authorization header: a cookie alone never writes (no cross-site request can set the header).
A restore is started with the user's own token through Airflow's REST API (results_actions.py), so
Airflow itself decides whether they may start storage_restore; with the cookie it also needs the
page's `X-Requested-With` header, which no cross-site form can send.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timezone
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from simpost.catalog import Archive, Catalog, CatalogError, ImportRefused
from simpost_airflow import results_page
from simpost_airflow.results_actions import (ActionRefused, LinkSigner, RestoreView, archive_of, restore_runs,
                                             restore_view, start_restore)

log = logging.getLogger(__name__)
RESOURCE = "simpost catalog"  # the custom view an auth manager grants (FAB, Keycloak: a permission)
WRITING_DAG = "simulation_postprocess"  # whose runs write the catalog; an import needs leave to start them
MAX_LIMIT = 500
MAX_IMPORT_BYTES = 256 << 20  # far above any catalog of this project's scale; the body is held in memory
NO_STORE = {"cache-control": "no-store"}
ACTION_HEADER, ACTION_VALUE = "x-requested-with", "simpost-results"  # what the page's script sends
ACTION_SECONDS = 30.0  # one call to this Airflow's own REST API
TOKEN_COOKIE = "_token"  # Airflow's login cookie (COOKIE_NAME_JWT_TOKEN), which the UI's frame sends

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


@dataclass(frozen=True)
class Caller:
    """A reader of the catalog and the JWT they came with, to act in Airflow as them."""

    user: object
    token: str


async def _caller(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Caller:
    user = await _access("GET")(request, credentials)
    return Caller(user, credentials.credentials if credentials else request.cookies.get(TOKEN_COOKIE, ""))


async def _actor(request: Request, caller: Caller = Depends(_caller),
                 credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Caller:
    """A caller who may start something: with the cookie only, the page's header must be there."""
    if credentials is None and request.headers.get(ACTION_HEADER) != ACTION_VALUE:
        raise HTTPException(403, f"send the Airflow JWT as Authorization: Bearer (or {ACTION_HEADER}: {ACTION_VALUE}"
                                 " from the Results page)")
    return caller


def own_url(request: Request) -> str:
    """This api-server, on the address the request reached (the socket's, not the Host header, which
    may name a proxy in front), under Airflow's base path: where the REST API is for the actions."""
    from airflow.configuration import conf
    from simpost_airflow.plugin import base_path

    scheme = "https" if conf.get("api", "ssl_cert", fallback="") else "http"
    server = request.scope.get("server")
    if not server:
        return f"{request.url.scheme}://{request.url.netloc}{base_path()}"
    host, port = server
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}{base_path()}"


def _airflow(request: Request, token: str):
    """This Airflow's REST API, acting as the user whose token it is."""
    from simpost.airflow_api import AirflowApi

    return AirflowApi.as_user(own_url(request), token, timeout=ACTION_SECONDS)


def _relayed(call):
    """Airflow's or the action's refusal as this API's answer."""
    import requests

    try:
        return call()
    except ActionRefused as err:
        raise HTTPException(err.status, str(err)) from None
    except requests.HTTPError as err:
        detail = err.response.json().get("detail") if "json" in err.response.headers.get("content-type", "") else None
        raise HTTPException(err.response.status_code, f"Airflow answered: {detail or err.response.reason}") from None
    except requests.RequestException as err:
        raise HTTPException(502, f"Airflow's REST API did not answer: {type(err).__name__}") from None


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
def list_archives(simulation_id: str | None = None, q: str | None = None, limit: Limit = 100, offset: Offset = 0,
                  fresh_links: bool = False):
    """`fresh_links`: each present copy whose links expire gets a new one, with `link_expires`."""
    archives, more = _slice(simulation_id, q, limit, offset)
    found = [archive_json(a) for a in archives]
    if fresh_links:
        signer = LinkSigner()
        for archive, data in zip(archives, found):
            for copy, copy_data in zip(archive.copies, data["copies"]):
                fresh = signer.fresh(copy)
                if fresh is not None:
                    copy_data.update(link=fresh.link, link_expires=_iso(fresh.expires_at))
    return JSONResponse({"archives": found, "limit": limit, "offset": offset, "more": more}, headers=NO_STORE)


def _restore_answer(archive: Archive, view: RestoreView, status: int = 200):
    signer = LinkSigner()
    renewable = {c.backend for c in archive.present if signer.renews(c.backend)}
    return JSONResponse({"state": view.state, "run_id": view.run_id,
                         "html": results_page.copies_cell(archive, view, renewable)}, status, headers=NO_STORE)


@app.post("/api/archives/{sha256}/restore")
def restore_archive(sha256: str, request: Request, caller: Annotated[Caller, Depends(_actor)]):
    """Start storage_restore as the user (202), or answer where the running one stands (200)."""
    view, started = _relayed(lambda: start_restore(_airflow(request, caller.token), _open(), sha256))
    return _restore_answer(_open().archive(sha256), view, 202 if started else 200)


@app.get("/api/archives/{sha256}/restore")
def restore_status(sha256: str, request: Request, caller: Annotated[Caller, Depends(_caller)]):
    archive = _relayed(lambda: archive_of(_open(), sha256))
    runs = _relayed(lambda: restore_runs(_airflow(request, caller.token), [archive.sha256]))
    return _restore_answer(archive, restore_view(archive, runs[archive.sha256]))


@app.get("/api/archives/{sha256}/copies/{backend}/link", dependencies=[Reader])
def new_link(sha256: str, backend: str):
    archive = _relayed(lambda: archive_of(_open(), sha256))
    copy = next((c for c in archive.copies if c.backend == backend), None)
    if copy is None:
        raise HTTPException(404, f"archive {archive.sha256[:12]} has no copy on {backend}")
    if copy.state != "present":
        raise HTTPException(409, f"the copy on {backend} is {copy.state}: there is nothing to link to")
    fresh = LinkSigner().fresh(copy)
    if fresh is None:
        raise HTTPException(409, f"links to {backend} do not expire: the copy's link stays valid")
    return JSONResponse({"backend": backend, "link": fresh.link, "expires_at": _iso(fresh.expires_at),
                         "html": results_page.fresh_link(fresh)}, headers=NO_STORE)


@app.get("/results", response_class=HTMLResponse)
def results(request: Request, refused: Annotated[HTTPException | None, Depends(_page_reader)],
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
            simulation_id: str | None = None, q: str = "", offset: Offset = 0):
    if refused is not None:
        from airflow.api_fastapi.app import get_auth_manager

        login = get_auth_manager().get_url_login(next_url=str(request.url))
        return HTMLResponse(results_page.refusal(refused.status_code, refused.detail, login), refused.status_code,
                            headers=results_page.HEADERS)
    query = results_page.Query(path=request.url.path, search=q.strip(),
                               simulation_id=simulation_id or None, offset=offset)
    archives, more = _slice(query.simulation_id, query.search, query.limit, offset)
    token = credentials.credentials if credentials else request.cookies.get(TOKEN_COOKIE, "")
    signer = LinkSigner()
    renewable = {c.backend for a in archives for c in a.present if signer.renews(c.backend)}
    return HTMLResponse(results_page.render(archives, query, more, _restore_views(request, token, archives),
                                            renewable), headers=results_page.HEADERS)


def _restore_views(request: Request, token: str, archives: list[Archive]) -> dict[str, RestoreView]:
    """The restore of each archive with an archived copy; from the catalog alone when Airflow does
    not list the user's restore runs (a user who may not read storage_restore's runs)."""
    import requests

    archived = [a for a in archives if any(c.state == "archived" for c in a.copies)]
    if not archived:
        return {}
    try:
        runs = restore_runs(_airflow(request, token), [a.sha256 for a in archived])
    except requests.RequestException as err:
        log.warning("results view: restore runs not listed: %s", err)
        runs = {}
    return {a.sha256: restore_view(a, runs.get(a.sha256, [])) for a in archived}


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
