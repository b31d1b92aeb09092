"""Which catalog the tasks write: the Airflow connection `simpost_catalog`, else a SQLite file in
the deployment's home.

The connection (never Airflow's own metadata DB):
  - conn_type `postgres` (or `postgresql`): host, port, schema (the database), login, password;
    extra keys become URL query parameters (e.g. {"sslmode": "require"}). As an environment
    variable: AIRFLOW_CONN_SIMPOST_CATALOG='postgresql://user:pass@db:5432/simpost_catalog'.
  - conn_type `sqlite`: host is the database file's path (AIRFLOW_CONN_SIMPOST_CATALOG='sqlite:////data/catalog.db').
Without the connection: sqlite:///$AIRFLOW_HOME/simpost-catalog.db.
"""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL

CONN_ID = "simpost_catalog"
DEFAULT_FILE = "simpost-catalog.db"


class CatalogConnectionError(ValueError):
    """The simpost_catalog connection cannot name a catalog database; the message says which field."""


def default_url() -> str:
    home = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser()
    return f"sqlite:///{home / DEFAULT_FILE}"


def url_from_connection(conn) -> str:
    """A SQLAlchemy URL from an Airflow Connection's fields (see the module docstring)."""
    kind = (conn.conn_type or "").lower()
    if kind == "sqlite":
        path = conn.host or conn.schema
        if not path:
            raise CatalogConnectionError(f"connection {CONN_ID}: a sqlite catalog needs the file's path as host")
        return f"sqlite:///{path}"
    if kind in ("postgres", "postgresql"):
        if not conn.host or not conn.schema:
            raise CatalogConnectionError(f"connection {CONN_ID}: a postgres catalog needs host and schema (the database)")
        extra = conn.extra_dejson if conn.extra else {}
        return URL.create("postgresql+psycopg", username=conn.login or None, password=conn.password or None,
                          host=conn.host, port=conn.port or None, database=conn.schema,
                          query={k: str(v) for k, v in extra.items()}).render_as_string(hide_password=False)
    raise CatalogConnectionError(f"connection {CONN_ID}: conn_type {conn.conn_type!r} is not a catalog database"
                                 " (postgres or sqlite)")


def catalog_url() -> str:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(CONN_ID)
    except AirflowNotFoundException:
        return default_url()
    return url_from_connection(conn)


def open_catalog():
    """The deployment's catalog, migrated; close it when done (or use it in a `with`)."""
    from simpost.catalog import Catalog

    return Catalog.open(catalog_url())
