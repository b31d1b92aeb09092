"""The access log, written by us instead of uvicorn, and a bound on readers that stop reading.

uvicorn's access log prints the whole request target: link ids (the capability) and any query
string (where a careless user may put the API key). This one prints the path with file ids
replaced by their tag and never the query string, only that there was one.

A download to a client that stops reading would otherwise wait for its socket forever; every
send here must make progress within `idle_timeout` seconds, else the response is abandoned and
the connection closed.
"""
from __future__ import annotations

import asyncio
import logging
import time

from .redact import safe_path

log = logging.getLogger("local_cloud")
access_log = logging.getLogger("local_cloud.access")


class _ReaderStalled(Exception):
    pass


class AccessLog:
    """Pure ASGI middleware (BaseHTTPMiddleware would push streamed bodies through a queue)."""

    def __init__(self, app, idle_timeout: float):
        self.app = app
        self.idle_timeout = idle_timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = [0]
        t0 = time.perf_counter()

        async def timed_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            try:
                await asyncio.wait_for(send(message), self.idle_timeout)
            except TimeoutError:
                raise _ReaderStalled from None

        client = scope.get("client") or ("?", 0)
        target = safe_path(scope["path"]) + ("?…" if scope.get("query_string") else "")
        try:
            await self.app(scope, receive, timed_send)
        except _ReaderStalled:
            log.warning("%s stopped reading %s for %g s; response abandoned", client[0], target, self.idle_timeout)
        finally:
            access_log.info('%s "%s %s HTTP/%s" %d %.0f ms', client[0], scope["method"], target,
                            scope["http_version"], status[0], (time.perf_counter() - t0) * 1000)
