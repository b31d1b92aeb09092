"""Small shared pieces of the Airflow-level tests."""
from __future__ import annotations

import atexit
import hashlib
import io
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from conftest import CHILD_CPU

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


class DagRunner:
    """This test process's served `airflow dags test` (tests/dag_runner.py): started at the first run,
    and again when Airflow's own settings (AIRFLOW_HOME, AIRFLOW__*) change, it dies or a run times out."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.settings: dict = {}
        self.reported_cpu = 0.0

    def run(self, dag_id: str, conf: dict, env: dict, timeout: float) -> tuple[int, str]:
        env = {**os.environ, **env}
        settings = {k: v for k, v in env.items() if k == "AIRFLOW_HOME" or k.startswith("AIRFLOW__")}
        if self.proc is None or self.proc.poll() is not None or settings != self.settings:
            self.stop()
            self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("dag_runner.py"))], env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                         start_new_session=True)
            self.settings = settings
        with tempfile.NamedTemporaryFile(prefix="dags-test-", suffix=".log") as output:
            self.proc.stdin.write(json.dumps({"dag_id": dag_id, "conf": conf, "env": env, "output": output.name}) + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline() if select.select([self.proc.stdout], [], [], timeout)[0] else None
            text = Path(output.name).read_text(errors="replace")
        if not answer:  # timed out, or the runner died with the run
            self.stop()
            return 1, text + f"\n[dags test: no answer after {timeout:.0f} s, or the runner died]"
        answer = json.loads(answer)
        CHILD_CPU[0] += answer["cpu_s"] - self.reported_cpu
        self.reported_cpu = answer["cpu_s"]
        return answer["code"], text

    def stop(self) -> None:
        """Ends the runner; once reaped its CPU counts among this process's children, not twice."""
        if self.proc is None:
            return
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        CHILD_CPU[0] -= self.reported_cpu
        self.proc, self.reported_cpu = None, 0.0


_runner = DagRunner()
atexit.register(_runner.stop)


def dags_test(dag_id: str, conf: dict, env: dict, ok: bool | None = True, timeout: float = 900) -> str:
    """One run by Airflow as `airflow dags test` does it, with `env` added; its output, after checking
    the run succeeded (ok=True), failed (ok=False) or either (None: the test reads the output)."""
    code, output = _runner.run(dag_id, conf, env, timeout)
    if ok is not None:
        assert (code == 0 and "state=success" in output.replace("'", "")) == ok, output[-6000:]
    return output
