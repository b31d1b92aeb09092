"""Storage backends for simpost: the `storage_backend` Airflow connection type and one module per service.

Imports stay light (no SDKs, no Airflow) so DAG parsing and provider discovery stay fast; a
service module is imported only when a backend of that service is opened.
"""
from __future__ import annotations

import contextlib
import os

from storage_backends.base import Backend, BackendError, RemoteFile, RemoteStat, Upload
from storage_backends.naming import remote_name
from storage_backends.retry import DEFAULT_RETRY, RetryPolicy
from storage_backends.settings import BackendSettings, SettingsError, from_connection

__all__ = [
    "Backend", "BackendError", "BackendSettings", "RemoteFile", "RemoteStat", "RetryPolicy", "SettingsError",
    "Upload", "from_connection", "get_provider_info", "open_backend", "remote_name",
]


def get_provider_info() -> dict:
    from storage_backends.provider import provider_info

    return provider_info()


class GuardedBackend:
    """What every service gets around it: one retry budget per upload, and the active switch
    (an inactive backend lists, deletes and checks as usual but refuses new uploads)."""

    def __init__(self, settings: BackendSettings, backend: Backend, retry: RetryPolicy):
        self.settings, self.service, self._retry = settings, backend, retry
        self.LISTING_VERIFIES = backend.LISTING_VERIFIES

    def upload(self, path: str, remote_name: str, keep_days: int, storage_class: str | None = None) -> Upload:
        """`storage_class`: only for services that have classes (s3), e.g. the archive tier's cold one."""
        if not self.settings.active:
            raise BackendError(
                f"{self.settings.describe()} is inactive (Backend active is off): uploads are refused;"
                " choose another storage_backend or reactivate this one"
            )
        with self._retry.operation():
            if storage_class:
                return self.service.upload(path, remote_name, keep_days, storage_class=storage_class)
            return self.service.upload(path, remote_name, keep_days)

    def list_uploads(self) -> list[RemoteFile]:
        return self.service.list_uploads()

    def delete(self, remote_id: str) -> None:
        self.service.delete(remote_id)

    def stat(self, remote_id: str) -> RemoteStat:
        return self.service.stat(remote_id)

    def download(self, remote_id: str, path: str) -> None:
        """Into `path`; a download cut short leaves no partial file behind to be taken for the archive."""
        try:
            self.service.download(remote_id, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            raise

    def check(self) -> tuple[bool, str]:
        ok, message = self.service.check()
        return ok, message if self.settings.active else f"{message} (inactive: uploads refused)"


def open_backend(settings: BackendSettings, retry: RetryPolicy = DEFAULT_RETRY) -> Backend:
    """The service backend for validated settings, guarded (see GuardedBackend)."""
    if settings.service == "dropbox":
        from storage_backends.dropbox_backend import DropboxBackend as cls
    elif settings.service == "seafile":
        from storage_backends.seafile_backend import SeafileBackend as cls
    elif settings.service == "s3":
        from storage_backends.s3_backend import S3Backend as cls
    else:
        from storage_backends.local_backend import LocalBackend as cls
    return GuardedBackend(settings, cls(settings, retry=retry), retry)
