"""What the routes depend on: the store, the settings, the API key check and link building."""
from __future__ import annotations

import hmac
import logging
import math
from typing import Annotated

from fastapi import Depends, Request

from ..errors import Refusal
from ..ratelimit import AuthFailures, client_id
from ..registry import FileRow
from ..settings import ServerSettings
from ..store import GONE, Store

log = logging.getLogger("local_cloud")

# Query parameters a careless caller may put a key in; refused so that the key is not "accepted
# from the URL" by accident in some future version, and never logged (see access.py).
KEY_PARAMS = {"api_key", "apikey", "api-key", "key", "token", "access_token", "x-api-key", "auth", "authorization"}


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_settings(request: Request) -> ServerSettings:
    return request.app.state.settings


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[ServerSettings, Depends(get_settings)]


def found(value, what: str):
    """`value`, or 404 saying `what` when it is None."""
    if value is None:
        raise Refusal(404, what)
    return value


async def get_live_file(file_id: str, store: StoreDep) -> FileRow:
    """The file a route's {file_id} names: stored, not expired, not being deleted (else 404)."""
    return found(store.live_file(file_id), GONE)


LiveFile = Annotated[FileRow, Depends(get_live_file)]


def _presented_key(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-api-key", "")


async def require_key(request: Request, settings: SettingsDep) -> None:
    """(async: runs on the event loop, not in a thread, so the failure counts need no lock.)
    The API key, from `Authorization: Bearer` or `X-API-Key` only; wrong keys are rate-limited."""
    expected = settings.api_key.get_secret_value().encode()
    for name, value in request.query_params.multi_items():
        if name.lower() in KEY_PARAMS or hmac.compare_digest(value.encode(), expected):
            raise Refusal(400, "an API key must never be sent in the URL (URLs end up in logs and "
                               "histories); send it as Authorization: Bearer")
    failures: AuthFailures = request.app.state.auth_failures
    who = client_id(request.client.host if request.client else None)
    wait = failures.wait(who)
    if wait > 0:
        raise Refusal(429, "too many wrong API keys from this address; try again later",
                      headers={"Retry-After": str(math.ceil(wait))})
    key = _presented_key(request)
    if not key:
        raise Refusal(401, "missing API key (Authorization: Bearer ... or X-API-Key)",
                      headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(key.encode(), expected):
        if failures.failed(who):
            log.warning("wrong API keys from %s: further attempts rate-limited", who)
        raise Refusal(403, "wrong API key")


Authenticated = [Depends(require_key)]


WILDCARD_HOSTS = {"", "0.0.0.0", "::"}  # a socket bound to every address


def public_base(request: Request) -> str:
    """Where users fetch links: the public face's address when it has its own, else as requested."""
    addr = request.app.state.public_addr  # the bound socket's (numeric host, port)
    if addr is None:
        return str(request.base_url)
    named = request.app.state.settings.public_address[0]
    host = named if named not in WILDCARD_HOSTS else request.url.hostname
    host = f"[{host}]" if ":" in host else host
    return f"{request.url.scheme}://{host}:{addr[1]}{request.scope.get('root_path', '')}"


def link_for(request: Request, file_id: str) -> str:
    base = request.app.state.settings.public_url or public_base(request)
    return f"{base.rstrip('/')}/f/{file_id}"
