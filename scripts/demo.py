"""make demo: generate a small OMNeT++ result set, post-process it through Airflow, fetch and verify the link.

Like make airflow, it stops what it started however it is stopped (owned.py).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import requests
from local_cloud.client import LocalCloudClient
from local_cloud.testing import LocalCloudServer
from omnetpp_results import ResultsError, verify_archive
from localenv import BACKEND_ID, BIN, DEMO, airflow_env, api_key, prepare
from owned import Owned, follow_parent, stop_on_signals


def main() -> None:
    stop_on_signals()
    follow_parent()
    DEMO.mkdir(parents=True, exist_ok=True)
    owned = Owned(DEMO / "make-demo.pids")
    owned.reclaim()
    try:
        demo(owned)
    finally:
        owned.release()


def run_dag(owned: Owned, env: dict, conf: dict) -> None:
    print("demo: running simulation_postprocess (airflow dags test) ...", flush=True)
    with open(DEMO / "dags-test.log", "w") as log:
        run = owned.start([str(BIN / "airflow"), "dags", "test", "simulation_postprocess", "--conf",
                           json.dumps(conf)], group=True, env=env, stdout=log, stderr=subprocess.STDOUT)
        run.wait()
    if run.returncode:
        tail = (DEMO / "dags-test.log").read_text(errors="replace")[-3000:]
        sys.exit(f"demo: the DAG run failed; see {DEMO / 'dags-test.log'}\n{tail}")


def demo(owned: Owned) -> None:
    results = DEMO / "results" / "demo-run"
    shutil.rmtree(results, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "omnetpp_results", "generate", str(results)], check=True)
    key = api_key()
    cloud = LocalCloudServer(DEMO / "cloud", key)
    cloud_url = cloud.start()
    owned.adopt(cloud.proc.pid)
    env = airflow_env()
    prepare(env, cloud_url, key)
    conf = {"simulation_id": "demo-run-1", "title": "simpost demo", "results_dir": "demo-run",
            "summarizing_precision": 10, "storage_backend": BACKEND_ID}
    run_dag(owned, env, conf)
    uploads = [f for f in LocalCloudClient(cloud_url, key).list() if "demo-run-1" in f["name"]]
    if not uploads:
        sys.exit("demo: the run succeeded but nothing reached local_cloud")
    link = max(uploads, key=lambda f: f["uploaded_at"])["link"]
    archive = requests.get(link, timeout=60)
    archive.raise_for_status()
    downloaded = DEMO / "downloaded.zip"
    downloaded.write_bytes(archive.content)
    try:
        files = verify_archive(downloaded)
    except ResultsError as err:
        sys.exit(f"demo: the downloaded archive is wrong: {err}")
    print(f"demo: downloaded {len(archive.content)} bytes, {files} files match MANIFEST.sha256")
    print(f"demo: share link {link}")


if __name__ == "__main__":
    main()
