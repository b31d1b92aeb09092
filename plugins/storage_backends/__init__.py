"""Storage backends for simpost: the `storage_backend` Airflow connection type and one module per service.

Imports stay light (no SDKs, no Airflow) so DAG parsing and provider discovery stay fast; a
service module is imported only when a backend of that service is opened.
"""
from __future__ import annotations

from storage_backends.base import Backend, BackendError, RemoteFile, Upload
from storage_backends.naming import remote_name
from storage_backends.retry import DEFAULT_RETRY, RetryPolicy
from storage_backends.settings import BackendSettings, SettingsError, from_connection

__all__ = [
    "Backend", "BackendError", "BackendSettings", "RemoteFile", "RetryPolicy", "SettingsError",
    "Upload", "from_connection", "get_provider_info", "open_backend", "remote_name",
]


def get_provider_info() -> dict:
    from storage_backends.provider import provider_info

    return provider_info()


class InactiveBackend:
    """An inactive backend: lists, deletes and checks as usual, refuses new uploads."""

    def __init__(self, settings: BackendSettings, backend: Backend):
        self.settings, self._backend = settings, backend

    def upload(self, path: str, remote_name: str, keep_days: int) -> Upload:
        raise BackendError(
            f"{self.settings.describe()} is inactive (Backend active is off): uploads are refused;"
            " choose another storage_backend or reactivate this one"
        )

    def list_uploads(self) -> list[RemoteFile]:
        return self._backend.list_uploads()

    def delete(self, remote_id: str) -> None:
        self._backend.delete(remote_id)

    def check(self) -> tuple[bool, str]:
        ok, message = self._backend.check()
        return ok, f"{message} (inactive: uploads refused)"


def open_backend(settings: BackendSettings, retry: RetryPolicy = DEFAULT_RETRY) -> Backend:
    """The service backend for validated settings; an inactive one refuses uploads."""
    if settings.service == "dropbox":
        from storage_backends.dropbox_backend import DropboxBackend as cls
    elif settings.service == "seafile":
        from storage_backends.seafile_backend import SeafileBackend as cls
    else:
        from storage_backends.local_backend import LocalBackend as cls
    backend = cls(settings, retry=retry)
    return backend if settings.active else InactiveBackend(settings, backend)
