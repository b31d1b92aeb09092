"""Trigger and follow simulation_postprocess runs over Airflow's REST API (v2, JWT from /auth/token)."""
from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import IO
from urllib.parse import quote

import requests

DAG_ID = "simulation_postprocess"
RESTORE_DAG_ID = "storage_restore"
FINISHED = {"success", "failed"}
UPLOAD_TASK = "upload"  # one task instance per backend (mapped)
DELIVERY_TASK = "copies"  # the run's delivered archive: the first present copy's link, and every copy
RESULT_KEY = "result"  # the XCom key of a run's final event (simpost.result.RESULT_KEY in the DAG's code)
TEARDOWN_RULE = "all_done_setup_success"  # Airflow's trigger rule of teardown tasks: not a stage
PAGE = 100
CATALOG_API = "/simpost/api"  # the simpost api-server plugin (plugins/simpost_airflow/results_api.py)
CATALOG_PAGE = 500


class SimpostError(Exception):
    """Airflow refused a call or a run failed; the message is Airflow's own reason."""


class StillRunning(SimpostError):
    """wait() gave up before the run finished; the run itself goes on."""


class Simpost:
    def __init__(self, airflow_url: str, username: str, password: str, *, timeout: float = 30.0):
        self.base = airflow_url.rstrip("/")
        self._credentials = {"username": username, "password": password}
        self.timeout = timeout
        self._session = requests.Session()

    def _call(self, method: str, path: str, **kwargs) -> dict:
        return self._request(method, path, **kwargs).json()

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        if "Authorization" not in self._session.headers:
            self._login()
        response = self._session.request(method, f"{self.base}{path}", timeout=self.timeout, **kwargs)
        if response.status_code == 401:  # the JWT lasts 24 h; a long wait may outlive it
            self._login()
            if hasattr(kwargs.get("data"), "seek"):  # a file body is sent again from its start
                kwargs["data"].seek(0)
            response = self._session.request(method, f"{self.base}{path}", timeout=self.timeout, **kwargs)
        if response.status_code >= 400:
            raise SimpostError(f"{method} {path}: HTTP {response.status_code}: {_detail(response)}")
        return response

    def _login(self) -> None:
        response = self._session.post(f"{self.base}/auth/token", json=self._credentials, timeout=self.timeout)
        if response.status_code >= 400:
            raise SimpostError(f"login refused: HTTP {response.status_code}: {_detail(response)}")
        self._session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def trigger(self, conf: dict, run_id: str | None = None, dag_id: str = DAG_ID) -> str:
        """Start a run; a conf that breaks the DAG's Params is refused here (HTTP 400 naming the param)."""
        if run_id is None:  # Airflow's run-id alphabet, so a bad simulation_id is refused by its Param
            label = re.sub(r"[^A-Za-z0-9_.~:+-]+", "-", str(conf.get("simulation_id", "run")))[:100]
            run_id = f"sim__{label}__{uuid.uuid4().hex[:12]}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        return self._call("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def _run_path(self, run_id: str, dag_id: str = DAG_ID) -> str:
        return f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"

    def run(self, run_id: str, dag_id: str = DAG_ID) -> dict:
        return self._call("GET", self._run_path(run_id, dag_id))

    def stages(self) -> list[str]:
        """The DAG's stages in the order they run (its tasks minus the cleanup teardown), from the API."""
        tasks = {t["task_id"]: t for t in self._call("GET", f"/api/v2/dags/{DAG_ID}/tasks")["tasks"]}
        upstream = {tid: set() for tid in tasks}
        for tid, t in tasks.items():
            for down in t.get("downstream_task_ids") or []:
                upstream.setdefault(down, set()).add(tid)
        order: list[str] = []
        while len(order) < len(tasks):  # Kahn's algorithm, ties by name so the order is stable
            ready = sorted(t for t in tasks if t not in order and upstream[t] <= set(order))
            order.append(ready[0])
        return [t for t in order if tasks[t].get("trigger_rule") != TEARDOWN_RULE]

    def cancel(self, run_id: str) -> dict:
        """Mark a running run failed: Airflow stops its running stage and skips the rest; the run's
        cleanup then tells the user and the simulator, once. Refused once the archive is uploaded."""
        run = self.run(run_id)
        if run["state"] in FINISHED:
            raise SimpostError(f"run {run_id} has already finished ({run['state']}); nothing to cancel")
        if any(ti["task_id"] == UPLOAD_TASK and ti["state"] == "success" for ti in self.task_instances(run_id)):
            raise SimpostError(f"run {run_id} is past its upload: the results are being delivered")
        return self._call("PATCH", self._run_path(run_id),
                          json={"state": "failed", "note": "cancelled with simpost cancel"})

    def task_instances(self, run_id: str) -> list[dict]:
        return self._call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances")[
            "task_instances"]

    def _xcom(self, run_id: str, task_id: str, key: str, dag_id: str = DAG_ID) -> dict:
        path = f"{self._run_path(run_id, dag_id)}/taskInstances/{quote(task_id, safe='')}/xcomEntries/{quote(key, safe='')}"
        return self._call("GET", path, params={"deserialize": "true"})["value"]

    def upload(self, run_id: str) -> dict:
        """The delivered archive: link (the first present copy's), sha256, size, expires_at, and
        `copies` ([{"backend", "state", "link"}])."""
        return self._xcom(run_id, DELIVERY_TASK, "return_value")

    def result(self, run_id: str, dag_id: str = DAG_ID) -> dict | None:
        """The run's final event (simpost result schema; a restore's `restored` event), wherever the run
        recorded it; None if it has none."""
        entries = self._call("GET", f"{self._run_path(run_id, dag_id)}/taskInstances/~/xcomEntries",
                             params={"xcom_key": RESULT_KEY})["xcom_entries"]
        if not entries:
            return None
        latest = max(entries, key=lambda e: e["timestamp"])
        return self._xcom(run_id, latest["task_id"], RESULT_KEY, dag_id)

    def finished_runs(self, since: str | None = None) -> Iterator[dict]:
        """Every finished run (success or failed), oldest end first; `since`: ISO time, on the run's end."""
        params: dict = {"state": sorted(FINISHED), "order_by": "end_date", "limit": PAGE}
        if since:
            params["end_date_gte"] = since
        offset = 0
        while True:
            page = self._call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params={**params, "offset": offset})
            yield from page["dag_runs"]
            offset += len(page["dag_runs"])
            if not page["dag_runs"] or offset >= page["total_entries"]:
                return

    def wait(self, run_id: str, timeout: float = 3600, poll: float = 2.0,
             on_change: Callable[[dict[str, str | None]], None] | None = None, dag_id: str = DAG_ID) -> dict:
        """Poll until the run finishes; on_change(task states) hears every change of a task's state."""
        deadline, seen = time.monotonic() + timeout, {}
        while True:
            run = self.run(run_id, dag_id)
            if on_change:
                states = {ti["task_id"]: ti["state"] for ti in self.task_instances(run_id)}
                if states != seen:
                    seen = states
                    on_change(states)
            if run["state"] in FINISHED:
                return run
            if time.monotonic() > deadline:
                raise StillRunning(f"run {run_id} still {run['state']} after {timeout:.0f}s")
            time.sleep(poll)  # polling interval of a remote API

    def archives(self, simulation_id: str | None = None, search: str | None = None,
                 fresh_links: bool = False) -> Iterator[dict]:
        """The catalog's archives (newest first), each with its copies: backend, state, link,
        last_verified, ... (the simpost plugin's routes on the api-server). `fresh_links`: a present
        copy whose links expire (S3's presigned ones) comes with a new link and its `link_expires`."""
        params = {"simulation_id": simulation_id, "q": search, "limit": CATALOG_PAGE,
                  "fresh_links": "true" if fresh_links else None}
        offset = 0
        while True:
            page = self._call("GET", f"{CATALOG_API}/archives", params={**params, "offset": offset})
            yield from page["archives"]
            offset += len(page["archives"])
            if not page["more"]:
                return

    def export_catalog(self, since: str | None = None) -> Iterator[str]:
        """The catalog as versioned JSON lines (header first), streamed; `since`: ISO date or time."""
        response = self._request("GET", f"{CATALOG_API}/catalog/export", params={"since": since}, stream=True)
        with response:
            for line in response.iter_lines(decode_unicode=False):
                yield line.decode("utf-8")

    def import_catalog(self, lines: IO[bytes]) -> dict:
        """Merge an export into this deployment's catalog; the counts of what changed. A bad line is
        refused (SimpostError naming its number) and then nothing is imported."""
        return self._call("POST", f"{CATALOG_API}/catalog/import", data=lines,
                          headers={"Content-Type": "application/x-ndjson"})

    def failure(self, run_id: str) -> str:
        failed = [ti["task_id"] for ti in self.task_instances(run_id) if ti["state"] == "failed"]
        return f"run {run_id} failed at {', '.join(failed) or 'an unknown task'} (see the task log in the UI)"


def progress_bar(stages: list[str], states: dict[str, str | None], width: int = 24) -> str:
    """One line: a bar of the stages done, the count, and what is happening now."""
    done = sum(1 for s in stages if states.get(s) == "success")
    filled = round(width * done / len(stages)) if stages else width
    active = [f"{s} {states[s]}" for s in stages if states.get(s) not in (None, "success")]
    return f"[{'#' * filled}{'-' * (width - filled)}] {done}/{len(stages)} " + (", ".join(active) or
                                                                              ("done" if done == len(stages) else "waiting"))


def _detail(response: requests.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return response.text[:500]
    return detail if isinstance(detail, str) else str(detail)[:1000]
