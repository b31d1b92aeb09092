"""make airflow: the full local Airflow (standalone) with this project's DAGs, pools and local backend.

Ctrl-C stops everything: standalone's children only stop on SIGINT to its whole process group.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import requests
from local_cloud.testing import running_server
from localenv import BIN, DEMO, HOME, airflow_env, api_key, prepare

URL = os.environ.get("SIMPOST_AIRFLOW_URL", "http://localhost:8080")


def wait_for_api(process: subprocess.Popen, deadline_s: float = 180) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"airflow standalone exited with {process.returncode}; see {HOME / 'standalone.log'}")
        try:
            if requests.get(f"{URL}/api/v2/monitor/health", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)  # polling interval while the api-server boots, not synchronisation
    sys.exit(f"Airflow did not answer on {URL} within {deadline_s:.0f}s; see {HOME / 'standalone.log'}")


def main() -> None:
    key = api_key()
    with running_server(DEMO / "cloud", key) as cloud_url:
        env = airflow_env()
        prepare(env, cloud_url, key)
        log = open(HOME / "standalone.log", "ab")
        standalone = subprocess.Popen([str(BIN / "airflow"), "standalone"], env=env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_api(standalone)
            passwords = json.loads((HOME / "simple_auth_manager_passwords.json.generated").read_text())
            print(f"Airflow UI:   {URL}")
            print(f"Login:        admin / {passwords.get('admin')}")
            print(f"local_cloud:  {cloud_url} (connection 'local_cloud')")
            print(f"Results root: {env['SIMPOST_RESULTS_ROOT']}   logs: {HOME / 'standalone.log'}")
            print("Ctrl-C stops Airflow and local_cloud.", flush=True)
            standalone.wait()
        except KeyboardInterrupt:
            print("\nstopping ...", flush=True)
        finally:
            if standalone.poll() is None:
                os.killpg(standalone.pid, signal.SIGINT)
                try:
                    standalone.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(standalone.pid, signal.SIGKILL)
                    standalone.wait()


if __name__ == "__main__":
    main()
