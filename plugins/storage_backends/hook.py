"""Airflow hook for `storage_backend` connections: settings, backend, and the UI's Test button."""
from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from storage_backends import open_backend
from storage_backends.base import Backend, BackendError
from storage_backends.provider import CONN_TYPE
from storage_backends.retry import DEFAULT_RETRY, RetryPolicy
from storage_backends.settings import BackendSettings, from_connection


def _maskers() -> list:
    """Every secrets masker of this process.

    The Task SDK's masker covers supervised task runs (and tells the supervisor); when airflow-core
    runs the task in-process (`airflow dags test`, `dag.test()`), logs go through core's own masker
    instance, which the SDK does not feed, so secrets are registered there too.
    """
    from airflow.sdk.log import mask_secret

    maskers = [mask_secret]
    try:
        from airflow._shared.secrets_masker import mask_secret as core_mask_secret
    except ImportError:  # a worker with the Task SDK only
        pass
    else:
        maskers.append(core_mask_secret)
    return maskers


def _mask(settings: BackendSettings, raw_config: Any) -> None:
    """Register every secret with Airflow's masker before anything can log it.

    Airflow masks the password by itself and extra values by key name, but the config is a JSON
    string under a neutral key, so its secrets would otherwise reach logs verbatim.
    """
    values = list(settings.secrets)
    if isinstance(raw_config, str) and raw_config.strip():
        values.append(raw_config)
    for mask in _maskers():
        for value in values:
            mask(value)


class StorageBackendHook(BaseHook):
    """Opens the storage backend a `storage_backend` connection describes."""

    conn_name_attr = "storage_backend_conn_id"
    default_conn_name = "storage_backend_default"
    conn_type = CONN_TYPE
    hook_name = "Storage backend (simpost)"

    def __init__(self, storage_backend_conn_id: str = default_conn_name, retry: RetryPolicy = DEFAULT_RETRY,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.storage_backend_conn_id = storage_backend_conn_id
        self.retry = retry

    @cached_property
    def settings(self) -> BackendSettings:
        conn = self.get_connection(self.storage_backend_conn_id)
        settings = from_connection(conn)
        extra = conn.extra_dejson or {}
        _mask(settings, extra.get("storage_backend_config"))
        return settings

    def get_backend(self) -> Backend:
        return open_backend(self.settings, retry=self.retry)

    def test_connection(self) -> tuple[bool, str]:
        """What the UI's Test button shows: the definition is valid and the service accepts it."""
        try:
            return self.get_backend().check()
        except BackendError as exc:
            return False, str(exc)
