"""Emulator of the documented Dropbox HTTP API v2 (the routes simpost uses), for the real SDK.

Checks what Dropbox checks: the host a route lives on (api vs content), `Authorization: Bearer`
with a token it issued, the `Dropbox-API-Arg` header or JSON body with required and unknown
fields, the content_hash of uploaded data, upload-session offsets, and OAuth2 client
credentials on token refresh. Errors use Dropbox's status codes and error unions (409 route
errors, 401 auth errors, 429 with Retry-After, 5xx).

The API host is `127.0.0.1:<port>` and the content host `localhost:<port>`: one server, two
names, so a route sent to the wrong host is refused as Dropbox would.
"""
from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import itertools
import json
import secrets
import threading
from datetime import datetime, timezone
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .server import take_fault

BLOCK = 4 * 1024 * 1024


def content_hash(data: bytes) -> str:
    """Dropbox content hash: SHA-256 over the SHA-256 digests of each 4 MiB block."""
    outer = hashlib.sha256()
    for start in range(0, len(data), BLOCK):
        outer.update(hashlib.sha256(data[start:start + BLOCK]).digest())
    return outer.hexdigest()


def _when(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class RouteError(Exception):
    """A 409 route error with Dropbox's error union."""

    def __init__(self, summary: str, error: dict):
        super().__init__(summary)
        self.summary, self.error = summary, error


@dataclasses.dataclass
class Fault:
    """One injected failure for the next call of `route`."""

    route: str
    kind: str  # "rate_limit" | "server_error"
    retry_after: int = 1
    status: int = 500
    after_effect: bool = False  # apply the call, then answer the error (the client cannot know)


@dataclasses.dataclass
class StoredFile:
    path_display: str
    id: str
    data: bytes
    server_modified: datetime
    rev: str


# route -> (host kind, style, required fields, optional fields)
_ROUTES: dict[str, tuple[str, str, set[str], set[str]]] = {
    "files/upload": ("content", "upload", {"path"},
                     {"mode", "autorename", "client_modified", "mute", "property_groups", "strict_conflict",
                      "content_hash"}),
    "files/upload_session/start": ("content", "upload", set(), {"close", "session_type", "content_hash"}),
    "files/upload_session/append_v2": ("content", "upload", {"cursor"}, {"close", "content_hash"}),
    "files/upload_session/finish": ("content", "upload", {"cursor", "commit"}, {"content_hash"}),
    "files/list_folder": ("api", "rpc", {"path"},
                          {"recursive", "include_media_info", "include_deleted",
                           "include_has_explicit_shared_members", "include_mounted_folders", "limit",
                           "shared_link", "include_property_groups", "include_non_downloadable_files",
                           "include_restorable_info"}),
    "files/list_folder/continue": ("api", "rpc", {"cursor"}, set()),
    "files/get_metadata": ("api", "rpc", {"path"},
                           {"include_media_info", "include_deleted", "include_has_explicit_shared_members",
                            "include_property_groups"}),
    "files/download": ("content", "download", {"path"}, {"rev"}),
    "files/delete_v2": ("api", "rpc", {"path"}, {"parent_rev"}),
    "sharing/create_shared_link_with_settings": ("api", "rpc", {"path"}, {"settings"}),
    "sharing/list_shared_links": ("api", "rpc", set(), {"path", "cursor", "direct_only"}),
    "users/get_space_usage": ("api", "rpc", set(), set()),
    "users/get_current_account": ("api", "rpc", set(), set()),
}
_COMMIT_FIELDS = {"path", "mode", "autorename", "client_modified", "mute", "property_groups", "strict_conflict"}
_LINK_SETTINGS = {"require_password", "link_password", "expires", "audience", "access", "requested_visibility",
                  "allow_download"}


class DropboxEmulator:
    """State of one Dropbox account plus an app registered for it."""

    def __init__(self, *, app_key: str, app_secret: str, refresh_token: str, legacy_token: str | None = None,
                 allocated: int = 2 * 1024 ** 3, page_size: int = 2):
        self.app_key, self.app_secret, self.refresh_token = app_key, app_secret, refresh_token
        self.legacy_token = legacy_token
        self.allocated, self.page_size = allocated, page_size
        self.api_host = self.content_host = ""  # set by the fixture once the port is known
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget files, links, sessions, tokens and faults (between tests)."""
        with self._lock:
            self.files: dict[str, StoredFile] = {}
            self.folders: set[str] = {""}
            self.sessions: dict[str, dict] = {}
            self.links: dict[str, dict] = {}
            self.access_tokens: set[str] = set()
            self.issued_tokens: list[str] = []
            self.expired_tokens: set[str] = set()
            self.faults: collections.deque[Fault] = collections.deque()
            self.calls: list[tuple[str, object]] = []
            self.refreshes = 0
            self.expiry_allowed = True
            self.extra_used = 0
            self.down = False
            self._ids = itertools.count(1)

    # --- test controls --------------------------------------------------------------------
    def inject(self, fault: Fault) -> None:
        self.faults.append(fault)

    def expire_access_tokens(self) -> None:
        """Make every issued access token answer 401 expired_access_token, as after 4 hours."""
        with self._lock:
            self.expired_tokens |= self.access_tokens
            self.access_tokens.clear()

    def route_calls(self, route: str) -> list:
        return [arg for name, arg in self.calls if name == route]

    def seed_file(self, path: str, data: bytes, server_modified: datetime) -> None:
        """A file stored by someone else (web UI, another app), with the given server_modified."""
        self._check_path(path)
        with self._lock:
            existing = self.files.get(path.lower())
            self.files[path.lower()] = StoredFile(
                path_display=path, id=existing.id if existing else f"id:emu{next(self._ids)}", data=data,
                server_modified=server_modified.astimezone(timezone.utc).replace(microsecond=0),
                rev=secrets.token_hex(9))
            self._add_parents(path)

    def set_modified(self, path: str, server_modified: datetime) -> None:
        """Age (or rejuvenate) a stored file: Dropbox keeps server_modified to the second."""
        with self._lock:
            self.files[path.lower()].server_modified = server_modified.astimezone(timezone.utc).replace(microsecond=0)

    # --- ASGI -------------------------------------------------------------------------------
    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/oauth2/token", self._token, methods=["POST"]),
            Route("/2/{route:path}", self._dispatch, methods=["POST"]),
        ])

    @staticmethod
    def _unavailable() -> Response:
        return PlainTextResponse("Service Unavailable", status_code=503)

    async def _token(self, request: Request) -> Response:
        if self.down:
            return self._unavailable()
        if request.headers.get("host") != self.api_host:
            return PlainTextResponse("token endpoint lives on the api host", status_code=400)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
        if form.get("grant_type") != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if client_id != self.app_key or (client_secret is not None and client_secret != self.app_secret):
            return JSONResponse({"error": "invalid_client", "error_description": "Invalid client_id or client_secret"},
                                status_code=400)
        if form.get("refresh_token") != self.refresh_token:
            return JSONResponse({"error": "invalid_grant", "error_description": "refresh token is invalid or revoked"},
                                status_code=400)
        token = "sl." + secrets.token_urlsafe(24)
        with self._lock:
            self.access_tokens.add(token)
            self.issued_tokens.append(token)
            self.refreshes += 1
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": 14400})

    async def _dispatch(self, request: Request) -> Response:
        if self.down:  # an outage: every route, every host, until `down` is cleared
            return self._unavailable()
        route = request.path_params["route"]
        spec = _ROUTES.get(route)
        if spec is None:
            return PlainTextResponse(f"Unknown API function: {route!r}", status_code=404)
        host_kind, style, required, optional = spec
        expected_host = self.content_host if host_kind == "content" else self.api_host
        if request.headers.get("host") != expected_host:
            return PlainTextResponse(f'Error in call to API function "{route}": wrong host for this route',
                                     status_code=400)
        auth = self._authorize(route, request.headers.get("authorization"))
        if auth is not None:
            return auth
        body = await request.body()
        try:
            arg, data = self._argument(route, style, request, body)
        except ValueError as exc:
            return PlainTextResponse(f'Error in call to API function "{route}": {exc}', status_code=400)
        missing = required - set(arg)
        unknown = set(arg) - required - optional
        if missing or unknown:
            what = f"missing required field {sorted(missing)}" if missing else f"unknown field {sorted(unknown)}"
            return PlainTextResponse(f'Error in call to API function "{route}": {what}', status_code=400)
        self.calls.append((route, arg))

        fault = self._take_fault(route)
        if fault and fault.kind == "rate_limit":
            return JSONResponse(
                {"error_summary": "too_many_requests/..", "error": {"reason": {".tag": "too_many_requests"},
                                                                    "retry_after": fault.retry_after}},
                status_code=429, headers={"Retry-After": str(fault.retry_after)})
        if fault and not fault.after_effect:
            return PlainTextResponse("Internal Server Error", status_code=fault.status)
        handler = getattr(self, "_" + route.replace("/", "__"))
        try:
            with self._lock:
                result = handler(arg, data)
        except RouteError as err:
            status, payload = 409, {"error_summary": err.summary, "error": err.error}
        else:
            status, payload = 200, result
        if fault:  # effect applied, answer lost
            return PlainTextResponse("Internal Server Error", status_code=fault.status)
        request_id = {"X-Dropbox-Request-Id": secrets.token_hex(8)}
        if style == "download" and status == 200:  # the metadata rides in a header, the body is the file
            metadata, content = payload
            return Response(content, media_type="application/octet-stream",
                            headers={"Dropbox-API-Result": json.dumps(metadata), **request_id})
        return JSONResponse(payload, status_code=status, headers=request_id)

    def _authorize(self, route: str, header: str | None) -> Response | None:
        if not header:
            return PlainTextResponse(
                f'Error in call to API function "{route}": Must provide HTTP header "Authorization"', status_code=400)
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not token:
            return PlainTextResponse(
                f'Error in call to API function "{route}": Invalid authorization value in HTTP header',
                status_code=400)
        if token in self.expired_tokens:
            return self._auth_error("expired_access_token")
        if token not in self.access_tokens and token != self.legacy_token:
            return self._auth_error("invalid_access_token")
        return None

    @staticmethod
    def _auth_error(tag: str) -> Response:
        return JSONResponse({"error_summary": f"{tag}/..", "error": {".tag": tag}}, status_code=401)

    @staticmethod
    def _argument(route: str, style: str, request: Request, body: bytes) -> tuple[dict, bytes]:
        if style == "upload":
            if request.headers.get("content-type") != "application/octet-stream":
                raise ValueError('Bad HTTP "Content-Type" header; expecting "application/octet-stream"')
            raw = request.headers.get("dropbox-api-arg")
            if raw is None:
                raise ValueError('Must provide HTTP header "Dropbox-API-Arg" or URL parameter "arg"')
            data = body
        elif style == "download":  # no body; the argument in the header (or ?arg=)
            if request.headers.get("content-type", "") not in ("", "text/plain", "text/plain; charset=utf-8"):
                raise ValueError('Bad HTTP "Content-Type" header; expecting "text/plain" or none for downloads')
            raw = request.headers.get("dropbox-api-arg") or request.query_params.get("arg")
            if raw is None:
                raise ValueError('Must provide HTTP header "Dropbox-API-Arg" or URL parameter "arg"')
            data = b""
        else:
            if not request.headers.get("content-type", "").startswith("application/json"):
                raise ValueError('Bad HTTP "Content-Type" header; expecting "application/json"')
            raw, data = body.decode() or "null", b""
        try:
            arg = json.loads(raw)
        except ValueError:
            raise ValueError("could not decode input as JSON") from None
        if arg is None:
            arg = {}
        if not isinstance(arg, dict):
            raise ValueError("request argument must be a JSON object")
        return arg, data

    def _take_fault(self, route: str) -> Fault | None:
        return take_fault(self.faults, self._lock, route)

    # --- helpers --------------------------------------------------------------------------
    @staticmethod
    def _tag(value) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return value.get(".tag")

    @staticmethod
    def _check_path(path: str) -> None:
        if not isinstance(path, str) or not path.startswith("/") or path.endswith("/"):
            raise RouteError("path/malformed_path/", {".tag": "path", "path": {".tag": "malformed_path"}})

    def _check_hash(self, arg: dict, data: bytes) -> None:
        expected = arg.get("content_hash")
        if expected is not None and expected != content_hash(data):
            raise RouteError("content_hash_mismatch/", {".tag": "content_hash_mismatch"})

    def _used(self) -> int:
        return sum(len(f.data) for f in self.files.values()) + self.extra_used

    def _metadata(self, f: StoredFile) -> dict:
        name = f.path_display.rsplit("/", 1)[1]
        return {".tag": "file", "name": name, "id": f.id, "path_lower": f.path_display.lower(),
                "path_display": f.path_display, "client_modified": _when(f.server_modified),
                "server_modified": _when(f.server_modified), "rev": f.rev, "size": len(f.data),
                "is_downloadable": True, "content_hash": content_hash(f.data)}

    def _commit(self, commit: dict, data: bytes) -> dict:
        path = commit["path"]
        self._check_path(path)
        mode = self._tag(commit.get("mode", "add"))
        existing = self.files.get(path.lower())
        if existing and mode == "add" and existing.data != data and not commit.get("autorename"):
            raise RouteError("path/conflict/file/", {".tag": "path", "reason": {".tag": "conflict",
                                                                              "conflict": {".tag": "file"}}})
        if self._used() - (len(existing.data) if existing else 0) + len(data) > self.allocated:
            raise RouteError("path/insufficient_space/", {".tag": "path", "reason": {".tag": "insufficient_space"}})
        stored = StoredFile(path_display=path, id=existing.id if existing else f"id:emu{next(self._ids)}",
                            data=data, server_modified=datetime.now(timezone.utc),
                            rev=secrets.token_hex(9))
        self.files[path.lower()] = stored
        self._add_parents(path)
        return self._metadata(stored)

    def _add_parents(self, path: str) -> None:
        parts = path.lower().split("/")[1:-1]
        self.folders.update("/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1))

    def _session(self, cursor: dict) -> dict:
        if not isinstance(cursor, dict) or {"session_id", "offset"} - set(cursor):
            raise ValueError("cursor needs session_id and offset")
        session = self.sessions.get(cursor["session_id"])
        if session is None:
            raise RouteError("not_found/", {".tag": "not_found"})
        if session["finished"]:
            raise RouteError("not_found/", {".tag": "not_found"})
        if cursor["offset"] != len(session["data"]):
            raise RouteError("incorrect_offset/", {".tag": "incorrect_offset", "correct_offset": len(session["data"])})
        return session

    # --- routes -----------------------------------------------------------------------------
    def _files__upload(self, arg: dict, data: bytes) -> dict:
        if len(data) > 150 * 1024 * 1024:
            raise RouteError("payload_too_large/", {".tag": "payload_too_large"})
        self._check_hash(arg, data)
        return self._commit(arg, data)

    def _files__upload_session__start(self, arg: dict, data: bytes) -> dict:
        self._check_hash(arg, data)
        session_id = "sess:" + secrets.token_hex(12)
        self.sessions[session_id] = {"data": bytearray(data), "closed": bool(arg.get("close")), "finished": False}
        return {"session_id": session_id}

    def _files__upload_session__append_v2(self, arg: dict, data: bytes) -> None:
        session = self._session(arg["cursor"])
        if session["closed"]:
            raise RouteError("closed/", {".tag": "closed"})
        self._check_hash(arg, data)
        session["data"] += data
        session["closed"] = bool(arg.get("close"))
        return None

    def _files__upload_session__finish(self, arg: dict, data: bytes) -> dict:
        try:
            session = self._session(arg["cursor"])
        except RouteError as err:
            raise RouteError("lookup_failed/" + err.summary, {".tag": "lookup_failed", "lookup_failed": err.error})
        commit = arg["commit"]
        if not isinstance(commit, dict) or "path" not in commit or set(commit) - _COMMIT_FIELDS:
            raise ValueError("commit needs path and only known fields")
        self._check_hash(arg, data)
        whole = bytes(session["data"] + data)
        metadata = self._commit(commit, whole)
        session["finished"] = True
        return metadata

    def _files__list_folder(self, arg: dict, data: bytes) -> dict:
        folder = arg["path"].rstrip("/").lower()
        if folder not in self.folders:
            raise RouteError("path/not_found/", {".tag": "path", "path": {".tag": "not_found"}})
        entries = [self._metadata(f) for p, f in sorted(self.files.items()) if p.rsplit("/", 1)[0] == folder]
        return self._page(entries, 0, min(arg.get("limit") or self.page_size, self.page_size))

    def _files__list_folder__continue(self, arg: dict, data: bytes) -> dict:
        try:
            state = json.loads(base64.urlsafe_b64decode(arg["cursor"]))
        except ValueError:
            raise RouteError("reset/", {".tag": "reset"}) from None
        return self._page(state["entries"], state["start"], state["size"])

    def _page(self, entries: list, start: int, size: int) -> dict:
        """A page of at most `size` entries (the call's limit, but never more than page_size)."""
        end = start + size
        cursor = base64.urlsafe_b64encode(json.dumps({"entries": entries, "start": end, "size": size}).encode()).decode()
        return {"entries": entries[start:end], "cursor": cursor, "has_more": end < len(entries)}

    def _lookup(self, path: str) -> StoredFile:
        """A file by path (or by "id:..."), as Dropbox resolves both; LookupError not_found else."""
        if path.startswith("id:"):
            stored = next((f for f in self.files.values() if f.id == path), None)
        else:
            self._check_path(path)
            stored = self.files.get(path.lower())
        if stored is None:
            raise RouteError("path/not_found/", {".tag": "path", "path": {".tag": "not_found"}})
        return stored

    def _files__get_metadata(self, arg: dict, data: bytes) -> dict:
        if arg["path"].rstrip("/").lower() in self.folders - {""}:
            folder = arg["path"].rstrip("/")
            return {".tag": "folder", "name": folder.rsplit("/", 1)[1], "id": "id:folder",
                    "path_lower": folder.lower(), "path_display": folder}
        return self._metadata(self._lookup(arg["path"]))

    def _files__download(self, arg: dict, data: bytes) -> tuple[dict, bytes]:
        stored = self._lookup(arg["path"])
        if arg.get("rev") not in (None, stored.rev):
            raise RouteError("path/not_found/", {".tag": "path", "path": {".tag": "not_found"}})
        return self._metadata(stored), stored.data

    def _files__delete_v2(self, arg: dict, data: bytes) -> dict:
        stored = self.files.pop(arg["path"].lower(), None)
        if stored is None:
            raise RouteError("path_lookup/not_found/", {".tag": "path_lookup", "path_lookup": {".tag": "not_found"}})
        self.links.pop(arg["path"].lower(), None)
        return {"metadata": self._metadata(stored)}

    def _link(self, stored: StoredFile, expires: str | None) -> dict:
        meta = self._metadata(stored)
        token = secrets.token_urlsafe(10)
        link = {".tag": "file", "url": f"https://www.dropbox.com/scl/fi/{token}/{meta['name']}?rlkey=x&dl=0",
                "id": stored.id, "name": meta["name"], "path_lower": meta["path_lower"],
                "link_permissions": {"can_revoke": True, "resolved_visibility": {".tag": "public"},
                                     "visibility_policies": [], "can_set_expiry": self.expiry_allowed,
                                     "can_remove_expiry": self.expiry_allowed, "allow_download": True,
                                     "can_allow_download": True, "can_disallow_download": False,
                                     "allow_comments": True, "team_restricts_comments": False},
                "client_modified": meta["client_modified"], "server_modified": meta["server_modified"],
                "rev": stored.rev, "size": len(stored.data)}
        if expires:
            link["expires"] = expires
        return link

    def _sharing__create_shared_link_with_settings(self, arg: dict, data: bytes) -> dict:
        stored = self.files.get(arg["path"].lower())
        if stored is None:
            raise RouteError("path/not_found/", {".tag": "path", "path": {".tag": "not_found"}})
        settings = arg.get("settings") or {}
        if set(settings) - _LINK_SETTINGS:
            raise ValueError(f"unknown field in settings {sorted(set(settings) - _LINK_SETTINGS)}")
        existing = self.links.get(arg["path"].lower())
        if existing:
            raise RouteError("shared_link_already_exists/..", {
                ".tag": "shared_link_already_exists",
                "shared_link_already_exists": {".tag": "metadata", "metadata": existing}})
        if settings.get("expires"):
            datetime.strptime(settings["expires"], "%Y-%m-%dT%H:%M:%SZ")
            if not self.expiry_allowed:
                raise RouteError("settings_error/not_authorized/",
                                 {".tag": "settings_error", "settings_error": {".tag": "not_authorized"}})
        link = self._link(stored, settings.get("expires"))
        self.links[arg["path"].lower()] = link
        return link

    def _sharing__list_shared_links(self, arg: dict, data: bytes) -> dict:
        path = (arg.get("path") or "").lower()
        links = [link for p, link in self.links.items() if not path or p == path]
        return {"links": links, "has_more": False}

    def _users__get_space_usage(self, arg: dict, data: bytes) -> dict:
        return {"used": self._used(), "allocation": {".tag": "individual", "allocated": self.allocated}}

    def _users__get_current_account(self, arg: dict, data: bytes) -> dict:
        return {
            "account_id": "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc", "email": "lab@example.org", "email_verified": True,
            "name": {"given_name": "Lab", "surname": "Account", "familiar_name": "Lab",
                     "display_name": "Lab Account", "abbreviated_name": "LA"},
            "disabled": False, "locale": "en", "referral_link": "https://db.tt/emu", "is_paired": False,
            "account_type": {".tag": "basic"},
            "root_info": {".tag": "user", "root_namespace_id": "1", "home_namespace_id": "1"},
        }
