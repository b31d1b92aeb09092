"""Secrets stay out of task logs, XComs and exception texts when an upload runs through Airflow.

A small DAG of this test, in its own dags folder, runs on a real Airflow deployment
(tests/cluster.py: api-server, scheduler, dag-processor, LocalExecutor), so tasks run under the
supervisor that writes the real task log. It uploads through StorageBackendHook to the Dropbox
emulator with known secret values, once with good and once with wrong credentials, and logs the
raw connection extra after the hook has read it, as a careless DAG author might.

(`airflow dags test` is not used: it prints in-process task logs to the console without any
masking, so it cannot show what a task log holds.)
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cluster import AirflowCluster
from emulators.fixtures import (  # noqa: F401  (fixtures)
    DROPBOX_APP_SECRET,
    DROPBOX_REFRESH_TOKEN,
    _dropbox_server,
    dropbox_conn_json,
    dropbox_emulator,
    test_ca,
    write_file,
)

pytestmark = pytest.mark.airflow
WRONG_SECRET = "wrong-app-secret-0f9e5d"

PROBE_DAG = '''
"""Written by tests/test_backends_secrets.py."""
import json
import logging
import os

import pendulum
from airflow.sdk import dag, task

log = logging.getLogger(__name__)


@dag(schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False, is_paused_upon_creation=False)
def backend_secrets_probe():
    @task
    def upload(conn_id: str):
        from storage_backends import remote_name
        from storage_backends.hook import StorageBackendHook

        hook = StorageBackendHook(conn_id)
        log.info("probe settings: %r", hook.settings)
        log.info("probe extra: %s", hook.get_connection(conn_id).extra)
        name = remote_name("Probe", conn_id.replace("_", "-"), "ab" * 32)
        return hook.get_backend().upload(os.environ["PROBE_ARCHIVE"], name, hook.settings.keep_days).as_dict()

    @task
    def record(uploaded: dict):
        with open(os.environ["PROBE_XCOM"], "w") as f:
            json.dump(uploaded, f)

    record(upload("probe_good"))
    upload.override(task_id="upload_wrong")("probe_wrong")


backend_secrets_probe()
'''


def test_upload_through_airflow_leaks_no_secret(dropbox_emulator, tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "backend_secrets_probe.py").write_text(PROBE_DAG)
    wrong = dropbox_conn_json()
    wrong["extra"]["storage_backend_config"] = wrong["extra"]["storage_backend_config"].replace(
        DROPBOX_APP_SECRET, WRONG_SECRET)
    xcom_file = tmp_path / "xcom.json"
    env = {
        "AIRFLOW_CONN_PROBE_GOOD": json.dumps(dropbox_conn_json()),
        "AIRFLOW_CONN_PROBE_WRONG": json.dumps(wrong),
        "PROBE_ARCHIVE": str(write_file(tmp_path / "results.zip", 2000)),
        "PROBE_XCOM": str(xcom_file),
        # the emulator's hosts and CA bundle, set in this process by the fixture
        **{k: os.environ[k] for k in ("DROPBOX_API_HOST", "DROPBOX_API_CONTENT_HOST", "REQUESTS_CA_BUNDLE")},
    }
    with AirflowCluster(tmp_path / "airflow", dags_folder=dags, env_overrides=env) as cluster:  # starts it
        cluster.wait_dag("backend_secrets_probe")
        run_id = cluster.trigger("backend_secrets_probe")
        assert cluster.wait("backend_secrets_probe", run_id, timeout=240) == "failed"  # upload_wrong fails
        states = {ti["task_id"]: ti["state"] for ti in cluster.task_instances("backend_secrets_probe", run_id)}
        task_logs = {p.relative_to(cluster.home / "logs"): p.read_text(errors="replace")
                     for p in (cluster.home / "logs").rglob("*.log") if "backend_secrets_probe" in str(p)}
        component_logs = cluster.tails(lines=100000)
    assert states == {"upload": "success", "record": "success", "upload_wrong": "failed"}, component_logs[-3000:]
    good = next(text for path, text in task_logs.items() if "task_id=upload/" in str(path))
    bad = next(text for path, text in task_logs.items() if "task_id=upload_wrong" in str(path))

    # the probes ran and were masked, the failure is explained
    assert len(dropbox_emulator.files) == 1
    assert "probe settings: BackendSettings(" in good
    assert "probe extra:" in good and "***" in good
    assert "BackendError" in bad and "Dropbox answered HTTP 400" in bad and "invalid_client" in bad
    xcom = json.loads(xcom_file.read_text())
    assert xcom["link"].startswith("https://www.dropbox.com/")

    secrets = [DROPBOX_APP_SECRET, DROPBOX_REFRESH_TOKEN, WRONG_SECRET, *dropbox_emulator.issued_tokens]
    assert dropbox_emulator.issued_tokens, "an access token was issued and used"
    # Task logs only: the LocalExecutor also echoes task events into the scheduler's stdout
    # without masking, where the deliberately careless "probe extra" line shows the config.
    everything = "\n".join(task_logs.values())
    for secret in secrets:
        assert secret not in everything, f"secret {secret[:6]}... leaked into a task log"
        assert secret not in json.dumps(xcom)
