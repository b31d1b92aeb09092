"""The project-local Airflow of `make demo` and `make airflow`: one AIRFLOW_HOME, one local backend."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOME = REPO / ".airflow"
DEMO = REPO / ".demo"
BIN = Path(sys.executable).parent
POOLS = {"storage_uploads": (4, "Concurrent uploads to storage backends"),
         "results_parsing": (2, "Concurrent parse/stats tasks (CPU and memory bound)")}
BACKEND_ID = "local_cloud"


def airflow_env(**extra: str) -> dict:
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__PARALLELISM": "4",
        "SIMPOST_RESULTS_ROOT": str(DEMO / "results"),
        "SIMPOST_WORK_DIR": str(DEMO / "work"),
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # standalone starts its parts as bare `airflow`
    })
    env.update(extra)
    return env


def airflow(env: dict, *args: str, quiet: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([str(BIN / "airflow"), *args], env=env, text=True, capture_output=quiet)
    if out.returncode:
        sys.exit(f"airflow {' '.join(args[:2])} failed:\n{out.stdout or ''}{out.stderr or ''}")
    return out


def prepare(env: dict, cloud_url: str, api_key: str) -> None:
    """Migrate the DB, create the pools and (re)define the local backend connection."""
    HOME.mkdir(exist_ok=True)
    airflow(env, "db", "migrate")
    for name, (slots, description) in POOLS.items():
        airflow(env, "pools", "set", name, str(slots), description)
    subprocess.run([str(BIN / "airflow"), "connections", "delete", BACKEND_ID], env=env, capture_output=True)
    airflow(env, "connections", "add", BACKEND_ID, "--conn-json", json.dumps(local_backend(cloud_url, api_key)))


def local_backend(cloud_url: str, api_key: str, keep_days: int = 7) -> dict:
    return {
        "conn_type": "storage_backend",
        "password": cloud_url,
        "description": "local_cloud on this machine (make demo / make airflow)",
        "extra": {
            "storage_backend": "Local cloud",
            "storage_backend_id": "local",
            "storage_backend_config": json.dumps({"api_key": api_key}),
            "storage_backend_keep_days": keep_days,
            "storage_backend_active": True,
        },
    }


def api_key() -> str:
    """One key per machine, kept beside the demo data so a running local_cloud and the connection agree."""
    path = DEMO / "local_cloud.key"
    if not path.exists():
        DEMO.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()
