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


def create_app(settings: ServerSettings, store: Store | None = None) -> FastAPI:
    """Build the app; the folder is opened and reconciled in the lifespan unless already open."""
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

    app = FastAPI(title="local_cloud", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.settings = settings
    app.state.auth_failures = AuthFailures()
    app.add_exception_handler(Refusal, _refused)
    app.add_exception_handler(RequestValidationError, _invalid)
    for module in (status, files, uploads, links):
        app.include_router(module.router)
    app.add_middleware(AccessLog, idle_timeout=settings.idle_timeout)
    return app
