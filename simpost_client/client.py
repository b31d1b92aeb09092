"""Trigger and follow simulation_postprocess runs over Airflow's REST API (v2, JWT from /auth/token)."""
from __future__ import annotations

import re
import time
import uuid
from urllib.parse import quote

import requests

DAG_ID = "simulation_postprocess"
FINISHED = {"success", "failed"}


class SimpostError(Exception):
    """Airflow refused a call or a run failed; the message is Airflow's own reason."""


class Simpost:
    def __init__(self, airflow_url: str, username: str, password: str, *, timeout: float = 30.0):
        self.base = airflow_url.rstrip("/")
        self._credentials = {"username": username, "password": password}
        self.timeout = timeout
        self._session = requests.Session()

    def _call(self, method: str, path: str, **kwargs) -> dict:
        if "Authorization" not in self._session.headers:
            self._login()
        response = self._session.request(method, f"{self.base}{path}", timeout=self.timeout, **kwargs)
        if response.status_code == 401:  # the JWT lasts 24 h; a long wait may outlive it
            self._login()
            response = self._session.request(method, f"{self.base}{path}", timeout=self.timeout, **kwargs)
        if response.status_code >= 400:
            raise SimpostError(f"{method} {path}: HTTP {response.status_code}: {_detail(response)}")
        return response.json()

    def _login(self) -> None:
        response = self._session.post(f"{self.base}/auth/token", json=self._credentials, timeout=self.timeout)
        if response.status_code >= 400:
            raise SimpostError(f"login refused: HTTP {response.status_code}: {_detail(response)}")
        self._session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def trigger(self, conf: dict, run_id: str | None = None) -> str:
        """Start a run; a conf that breaks the DAG's Params is refused here (HTTP 400 naming the param)."""
        if run_id is None:  # Airflow's run-id alphabet, so a bad simulation_id is refused by its Param
            label = re.sub(r"[^A-Za-z0-9_.~:+-]+", "-", str(conf.get("simulation_id", "run")))[:100]
            run_id = f"sim__{label}__{uuid.uuid4().hex[:12]}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        return self._call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json=body)["dag_run_id"]

    def run(self, run_id: str) -> dict:
        return self._call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}")

    def task_instances(self, run_id: str) -> list[dict]:
        return self._call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances")[
            "task_instances"]

    def upload(self, run_id: str) -> dict:
        """The upload task's result: link, sha256, size, expires_at."""
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/upload/xcomEntries/return_value"
        return self._call("GET", path, params={"deserialize": "true"})["value"]

    def wait(self, run_id: str, timeout: float = 3600, poll: float = 2.0, progress=None) -> dict:
        """Poll until the run finishes; progress(str) hears each task state change."""
        deadline, seen = time.monotonic() + timeout, {}
        while True:
            run = self.run(run_id)
            if progress:
                for ti in self.task_instances(run_id):
                    if seen.get(ti["task_id"]) != ti["state"]:
                        seen[ti["task_id"]] = ti["state"]
                        progress(f"{ti['task_id']}: {ti['state']}")
            if run["state"] in FINISHED:
                return run
            if time.monotonic() > deadline:
                raise SimpostError(f"run {run_id} still {run['state']} after {timeout:.0f}s")
            time.sleep(poll)  # polling interval of a remote API

    def failure(self, run_id: str) -> str:
        failed = [ti["task_id"] for ti in self.task_instances(run_id) if ti["state"] == "failed"]
        return f"run {run_id} failed at {', '.join(failed) or 'an unknown task'} (see the task log in the UI)"


def _detail(response: requests.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return response.text[:500]
    return detail if isinstance(detail, str) else str(detail)[:1000]
