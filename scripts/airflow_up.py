"""make airflow: the full local Airflow (standalone) with this project's DAGs, pools and local backend.

Ctrl-C, SIGTERM and SIGHUP stop everything it started, and a start after a SIGKILL stops what the
killed one left (owned.py). Addresses and their overrides: see localenv.py (loopback, UI on 8080,
local_cloud on 8976).
"""
from __future__ import annotations

import subprocess
import sys
import time

import requests
from local_cloud.testing import LocalCloudServer
from localenv import (ADMIN, API_PORT, API_URL, BIN, CLOUD_HOST, CLOUD_PORT, CLOUD_URL, DEMO, HOME, admin_password,
                      api_key, prepare, standalone_env)
from owned import Owned, Stopped, follow_parent, refuse_held_ports, stop_on_signals

POLL_S = 1.0  # polling interval while the api-server boots, not synchronisation


def wait_for_api(process: subprocess.Popen, url: str = API_URL, deadline_s: float = 300,
                 answer_s: float = 10) -> float:
    """Seconds until the api-server answers its health check; a slow first answer is not an error."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if process.poll() is not None:
            sys.exit(f"airflow standalone exited with {process.returncode}; see {HOME / 'standalone.log'}")
        try:
            if requests.get(f"{url}/api/v2/monitor/health", timeout=answer_s).ok:
                return time.monotonic() - start
        except requests.RequestException:  # not listening yet, or too busy booting to answer in time
            pass
        time.sleep(POLL_S)
    sys.exit(f"Airflow did not answer on {url} within {deadline_s:.0f}s; see {HOME / 'standalone.log'}")


def start_local_cloud(key: str) -> LocalCloudServer:
    """local_cloud on its fixed port: links handed out before a restart must keep working."""
    cloud = LocalCloudServer(DEMO / "cloud", key, host=CLOUD_HOST, port=CLOUD_PORT, log_path=HOME / "local_cloud.log")
    cloud.start()
    if cloud.port != CLOUD_PORT:  # it fell back to a free port: the fixed one is taken
        cloud.stop()
        sys.exit(f"local_cloud cannot listen on {CLOUD_HOST}:{CLOUD_PORT} (in use? an earlier make airflow still"
                 " running?); stop that or set SIMPOST_LOCAL_CLOUD_PORT")
    return cloud


def main() -> None:
    stop_on_signals()
    follow_parent()  # make killed: we go too
    HOME.mkdir(parents=True, exist_ok=True)
    owned = Owned(HOME / "make-airflow.pids")
    if left := owned.reclaim():
        print(f"stopped what an earlier make airflow left running (pids {', '.join(map(str, left))})", flush=True)
    refuse_held_ports({("Airflow UI", "SIMPOST_AIRFLOW_PORT"): API_PORT,
                       ("local_cloud", "SIMPOST_LOCAL_CLOUD_PORT"): CLOUD_PORT})
    key, password = api_key(), admin_password()
    try:
        cloud = start_local_cloud(key)
        owned.adopt(cloud.proc.pid)
        env = standalone_env(password)
        prepare(env, CLOUD_URL, key)
        log = open(HOME / "standalone.log", "ab")
        standalone = owned.start([str(BIN / "airflow"), "standalone"], group=True, env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
        print(f"Airflow UI:   {API_URL}   (starting; logs: {HOME / 'standalone.log'})")
        print(f"Login:        {ADMIN} / {password}")
        print(f"local_cloud:  {CLOUD_URL} (connection 'local_cloud')")
        print(f"Results root: {env['SIMPOST_RESULTS_ROOT']}", flush=True)
        waited = wait_for_api(standalone)
        print(f"Airflow is up after {waited:.0f}s. Ctrl-C stops Airflow and local_cloud.", flush=True)
        standalone.wait()
    except KeyboardInterrupt as stop:
        print(f"\nstopping ({stop if isinstance(stop, Stopped) else 'Ctrl-C'}) ...", flush=True)
    finally:
        owned.release()
        print("stopped: Airflow and local_cloud", flush=True)


if __name__ == "__main__":
    main()
