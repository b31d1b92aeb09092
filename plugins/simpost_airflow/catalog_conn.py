"""Placeholder until the catalog branch's own mapping of the `simpost_catalog` connection lands:
only the default, the SQLite file in AIRFLOW_HOME."""
from __future__ import annotations

import os
from pathlib import Path


def catalog_url() -> str:
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    return f"sqlite:///{home / 'simpost-catalog.db'}"
