"""Which storage_backend connections exist, for the DAGs that work on all of them (retention, verify).

Tasks cannot read the metadata DB in Airflow 3 and the Task SDK gets connections by id only: the
REST API (`airflow_api` HTTP connection) lists those made in the UI, the Variable `storage_backends`
names those defined by environment or a secrets backend.
"""
from __future__ import annotations

import logging

from airflow.sdk import BaseHook, Variable

log = logging.getLogger(__name__)


def storage_backend_ids(only: list[str] | None = None, what: str = "retention") -> list[str]:
    """Every backend id (from both sources), limited to `only` when given (each must exist)."""
    from airflow.sdk.exceptions import AirflowNotFoundException
    from simpost.airflow_api import AirflowApi
    from simpost.retention import backend_ids_from_variable, choose, none_found
    from storage_backends.provider import CONN_TYPE

    variable = Variable.get("storage_backends", default=None)
    from_variable = backend_ids_from_variable(variable)
    try:
        api = BaseHook.get_connection("airflow_api")
    except AirflowNotFoundException:
        log.warning("no airflow_api connection: only the Variable storage_backends lists backends")
        api, from_api = None, []
    else:
        from_api = AirflowApi.from_connection(api).connection_ids(CONN_TYPE)
    ids = choose(from_api, from_variable, only)
    if ids:
        log.info("%s: backends %s", what, ids)
    else:
        log.warning("%s: %s", what, none_found(api is not None, variable is not None))
    return ids


def open_storage_backend(conn_id: str):
    """The backend a storage_backend connection describes, opened as tasks open it (its settings
    read, and its secrets masked, by the connection's hook), e.g. in the api-server's Results view."""
    from storage_backends.hook import StorageBackendHook

    return StorageBackendHook(conn_id).get_backend()
