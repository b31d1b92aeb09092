"""Seafile through its web API: upload link + multipart upload (resumable chunks for big files),
share links with expire_days = keep days, listing with mtime, deletion; all inside one folder."""
from __future__ import annotations

import logging
import os
import posixpath
from datetime import datetime, timezone
from functools import cached_property

from storage_backends.base import BackendError, RemoteFile, RemoteStat, Upload, file_sha256, keep_until
from storage_backends.naming import is_remote_name
from storage_backends.retry import DEFAULT_RETRY, RetryPolicy
from storage_backends.seafile_client import SeafileClient, SeafileError
from storage_backends.settings import BackendSettings, SeafileConfig

log = logging.getLogger(__name__)


class SeafileBackend:
    """One library (repoid), one folder in it; remote ids are paths inside that folder."""

    LISTING_VERIFIES = True  # a folder listing carries each file's size and file id, in one call

    def __init__(self, settings: BackendSettings, retry: RetryPolicy = DEFAULT_RETRY):
        if not isinstance(settings.config, SeafileConfig):
            raise TypeError("SeafileBackend needs seafile settings")
        self.settings, self.cfg = settings, settings.config
        self.api = SeafileClient(self.cfg.server, self.cfg.token, retry=retry, secrets=settings.secrets)

    @cached_property
    def _repo(self) -> str:
        return f"/api2/repos/{self.cfg.repoid}"

    def _named(self, exc: SeafileError) -> BackendError:
        return SeafileError(f"{self.settings.describe()}: {exc}", exc.status)

    # --- upload -----------------------------------------------------------------------------
    def upload(self, path: str, remote_name: str, keep_days: int) -> Upload:
        if "/" in remote_name or remote_name in ("", ".", ".."):
            raise BackendError(f"{self.settings.describe()}: remote name must be a plain file name")
        size = os.path.getsize(path)
        sha256 = file_sha256(path)
        try:
            self._ensure_space(size)
            self._ensure_folder()
            link = self.api.request("GET", f"{self._repo}/upload-link/", what="upload link",
                                    params={"p": self.cfg.folder}).json()
            if size <= self.cfg.chunk_size:
                with open(path, "rb") as f:
                    self._post(link, remote_name, f.read(), what="upload")
            else:
                self._upload_chunks(link, path, remote_name, size)
            uploaded_at = datetime.now(timezone.utc)
            expires_at = keep_until(uploaded_at, keep_days)
            remote_id = f"{self.cfg.folder}/{remote_name}"
            share = self._share(remote_id, keep_days)
        except SeafileError as exc:
            raise self._named(exc) from None
        log.info("uploaded %s (%d bytes) to Seafile as %s", os.path.basename(path), size, remote_id)
        return Upload(remote_id=remote_id, link=share, size=size, sha256=sha256, uploaded_at=uploaded_at,
                      expires_at=expires_at)

    def _post(self, link: str, name: str, data: bytes, *, what: str, headers: dict | None = None):
        # replace=1: the name carries the content hash, so a retried upload replaces itself.
        return self.api.request(
            "POST", link, what=what, auth=False, params={"ret-json": "1"}, headers=headers,
            files={"file": (name, data, "application/octet-stream")},
            data={"parent_dir": self.cfg.folder, "replace": "1"},
        ).json()

    def _upload_chunks(self, link: str, path: str, name: str, size: int) -> None:
        """Resumable upload: start where Seafile says it is, and ask again after a failed chunk."""
        offset = self._uploaded_bytes(name)
        if offset:
            log.info("Seafile already holds %d of %d bytes of %s; resuming", offset, size, name)
        with open(path, "rb") as f:
            while offset < size:
                f.seek(offset)
                chunk = f.read(self.cfg.chunk_size)
                end = offset + len(chunk) - 1
                headers = {"Content-Range": f"bytes {offset}-{end}/{size}",
                           "Content-Disposition": f'attachment; filename="{name}"'}
                try:
                    self._post(link, name, chunk, what=f"upload of bytes {offset}-{end}", headers=headers)
                except SeafileError as exc:
                    held = self._uploaded_bytes(name)
                    if held == offset:
                        raise  # nothing moved: the chunk itself is refused
                    log.info("chunk at %d failed (%s); Seafile holds %d bytes, resuming there", offset,
                             exc.status, held)
                    if held == 0 and self._stored_size(name) == size:
                        return  # the last chunk landed, only its answer was lost
                    offset = held
                    continue
                offset = end + 1

    def _uploaded_bytes(self, name: str) -> int:
        response = self.api.request("GET", f"/api/v2.1/repos/{self.cfg.repoid}/file-uploaded-bytes/",
                                    what="uploaded bytes", params={"parent_dir": self.cfg.folder, "file_name": name})
        return int(response.json().get("uploadedBytes", 0))

    def _stored_size(self, name: str) -> int | None:
        for entry in self._entries():
            if entry.get("name") == name:
                return int(entry.get("size", -1))
        return None

    def _ensure_space(self, size: int) -> None:
        info = self.api.request("GET", "/api2/account/info/", what="account info").json()
        total, usage = int(info.get("total", -2)), int(info.get("usage", 0))
        if total >= 0 and usage + size > total:
            raise BackendError(f"{self.settings.describe()}: not enough space on Seafile: the archive needs"
                               f" {size} bytes, {max(total - usage, 0)} are free")

    def _ensure_folder(self) -> None:
        """Create the folder level by level; Seafile renames a duplicate mkdir, so look first."""
        current = ""
        for part in self.cfg.folder.strip("/").split("/"):
            current += "/" + part
            found = self.api.request("GET", f"{self._repo}/dir/", what="folder lookup", ok=(404,),
                                     params={"p": current, "t": "d"})
            if found.status_code == 404:
                self.api.request("POST", f"{self._repo}/dir/", what="create folder", params={"p": current},
                                 data={"operation": "mkdir"})

    def _share(self, remote_id: str, keep_days: int) -> str:
        body: dict = {"repo_id": self.cfg.repoid, "path": remote_id,
                      "permissions": {"can_edit": False, "can_download": True}}
        if keep_days > 0:
            body["expire_days"] = keep_days
        created = self.api.request("POST", "/api/v2.1/share-links/", what="share link", ok=(400,), json=body)
        if created.status_code == 200:
            return created.json()["link"]
        if "already exists" not in created.text:
            raise SeafileError(f"Seafile share link refused: HTTP 400 {created.text[:200]}", 400)
        links = self.api.request("GET", "/api/v2.1/share-links/", what="list share links",
                                 params={"repo_id": self.cfg.repoid, "path": remote_id}).json()
        if not links:
            raise SeafileError("Seafile says a share link exists but lists none", 400)
        return links[0]["link"]

    # --- listing and deletion ---------------------------------------------------------------
    def _entries(self) -> list[dict]:
        response = self.api.request("GET", f"{self._repo}/dir/", what="list", ok=(404,),
                                    params={"p": self.cfg.folder, "t": "f"})
        return [] if response.status_code == 404 else response.json()

    def list_uploads(self) -> list[RemoteFile]:
        try:
            entries = self._entries()
        except SeafileError as exc:
            raise self._named(exc) from None
        return [
            RemoteFile(remote_id=f"{self.cfg.folder}/{e['name']}", name=e["name"], size=int(e.get("size", 0)),
                       modified_at=datetime.fromtimestamp(int(e["mtime"]), timezone.utc),
                       checksum=e.get("id"), checksum_kind="seafile_file_id" if e.get("id") else None)
            for e in entries
            if e.get("type", "file") == "file" and is_remote_name(e.get("name", ""))
        ]

    def stat(self, remote_id: str) -> RemoteStat:
        """Seafile's file detail: size and the file id, which is derived from the content (a change
        of the bytes changes the id)."""
        try:
            found = self.api.request("GET", f"{self._repo}/file/detail/", what="file detail", ok=(404,),
                                     params={"p": remote_id})
        except SeafileError as exc:
            raise self._named(exc) from None
        if found.status_code == 404:
            return RemoteStat(exists=False)
        detail = found.json()
        return RemoteStat(exists=True, size=int(detail["size"]), checksum=detail["id"], checksum_kind="seafile_file_id")

    def download(self, remote_id: str, path: str) -> None:
        """Through a download link on the file server, streamed to disk."""
        try:
            link = self.api.request("GET", f"{self._repo}/file/", what="download link", params={"p": remote_id}).json()
            response = self.api.request("GET", link, what="download", auth=False, stream=True)
            with response, open(path, "wb") as f:
                for block in response.iter_content(1 << 20):
                    f.write(block)
        except SeafileError as exc:
            raise self._named(exc) from None

    def delete(self, remote_id: str) -> None:
        path = posixpath.normpath(remote_id)
        if posixpath.dirname(path) != self.cfg.folder or not is_remote_name(posixpath.basename(path)):
            raise BackendError(
                f"{self.settings.describe()}: refusing to delete {remote_id!r}: not an upload inside {self.cfg.folder}")
        try:
            # Seafile keeps share links in their own table; revoke them so no dangling link survives
            links = self.api.request("GET", "/api/v2.1/share-links/", what="list share links",
                                     params={"repo_id": self.cfg.repoid, "path": path}).json()
            for link in links:
                self.api.request("DELETE", f"/api/v2.1/share-links/{link['token']}/", what="revoke share link",
                                 ok=(404,))
            self.api.request("DELETE", f"{self._repo}/file/", what="delete", params={"p": path})
        except SeafileError as exc:
            raise self._named(exc) from None

    def check(self) -> tuple[bool, str]:
        try:
            repo = self.api.request("GET", f"{self._repo}/", what="library lookup").json()
            info = self.api.request("GET", "/api2/account/info/", what="account info").json()
            uploads = sum(1 for e in self._entries() if is_remote_name(e.get("name", "")))
        except SeafileError as exc:
            return False, str(self._named(exc))
        permission = repo.get("permission", "?")
        if permission != "rw":
            return False, (f"{self.settings.describe()}: library {repo.get('name')!r} is read-only"
                           f" (permission {permission!r}) for this token")
        total, usage = int(info.get("total", -2)), int(info.get("usage", 0))
        free = f"{total - usage} bytes free" if total >= 0 else "no quota"
        return True, (f"Seafile {self.api.version} at {self.cfg.server}: library {repo.get('name')!r} writable,"
                      f" {free}; {uploads} upload(s) in {self.cfg.folder}")
