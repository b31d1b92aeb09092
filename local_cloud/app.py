"""The ASGI application: routers, the store's lifespan, error shape and the access log."""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from . import __version__
from .access import AccessLog
from .api.deps import WILDCARD_HOSTS
from .api.routes import files, links, status, uploads
from .errors import Refusal
from .ratelimit import AuthFailures
from .settings import ServerSettings
from .store import Store

log = logging.getLogger("local_cloud")


async def _refused(request: Request, exc: Refusal) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, exc.status, headers=exc.headers)


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": "invalid request"}, 400)


# The API face serves everything (the share pages too); the public face only what users fetch.
PUBLIC_ROUTERS = (status.public_router, links.router)
API_ROUTERS = (status.router, files.router, uploads.router)


class Faces:
    """One server, two listening sockets. A request is served by the full app (API and share pages,
    lifespan too) only when it reached the API socket; anything else by the public face, which has
    no API routes at all, so they are 404 there exactly as an unknown path is (fails closed)."""

    def __init__(self, api: FastAPI, public: FastAPI, api_addr: tuple[str, int]):
        self.api, self.public = api, public
        self.host, self.port = api_addr[0], api_addr[1]

    def on_api(self, scope) -> bool:
        local = scope.get("server")  # the address the connection reached (uvicorn: the socket's name)
        if not local or local[1] != self.port:
            return False
        return self.host in WILDCARD_HOSTS or local[0] == self.host

    async def __call__(self, scope, receive, send):
        app = self.api if scope["type"] != "http" or self.on_api(scope) else self.public
        await app(scope, receive, send)


def _face(settings: ServerSettings, store: Store, routers, public_addr, lifespan=None) -> FastAPI:
    app = FastAPI(title="local_cloud", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.settings = settings
    app.state.public_addr = public_addr
    app.state.auth_failures = AuthFailures()
    app.add_exception_handler(Refusal, _refused)
    app.add_exception_handler(RequestValidationError, _invalid)
    for router in routers:
        app.include_router(router)
    app.add_middleware(AccessLog, idle_timeout=settings.idle_timeout)
    return app


def create_app(settings: ServerSettings, store: Store | None = None,
               bound: list[tuple[str, int]] | None = None) -> FastAPI | Faces:
    """Build the app; the folder is opened and reconciled in the lifespan unless already open.

    `bound`: the listening sockets' addresses, the API's first; a second one (the public pages on
    their own address) gives the app two faces (Faces)."""
    public_addr = bound[1] if bound and len(bound) == 2 else None
    store = store or Store(settings)

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

    app = _face(settings, store, PUBLIC_ROUTERS + API_ROUTERS, public_addr, lifespan)
    if public_addr is None:
        return app
    return Faces(app, _face(settings, store, PUBLIC_ROUTERS, public_addr), bound[0])
