"""The connection list's Test button for `storage_backend` connections, as Airflow 3.3.2 sends it.

Registered through the `airflow.plugins` entry point (plugins/ itself is ignored by Airflow's
plugin loader, see plugins/.airflowignore). Two workarounds, both only for storage_backend tests
on `POST /api/v2/connections/test`:

- The UI sends `"port": Number(connection.port)`, which is 0 for a connection without a port,
  and the API refuses that as "a different destination than the stored one" (HTTP 400 "The host
  or port to test differs from the stored connection"). Port 0 addresses nothing, so it is
  dropped; apache/airflow#73298 makes the API do the same (not in 3.3.2).
- Airflow tests under a temporary connection id; the id the user clicked is kept for the request
  so the hook's message names it.
"""
from __future__ import annotations

import json
from contextvars import ContextVar

from airflow.plugins_manager import AirflowPlugin

from storage_backends.provider import CONN_TYPE

TEST_PATH = "/api/v2/connections/test"
MAX_BODY = 1 << 20

tested_connection_id: ContextVar[str | None] = ContextVar("tested_connection_id", default=None)


def _storage_backend_test(body: bytes) -> dict | None:
    """The parsed request body when it tests a storage_backend connection, else None."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("conn_type") == CONN_TYPE else None


class ConnectionTestMiddleware:
    """Pure ASGI middleware; every other request passes through untouched."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(TEST_PATH):
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more and len(body) <= MAX_BODY:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)  # client gone; let Airflow see it
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        data = _storage_backend_test(body) if not more else None
        if data is None:
            await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": more}], receive), send)
            return
        if data.get("port") == 0:
            del data["port"]
            body = json.dumps(data).encode()
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
                     + [(b"content-length", str(len(body)).encode())]}
        token = tested_connection_id.set(str(data.get("connection_id") or "") or None)
        try:
            await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive),
                           send)
        finally:
            tested_connection_id.reset(token)


def _replay(messages: list, then):
    """A `receive` that hands out the buffered messages first, then whatever the client sends next."""
    pending = list(messages)

    async def receive():
        return pending.pop(0) if pending else await then()

    return receive


class StorageBackendsPlugin(AirflowPlugin):
    name = "simpost_storage_backends"
    fastapi_root_middlewares = [
        {"middleware": ConnectionTestMiddleware, "args": [], "kwargs": {},
         "name": "storage_backend connection test"},
    ]
