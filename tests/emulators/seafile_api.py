"""Emulator of the documented Seafile web API (api2 + v2.1) and its file server upload API.

Checks what Seafile checks: `Authorization: Token <token>` on Seahub routes (`Bearer` only from
version 11), the library id, required query and form parameters (p, parent_dir, file,
repo_id/path), that a folder exists before an upload link is given for it, and the
Content-Range / Content-Disposition pair of resumable uploads against the bytes already
received. The file server (`/seafhttp/upload-api/<token>`) trusts the link token, like Seafile.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import re
import secrets
import threading
import time
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .server import take_fault


@dataclasses.dataclass
class Fault:
    """One injected failure for the next request of `route` (a key of `_ROUTE_KEYS`)."""

    route: str
    kind: str = "server_error"  # or "rate_limit"
    status: int = 500
    retry_after: int = 1
    after_effect: bool = False


class SeafileEmulator:
    def __init__(self, *, token: str, username: str, password: str, repo_id: str, version: str = "11.0.5",
                 total: int = 10 * 1024 ** 3):
        self.token, self.username, self.password, self.repo_id = token, username, password, repo_id
        self.total = total
        self.base_url = ""  # set by the fixture
        self._lock = threading.Lock()
        self.reset(version)

    def reset(self, version: str = "11.0.5") -> None:
        with self._lock:
            self.version = version
            self.files: dict[str, dict] = {}
            self.dirs: set[str] = {"/"}
            self.partial: dict[tuple[str, str], bytearray] = {}
            self.upload_links: dict[str, str] = {}
            self.download_links: dict[str, str] = {}
            self.share_links: dict[str, dict] = {}
            self.faults: collections.deque[Fault] = collections.deque()
            self.calls: list[tuple[str, str, dict]] = []

    def inject(self, fault: Fault) -> None:
        self.faults.append(fault)

    def route_calls(self, route: str) -> list[dict]:
        return [params for name, _method, params in self.calls if name == route]

    def seed_file(self, path: str, data: bytes, mtime: float) -> None:
        """A file stored by someone else (web UI, a sync client), with the given mtime (Unix seconds)."""
        with self._lock:
            parts = path.strip("/").split("/")[:-1]
            self.dirs.update("/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1))
            self.files[path] = {"data": data, "mtime": int(mtime), "id": hashlib.sha1(data).hexdigest()}

    def set_modified(self, path: str, mtime: float) -> None:
        """Age (or rejuvenate) a stored file: Seafile lists mtime as whole Unix seconds."""
        with self._lock:
            self.files[path]["mtime"] = int(mtime)

    # --- ASGI -------------------------------------------------------------------------------
    def app(self) -> Starlette:
        r = self._route
        return Starlette(routes=[
            Route("/api2/server-info/", r("server-info", self._server_info, auth=False), methods=["GET"]),
            Route("/api2/auth-token/", r("auth-token", self._auth_token, auth=False), methods=["POST"]),
            Route("/api2/auth/ping/", r("ping", self._ping), methods=["GET"]),
            Route("/api2/account/info/", r("account-info", self._account_info), methods=["GET"]),
            Route("/api2/repos/", r("repos", self._repos), methods=["GET"]),
            Route("/api2/repos/{repo_id}/", r("repo", self._repo), methods=["GET"]),
            Route("/api2/repos/{repo_id}/upload-link/", r("upload-link", self._upload_link), methods=["GET"]),
            Route("/api2/repos/{repo_id}/dir/", r("dir", self._dir), methods=["GET", "POST"]),
            Route("/api2/repos/{repo_id}/file/", r("file", self._file), methods=["GET", "DELETE"]),
            Route("/api2/repos/{repo_id}/file/detail/", r("file-detail", self._file_detail), methods=["GET"]),
            Route("/seafhttp/files/{token}/{name}", r("download", self._download, auth=False), methods=["GET"]),
            Route("/api/v2.1/repos/{repo_id}/file-uploaded-bytes/", r("uploaded-bytes", self._uploaded_bytes),
                  methods=["GET"]),
            Route("/api/v2.1/share-links/", r("share-links", self._share_links), methods=["GET", "POST"]),
            Route("/api/v2.1/share-links/{token}/", r("share-link", self._share_link), methods=["DELETE"]),
            Route("/seafhttp/upload-api/{link}", r("upload", self._upload, auth=False), methods=["POST"]),
        ])

    def _route(self, name: str, handler, auth: bool = True):
        async def endpoint(request: Request) -> Response:
            if auth:
                refused = self._authorize(request.headers.get("authorization"))
                if refused is not None:
                    return refused
            self.calls.append((name, request.method, dict(request.query_params)))
            fault = self._take_fault(name)
            if fault and fault.kind == "rate_limit":
                return JSONResponse({"detail": f"Request was throttled. Expected available in {fault.retry_after}"
                                               " seconds."}, status_code=429,
                                    headers={"Retry-After": str(fault.retry_after)})
            if fault and not fault.after_effect:
                return JSONResponse({"error_msg": "Internal Server Error"}, status_code=fault.status)
            if "repo_id" in request.path_params and request.path_params["repo_id"] != self.repo_id:
                return JSONResponse({"error_msg": "Library not found."}, status_code=404)
            response = await handler(request)
            if fault:
                return JSONResponse({"error_msg": "Internal Server Error"}, status_code=fault.status)
            return response
        return endpoint

    def _authorize(self, header: str | None) -> Response | None:
        scheme, _, token = (header or "").partition(" ")
        if scheme not in ("Token", "Bearer") or not token:
            return JSONResponse({"detail": "Authentication credentials were not provided."}, status_code=401)
        if scheme == "Bearer" and int(self.version.split(".")[0]) < 11:
            return JSONResponse({"detail": "Authentication credentials were not provided."}, status_code=401)
        if token != self.token:
            return JSONResponse({"detail": "Invalid token"}, status_code=401)
        return None

    def _take_fault(self, route: str) -> Fault | None:
        return take_fault(self.faults, self._lock, route)

    @staticmethod
    def _bad(message: str, status: int = 400) -> Response:
        return JSONResponse({"error_msg": message}, status_code=status)

    @staticmethod
    async def _form(request: Request) -> dict:
        if request.headers.get("content-type", "").startswith("application/json"):
            return json.loads(await request.body() or b"{}")
        return {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}

    def _repo_json(self) -> dict:
        return {"id": self.repo_id, "name": "Simulations", "permission": "rw", "type": "repo", "owner": self.username,
                "encrypted": False, "size": self._usage(), "mtime": int(time.time()), "virtual": False}

    def _usage(self) -> int:
        return sum(len(f["data"]) for f in self.files.values())

    # --- Seahub routes ------------------------------------------------------------------------
    async def _server_info(self, request: Request) -> Response:
        return JSONResponse({"version": self.version, "features": ["seafile-basic", "file-search"]})

    async def _auth_token(self, request: Request) -> Response:
        form = await self._form(request)
        if form.get("username") != self.username or form.get("password") != self.password:
            return JSONResponse({"non_field_errors": ["Unable to login with provided credentials."]}, status_code=400)
        return JSONResponse({"token": self.token})

    async def _ping(self, request: Request) -> Response:
        return JSONResponse("pong")

    async def _account_info(self, request: Request) -> Response:
        return JSONResponse({"email": self.username, "name": "Lab", "usage": self._usage(), "total": self.total,
                             "space_usage": "0%"})

    async def _repos(self, request: Request) -> Response:
        other = {"id": "c474a093-19dc-4ddf-b0b0-72b33214ba33", "name": "Shared with me", "permission": "r",
                 "type": "srepo", "owner": "boss@example.org", "encrypted": False, "size": 0, "mtime": 0,
                 "virtual": False}
        return JSONResponse([self._repo_json(), other])

    async def _repo(self, request: Request) -> Response:
        return JSONResponse(self._repo_json())

    async def _upload_link(self, request: Request) -> Response:
        folder = request.query_params.get("p", "/")
        if folder.rstrip("/") not in self.dirs and folder not in self.dirs:
            return self._bad(f"Folder {folder} not found.", 404)
        link = secrets.token_hex(16)
        self.upload_links[link] = folder
        return JSONResponse(f"{self.base_url}/seafhttp/upload-api/{link}")

    async def _dir(self, request: Request) -> Response:
        path = request.query_params.get("p", "/")
        if path != "/":
            path = path.rstrip("/")
        if request.method == "POST":
            form = await self._form(request)
            if form.get("operation") != "mkdir":
                return self._bad("operation invalid.")
            if path == "/" or not path.startswith("/"):
                return self._bad("Path is missing or invalid.")
            parent, name = path.rsplit("/", 1)
            if (parent or "/") not in self.dirs:
                return self._bad("Failed to make directory.", 520)
            while path in self.dirs:  # Seafile renames a duplicate instead of failing
                name += " (1)"
                path = f"{parent}/{name}"
            self.dirs.add(path)
            return JSONResponse("success", status_code=201)
        if path not in self.dirs:
            return self._bad(f"Folder {path} not found.", 404)
        only = request.query_params.get("t")
        entries = []
        if only != "f":
            entries += [{"id": "0" * 40, "type": "dir", "name": d.rsplit("/", 1)[1], "mtime": int(time.time()),
                         "permission": "rw"} for d in sorted(self.dirs) if d != "/" and d.rsplit("/", 1)[0] ==
                        ("" if path == "/" else path)]
        if only != "d":
            entries += [{"id": f["id"], "type": "file", "name": p.rsplit("/", 1)[1], "size": len(f["data"]),
                         "mtime": f["mtime"], "permission": "rw"}
                        for p, f in sorted(self.files.items()) if p.rsplit("/", 1)[0] == ("" if path == "/" else path)]
        return JSONResponse(entries)

    async def _file(self, request: Request) -> Response:
        path = request.query_params.get("p")
        if not path:
            return self._bad("Path is missing.")
        if request.method == "GET":  # a one-time download link on the file server, as a JSON string
            if path not in self.files:
                return self._bad("File not found", 404)
            token = secrets.token_hex(16)
            self.download_links[token] = path
            return JSONResponse(f"{self.base_url}/seafhttp/files/{token}/{path.rsplit('/', 1)[1]}")
        self.files.pop(path, None)  # share links live in their own table: they outlive the file
        return JSONResponse("success")

    async def _file_detail(self, request: Request) -> Response:
        path = request.query_params.get("p")
        if not path:
            return self._bad("Path is missing.")
        stored = self.files.get(path)
        if stored is None:
            return self._bad("File not found", 404)
        return JSONResponse({"id": stored["id"], "mtime": stored["mtime"], "type": "file",
                             "name": path.rsplit("/", 1)[1], "size": len(stored["data"])})

    async def _download(self, request: Request) -> Response:
        path = self.download_links.pop(request.path_params["token"], None)  # used once, as Seafile's are
        if path is None or path not in self.files:
            return Response("Bad access token", status_code=400 if path is None else 404)
        return Response(self.files[path]["data"], media_type="application/octet-stream")

    def replace_data(self, path: str, data: bytes) -> None:
        """Someone changed a stored file in place (a sync client, the web editor): new content, new id."""
        with self._lock:
            self.files[path].update(data=data, id=hashlib.sha1(data).hexdigest(), mtime=int(time.time()))

    async def _uploaded_bytes(self, request: Request) -> Response:
        parent, name = request.query_params.get("parent_dir"), request.query_params.get("file_name")
        if not parent or not name:
            return self._bad("parent_dir invalid." if not parent else "file_name invalid.")
        if parent.rstrip("/") not in self.dirs and parent not in self.dirs:
            return self._bad(f"Folder {parent} not found.", 404)
        done = len(self.partial.get((self._norm(parent), name), b""))
        return JSONResponse({"uploadedBytes": done}, headers={"Accept-Ranges": "bytes"})

    async def _share_link(self, request: Request) -> Response:
        token = request.path_params["token"]
        path = next((p for p, link in self.share_links.items() if link["token"] == token), None)
        if path is None:
            return self._bad(f"Share link {token} not found.", 404)
        del self.share_links[path]
        return JSONResponse({"success": True})

    async def _share_links(self, request: Request) -> Response:
        if request.method == "GET":
            repo_id, path = request.query_params.get("repo_id"), request.query_params.get("path")
            links = [link for p, link in self.share_links.items()
                     if (not repo_id or link["repo_id"] == repo_id) and (not path or p == path)]
            return JSONResponse(links)
        if not request.headers.get("content-type", "").startswith("application/json"):
            body = await self._form(request)
        else:
            body = json.loads(await request.body())
        repo_id, path = body.get("repo_id"), body.get("path")
        if not repo_id or not path:
            return self._bad("path invalid." if not path else "repo_id invalid.")
        if repo_id != self.repo_id:
            return self._bad("Library not found.", 404)
        if path not in self.files:
            return self._bad(f"file/folder {path} not found.", 404)
        if path in self.share_links:
            return self._bad(f"Share link {self.share_links[path]['token']} already exists.")
        expire_days = body.get("expire_days")
        if expire_days not in (None, ""):
            try:
                expire_days = int(expire_days)
            except (TypeError, ValueError):
                return self._bad("expire_days invalid.")
            if expire_days <= 0:
                return self._bad("expire_days invalid.")
        token = secrets.token_hex(10)
        expire_date = ""
        if expire_days:
            expire_date = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 86400 * expire_days))
        link = {"username": self.username, "repo_id": repo_id, "ctime": time.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                "expire_date": expire_date, "token": token, "view_cnt": 0, "link": f"{self.base_url}/f/{token}/",
                "obj_name": path.rsplit("/", 1)[1], "path": path, "is_dir": False,
                "permissions": body.get("permissions") or {"can_edit": False, "can_download": True},
                "is_expired": False, "repo_name": "Simulations"}
        self.share_links[path] = link
        return JSONResponse(link)

    # --- file server ----------------------------------------------------------------------------
    @staticmethod
    def _norm(parent: str) -> str:
        return "/" + parent.strip("/") if parent.strip("/") else "/"

    async def _upload(self, request: Request) -> Response:
        link_dir = self.upload_links.get(request.path_params["link"])
        if link_dir is None:
            return Response("Access denied", status_code=403)
        form = await request.form()
        parent = form.get("parent_dir")
        upload = form.get("file")
        if not parent or not isinstance(upload, UploadFile):
            return Response("Invalid URL or missing file/parent_dir", status_code=400)
        parent = self._norm(parent)
        if parent != self._norm(link_dir):
            return Response("Access denied: parent_dir differs from the upload link's folder", status_code=403)
        data = await upload.read()
        content_range = request.headers.get("content-range")
        if content_range:
            disposition = request.headers.get("content-disposition", "")
            match = re.fullmatch(r'attachment;\s*filename="([^"]+)"', disposition)
            if not match:
                return Response("Invalid Content-Disposition for resumable upload", status_code=400)
            name = match.group(1)
            rng = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", content_range)
            if not rng:
                return Response("Invalid Content-Range", status_code=400)
            start, end, total = map(int, rng.groups())
            received = self.partial.setdefault((parent, name), bytearray())
            if start != len(received) or end - start + 1 != len(data) or end >= total:
                return Response("Invalid Content-Range", status_code=400)
            received += data
            if end + 1 < total:
                return JSONResponse({"success": True})
            data = bytes(self.partial.pop((parent, name)))
        else:
            name = upload.filename
        if not name or "/" in name:
            return Response("Invalid filename", status_code=440)
        if self._usage() + len(data) > self.total:
            return Response("Out of quota", status_code=443)
        path = f"{parent.rstrip('/')}/{name}"
        if path in self.files and form.get("replace") != "1":
            stem, dot, ext = name.rpartition(".")
            name = f"{stem} (1).{ext}" if dot else f"{name} (1)"
            path = f"{parent.rstrip('/')}/{name}"
        file_id = hashlib.sha1(data).hexdigest()
        self.files[path] = {"data": data, "mtime": int(time.time()), "id": file_id}
        if request.query_params.get("ret-json") == "1":
            return JSONResponse([{"name": name, "id": file_id, "size": len(data)}])
        return Response(file_id, media_type="text/plain")
