"""Dropbox through the official SDK: uploads under one folder, share links, listing, deletion.

The SDK's own retry loops are switched off (max_retries_* = 0) so rate limits, 5xx answers and
network errors all go through `retry.RetryPolicy`, the package's one backoff.

The SDK is imported when a client is first needed: it reads DROPBOX_API_HOST /
DROPBOX_API_CONTENT_HOST at import time, and DAG parsing should not pay for it.
"""
from __future__ import annotations

import logging
import os
import posixpath
from datetime import datetime, timezone
from functools import cached_property

import requests

from storage_backends.base import BackendError, RemoteFile, RemoteStat, Upload, file_sha256, keep_until, scrub
from storage_backends.naming import is_remote_name
from storage_backends.retry import DEFAULT_RETRY, Retry, RetryPolicy, network_error
from storage_backends.settings import BackendSettings, DropboxConfig

log = logging.getLogger(__name__)
LIST_PAGE = 2000  # entries per files/list_folder page, the most Dropbox gives


def _utc(dt: datetime) -> datetime:
    """The SDK gives naive UTC datetimes."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def classify(exc: BaseException) -> Retry | None:
    """Transient Dropbox failures: 429 (with the backoff Dropbox asked for), 5xx, network."""
    from dropbox import exceptions

    if isinstance(exc, exceptions.RateLimitError):
        return Retry(after=exc.backoff)
    if isinstance(exc, exceptions.InternalServerError):
        return Retry()
    return network_error(exc)


class DropboxBackend:
    """One Dropbox account, one folder; all remote ids are paths inside that folder."""

    LISTING_VERIFIES = True  # list_folder entries carry size and content_hash

    def __init__(self, settings: BackendSettings, retry: RetryPolicy = DEFAULT_RETRY):
        if not isinstance(settings.config, DropboxConfig):
            raise TypeError("DropboxBackend needs dropbox settings")
        self.settings, self.cfg, self.retry = settings, settings.config, retry

    # --- plumbing -------------------------------------------------------------------------
    @cached_property
    def client(self):
        import dropbox

        common = dict(max_retries_on_error=0, max_retries_on_rate_limit=0, timeout=300,
                      user_agent="simpost-storage-backends/0.1")
        if self.cfg.refresh_token:
            return dropbox.Dropbox(oauth2_refresh_token=self.cfg.refresh_token, app_key=self.cfg.app_key,
                                   app_secret=self.cfg.app_secret, **common)
        return dropbox.Dropbox(oauth2_access_token=self.cfg.access_token, **common)

    def _call(self, what: str, fn, *args, **kwargs):
        """One SDK call with retries; failures become BackendError without secrets."""
        try:
            return self.retry.run(lambda: fn(*args, **kwargs), what=f"dropbox {what}", classify=classify)
        except Exception as exc:
            raise self._error(what, exc) from None

    def _error(self, what: str, exc: BaseException) -> BaseException:
        from dropbox import exceptions

        if isinstance(exc, exceptions.ApiError):
            return exc  # route errors are decided on by the caller
        if isinstance(exc, exceptions.AuthError):
            detail = f"Dropbox refused the credentials ({self._tag(exc.error)})"
        elif isinstance(exc, exceptions.RateLimitError):
            detail = "Dropbox kept rate-limiting the calls"
        elif isinstance(exc, exceptions.HttpError):
            detail = f"Dropbox answered HTTP {exc.status_code}: {str(exc.body)[:200]}"
        elif isinstance(exc, requests.RequestException):
            detail = f"cannot reach Dropbox ({type(exc).__name__})"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        message = f"{self.settings.describe()}: {what} failed: {detail}"
        return BackendError(scrub(message, self.settings.secrets))

    @staticmethod
    def _tag(union) -> str:
        return getattr(union, "_tag", None) or type(union).__name__

    def _fail(self, what: str, api_error) -> BackendError:
        summary = getattr(api_error, "user_message_text", None) or str(api_error.error)
        return BackendError(scrub(f"{self.settings.describe()}: {what} refused by Dropbox: {summary}",
                                  self.settings.secrets))

    def _path(self, remote_name: str) -> str:
        if "/" in remote_name or remote_name in ("", ".", ".."):
            raise BackendError(f"{self.settings.describe()}: remote name must be a plain file name")
        return f"{self.cfg.folder}/{remote_name}"

    def _inside_folder(self, remote_id: str) -> str:
        path = posixpath.normpath(remote_id)
        if posixpath.dirname(path).lower() != self.cfg.folder.lower() or not is_remote_name(posixpath.basename(path)):
            raise BackendError(
                f"{self.settings.describe()}: refusing to delete {remote_id!r}: not an upload inside {self.cfg.folder}")
        return path

    # --- interface --------------------------------------------------------------------------
    def upload(self, path: str, remote_name: str, keep_days: int) -> Upload:
        from dropbox import files

        size = os.path.getsize(path)
        sha256 = file_sha256(path)
        self._ensure_space(size)
        target = self._path(remote_name)
        # Overwrite: the name carries the content hash, so a retried upload replaces itself.
        mode = files.WriteMode.overwrite
        if size <= self.cfg.chunk_size:
            with open(path, "rb") as f:
                data = f.read()
            metadata = self._call("upload", self.client.files_upload, data, target, mode=mode, mute=True)
        else:
            metadata = self._upload_session(path, size, files.CommitInfo(path=target, mode=mode, mute=True))
        uploaded_at = _utc(metadata.server_modified)
        expires_at = keep_until(uploaded_at, keep_days)
        link = self._share(metadata.path_lower, expires_at)
        log.info("uploaded %s (%d bytes) to Dropbox as %s", os.path.basename(path), size, metadata.path_display)
        return Upload(remote_id=metadata.path_display, link=link, size=size, sha256=sha256,
                      uploaded_at=uploaded_at, expires_at=expires_at)

    def _ensure_space(self, size: int) -> None:
        usage = self._call("space check", self.client.users_get_space_usage)
        allocation = usage.allocation
        if allocation.is_individual():
            allocated = allocation.get_individual().allocated
        elif allocation.is_team():
            allocated = allocation.get_team().allocated
        else:
            return  # unknown allocation kind: let the upload itself tell
        free = allocated - usage.used
        if size > free:
            raise BackendError(
                f"{self.settings.describe()}: not enough space on Dropbox: the archive needs {size} bytes,"
                f" {max(free, 0)} are free")

    def _upload_session(self, path: str, size: int, commit):
        """Chunks read from disk one at a time; after a failed chunk, go on from Dropbox's offset."""
        from dropbox import exceptions, files

        chunk_size = self.cfg.chunk_size
        with open(path, "rb") as f:
            chunk = f.read(chunk_size)
            session_id = self._call("upload session start", self.client.files_upload_session_start, chunk).session_id
            offset = len(chunk)
            while True:
                f.seek(offset)
                chunk = f.read(chunk_size)
                cursor = files.UploadSessionCursor(session_id=session_id, offset=offset)
                last = offset + len(chunk) >= size
                try:
                    if last:
                        return self._call("upload session finish", self.client.files_upload_session_finish,
                                          chunk, cursor, commit)
                    self._call("upload session append", self.client.files_upload_session_append_v2, chunk, cursor)
                    offset += len(chunk)
                except exceptions.ApiError as exc:
                    correct = self._correct_offset(exc.error)
                    if correct is None or correct == offset:
                        raise self._fail("upload session", exc) from None
                    log.info("Dropbox has %d bytes of the session, resuming there (we were at %d)", correct, offset)
                    offset = correct

    @staticmethod
    def _correct_offset(error) -> int | None:
        """The offset Dropbox reports after a chunk we sent was (partly) stored already."""
        lookup = error
        if hasattr(error, "is_lookup_failed") and error.is_lookup_failed():
            lookup = error.get_lookup_failed()
        if hasattr(lookup, "is_incorrect_offset") and lookup.is_incorrect_offset():
            return lookup.get_incorrect_offset().correct_offset
        return None

    def _share(self, path_lower: str, expires_at: datetime | None) -> str:
        """A public link; reuses Dropbox's existing one; expiry only where the account allows it."""
        from dropbox import exceptions, sharing

        def create(expires: datetime | None):
            settings = sharing.SharedLinkSettings(
                audience=sharing.LinkAudience.public, access=sharing.RequestedLinkAccessLevel.viewer,
                expires=expires.replace(tzinfo=None, microsecond=0) if expires else None)
            return self._call("share link", self.client.sharing_create_shared_link_with_settings, path_lower, settings)

        try:
            try:
                return create(expires_at).url
            except exceptions.ApiError as exc:
                error = exc.error
                if (expires_at and error.is_settings_error()
                        and error.get_settings_error().is_not_authorized()):
                    log.info("this Dropbox account cannot set link expiry; sharing without it")
                    return create(None).url
                raise
        except exceptions.ApiError as exc:
            error = exc.error
            if not error.is_shared_link_already_exists():
                raise self._fail("share link", exc) from None
            existing = error.get_shared_link_already_exists()
            if existing is not None and existing.is_metadata():
                return existing.get_metadata().url
            links = self._call("list shared links", self.client.sharing_list_shared_links,
                               path=path_lower, direct_only=True).links
            if not links:
                raise self._fail("share link", exc) from None
            return links[0].url

    def list_uploads(self) -> list[RemoteFile]:
        from dropbox import exceptions, files

        try:
            page = self._call("list", self.client.files_list_folder, self.cfg.folder, limit=LIST_PAGE)
        except exceptions.ApiError as exc:
            if exc.error.is_path() and exc.error.get_path().is_not_found():
                return []
            raise self._fail("list", exc) from None
        entries = list(page.entries)
        while page.has_more:
            page = self._call("list", self.client.files_list_folder_continue, page.cursor)
            entries.extend(page.entries)
        return [
            RemoteFile(remote_id=e.path_display, name=e.name, size=e.size, modified_at=_utc(e.server_modified),
                       checksum=e.content_hash, checksum_kind="dropbox_content_hash")
            for e in entries
            if isinstance(e, files.FileMetadata) and is_remote_name(e.name)
        ]

    def stat(self, remote_id: str) -> RemoteStat:
        """files/get_metadata: size and Dropbox's content_hash (SHA-256 over the SHA-256 of each 4 MiB
        block); a path that is gone, or is a folder now, does not hold the copy."""
        from dropbox import exceptions, files

        try:
            metadata = self._call("metadata", self.client.files_get_metadata, remote_id)
        except exceptions.ApiError as exc:
            if exc.error.is_path() and exc.error.get_path().is_not_found():
                return RemoteStat(exists=False)
            raise self._fail("metadata", exc) from None
        if not isinstance(metadata, files.FileMetadata):
            return RemoteStat(exists=False)
        return RemoteStat(exists=True, size=metadata.size, checksum=metadata.content_hash,
                          checksum_kind="dropbox_content_hash")

    def download(self, remote_id: str, path: str) -> None:
        from dropbox import exceptions

        try:
            self._call("download", self.client.files_download_to_file, path, remote_id)
        except exceptions.ApiError as exc:
            raise self._fail("download", exc) from None

    def delete(self, remote_id: str) -> None:
        """Idempotent: a file that is already gone counts as deleted."""
        from dropbox import exceptions

        path = self._inside_folder(remote_id)
        try:
            self._call("delete", self.client.files_delete_v2, path)
        except exceptions.ApiError as exc:
            error = exc.error
            if error.is_path_lookup() and error.get_path_lookup().is_not_found():
                log.info("%s was already gone from Dropbox", path)
                return
            raise self._fail("delete", exc) from None

    def check(self) -> tuple[bool, str]:
        try:
            account = self._call("account check", self.client.users_get_current_account)
            usage = self._call("space check", self.client.users_get_space_usage)
            uploads = self.list_uploads()
        except BackendError as exc:
            return False, str(exc)
        allocation = usage.allocation
        allocated = (allocation.get_individual().allocated if allocation.is_individual()
                     else allocation.get_team().allocated if allocation.is_team() else None)
        free = f", {allocated - usage.used} bytes free" if allocated is not None else ""
        return True, (f"Dropbox account {account.email} reachable{free}; {len(uploads)} upload(s) in"
                      f" {self.cfg.folder}")
