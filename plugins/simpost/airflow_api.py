"""This Airflow's REST API as tasks reach it: the `airflow_api` HTTP connection (URL, login, password).

Tasks cannot read the metadata DB in Airflow 3, and the Task SDK cannot list connections or write a
run's note; the public REST API can. Duck-typed on the Connection, so no Airflow import.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import requests

NOTE_MAX = 1000  # Airflow's limit on a run note


class AirflowApi:
    """One authenticated client; the JWT is fetched on first use."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0):
        self.base, self.timeout = base_url.rstrip("/"), timeout
        self._login = {"username": username, "password": password}
        self._session = requests.Session()

    @classmethod
    def as_user(cls, base_url: str, token: str, timeout: float = 30.0) -> AirflowApi:
        """A client that acts with a signed-in user's own JWT: Airflow checks that user's permissions
        and records them as the one who did it (the Results view's actions)."""
        api = cls(base_url, "", "", timeout)
        api._session.headers["Authorization"] = f"Bearer {token}"
        return api

    @classmethod
    def from_connection(cls, conn: Any, timeout: float = 30.0) -> AirflowApi:
        host = conn.host or ""
        base = host if "://" in host else f"{conn.schema or 'http'}://{host}"
        return cls(f"{base}:{conn.port}" if conn.port else base, conn.login, conn.password, timeout)

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        if "Authorization" not in self._session.headers:
            token = self._session.post(f"{self.base}/auth/token", json=self._login, timeout=self.timeout)
            if token.status_code >= 400:
                raise RuntimeError(f"Airflow API refused the airflow_api credentials (HTTP {token.status_code})")
            self._session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        response = self._session.request(method, f"{self.base}{path}", timeout=self.timeout, **kwargs)
        response.raise_for_status()
        return response

    def connection_ids(self, conn_type: str) -> list[str]:
        """Ids of every connection of `conn_type` in the metadata DB (env/secrets-backend ones are not listed)."""
        ids, offset = [], 0
        while True:
            body = self._call("GET", "/api/v2/connections",
                              params={"limit": 100, "offset": offset, "order_by": "connection_id"}).json()
            ids += [c["connection_id"] for c in body["connections"] if c["conn_type"] == conn_type]
            offset += len(body["connections"])
            if not body["connections"] or offset >= body["total_entries"]:
                return ids

    def trigger(self, dag_id: str, run_id: str, conf: dict) -> dict:
        """Start a run of `dag_id` now (its Params validate `conf`); the run as Airflow answers it."""
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        return self._call("POST", f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns", json=body).json()

    def runs(self, dag_id: str, run_id_prefix: str, limit: int = 100) -> list[dict]:
        """The newest runs of `dag_id` whose run id starts with `run_id_prefix`, newest first (Airflow's
        prefix filter drops a trailing `_` from the prefix, so the answer is filtered again here)."""
        runs = self._call("GET", f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns", params={
            "run_id_prefix_pattern": run_id_prefix, "order_by": "-run_after", "limit": limit}).json()["dag_runs"]
        return [r for r in runs if r["dag_run_id"].startswith(run_id_prefix)]

    def add_run_note(self, dag_id: str, run_id: str, line: str) -> bool:
        """Put `line` first in the run's note (the run's page shows its first line); False if it would not fit."""
        path = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
        note = self._call("GET", path).json().get("note") or ""
        if line in note:
            return True
        note = f"{line}\n\n{note}" if note else line
        if len(note) > NOTE_MAX:
            return False
        self._call("PATCH", path, params={"update_mask": "note"}, json={"note": note})
        return True

    def marked_failed_by(self, dag_id: str, run_id: str) -> str | None:
        """Who marked the run failed (the UI, `simpost cancel` or the REST API), from Airflow's audit
        log; None when it does not say."""
        body = self._call("GET", "/api/v2/eventLogs", params={
            "dag_id": dag_id, "run_id": run_id, "event": "patch_dag_run", "order_by": "-when", "limit": 50}).json()
        for entry in body.get("event_logs", []):
            try:
                extra = json.loads(entry.get("extra") or "{}")
            except ValueError:
                continue
            if isinstance(extra, dict) and extra.get("state") == "failed":
                return entry.get("owner_display_name") or entry.get("owner")
        return None
