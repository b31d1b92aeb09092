"""Small shared pieces of the Airflow-level tests."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import zipfile

from conftest import AIRFLOW

ARCHIVE_LAYOUT = {"INFO.txt", "omnetpp.ini", "csv/scalars.csv", "csv/statistics.csv", "csv/vectors.csv",
                  "simrun/simrun-stats.csv", "MANIFEST.sha256"}


def local_backend_conn(url: str, api_key: str, keep_days: int = 7, active: bool = True) -> str:
    """A storage_backend connection as AIRFLOW_CONN_<ID> JSON, the way an admin defines it by env."""
    return json.dumps({
        "conn_type": "storage_backend", "password": api_key, "description": "test local_cloud",
        "extra": {"storage_backend": "Local cloud", "storage_backend_id": "local",
                  "storage_backend_config": json.dumps({"server": url}),
                  "storage_backend_keep_days": keep_days, "storage_backend_active": active},
    })


def verified_archive(data: bytes) -> set[str]:
    """Names in the archive, after checking MANIFEST.sha256 covers and matches every other file."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = set(z.namelist())
        manifest = {}
        for line in z.read("MANIFEST.sha256").decode().splitlines():
            digest, name = line.split(None, 1)
            manifest[name.lstrip("*")] = digest
        assert set(manifest) == names - {"MANIFEST.sha256"}
        for name, digest in manifest.items():
            assert hashlib.sha256(z.read(name)).hexdigest() == digest, name
    return names


def dags_test(dag_id: str, conf: dict, env: dict, ok: bool | None = True, timeout: float = 900) -> str:
    """One run in-process by Airflow (`airflow dags test`) with `env` added; its output, after checking
    the run succeeded (ok=True), failed (ok=False) or either (None: the test reads the output)."""
    run = subprocess.run([AIRFLOW, "dags", "test", dag_id, "--conf", json.dumps(conf)],
                         env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)
    output = run.stdout + run.stderr
    if ok is not None:
        assert (run.returncode == 0 and "state=success" in output.replace("'", "")) == ok, output[-6000:]
    return output
