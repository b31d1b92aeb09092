"""Airflow hook for `storage_backend` connections: settings, backend, and the UI's Test button."""
from __future__ import annotations

import copy
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from storage_backends import open_backend
from storage_backends.base import Backend, BackendError
from storage_backends.provider import CONFIG_FIELD, CONN_TYPE, HOOK_NAME
from storage_backends.retry import DEFAULT_RETRY, RetryPolicy
from storage_backends.settings import BackendSettings, SettingsError, from_connection


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


TEST_RETRY = RetryPolicy(attempts=1)


def _tested_connection_id() -> str | None:
    """The real id of the connection the UI's Test button is testing, if this is that request."""
    try:
        from storage_backends.airflow_plugin import tested_connection_id
    except ImportError:  # a worker with the Task SDK only: never the Test button
        return None
    return tested_connection_id.get()


def _redaction_warning() -> str:
    """Said by the Test button where Airflow would show Backend config in clear (see README)."""
    try:
        from airflow._shared.secrets_masker import should_hide_value_for_key
    except ImportError:
        return ""
    if should_hide_value_for_key(CONFIG_FIELD):
        return ""
    return (f" Warning: this Airflow shows Backend config in clear in the UI and REST API; set"
            f" [core] sensitive_var_conn_names = {CONFIG_FIELD} on the api-server.")


class StorageBackendHook(BaseHook):
    """Opens the storage backend a `storage_backend` connection describes."""

    conn_name_attr = "storage_backend_conn_id"
    default_conn_name = "storage_backend_default"
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME

    def __init__(self, storage_backend_conn_id: str = default_conn_name, retry: RetryPolicy = DEFAULT_RETRY,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.storage_backend_conn_id = storage_backend_conn_id
        self.retry = retry

    @cached_property
    def settings(self) -> BackendSettings:
        conn = self.get_connection(self.storage_backend_conn_id)
        tested_id = _tested_connection_id()
        if tested_id:  # the UI's Test: Airflow loaded the connection under a temporary id
            conn = copy.copy(conn)
            conn.conn_id = tested_id
        settings = from_connection(conn)
        extra = conn.extra_dejson or {}
        _mask(settings, extra.get(CONFIG_FIELD))
        return settings

    def get_backend(self) -> Backend:
        return open_backend(self.settings, retry=self.retry)

    def upload_settings(self) -> BackendSettings:
        """The settings of a backend that takes uploads, or a SettingsError naming the connection and field.

        Checks the definition only (no network), so a run can refuse a wrong backend in its first
        seconds instead of after parsing; whether the service answers is the upload's business.
        """
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            settings = self.settings
        except AirflowNotFoundException:
            raise SettingsError(
                self.storage_backend_conn_id, "the run's storage_backend",
                f"no such connection; add it under Admin > Connections as type '{HOOK_NAME}', or fix the name",
            ) from None
        if not settings.active:
            raise SettingsError(settings.conn_id, "storage_backend_active",
                                "off, so this backend refuses uploads; choose another or switch it on")
        return settings

    def test_connection(self) -> tuple[bool, str]:
        """What the UI's Test button shows: the definition is valid and the service accepts it.

        One attempt per call: a person is waiting for the answer, and a retried refusal only
        delays the same message.
        """
        try:
            ok, message = open_backend(self.settings, retry=TEST_RETRY).check()
        except BackendError as exc:
            return False, str(exc)
        return ok, message + _redaction_warning()
