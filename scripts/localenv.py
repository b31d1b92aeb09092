"""The project-local Airflow of `make demo` and `make airflow`: one AIRFLOW_HOME, one local backend.

Addresses (override by environment; both listen on loopback unless told otherwise):
  SIMPOST_AIRFLOW_HOST / SIMPOST_AIRFLOW_PORT          the UI and REST API (127.0.0.1:8080)
  SIMPOST_LOCAL_CLOUD_HOST / SIMPOST_LOCAL_CLOUD_PORT  local_cloud (127.0.0.1:8976, stable so links survive restarts)
  SIMPOST_LOCAL_CLOUD_URL                              the address written into the connection and its links
                                                       (default http://<host>:<port>; set it when binding 0.0.0.0)
  SIMPOST_LOCAL_DIR                                    where .airflow/ and .demo/ live (default: the checkout)
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from storage_backends.provider import CONFIG_FIELD, CONN_TYPE

REPO = Path(__file__).resolve().parents[1]
LOCAL = Path(os.environ.get("SIMPOST_LOCAL_DIR") or REPO)
HOME = LOCAL / ".airflow"
DEMO = LOCAL / ".demo"
BIN = Path(sys.executable).parent
POOLS = {"storage_uploads": (4, "Concurrent uploads to storage backends"),
         "results_parsing": (2, "Concurrent parse/stats tasks (CPU and memory bound)")}
BACKEND_ID = "local_cloud"
ADMIN = "admin"
# SimpleAuthManager keeps a password file that exists before it starts.
PASSWORD_FILE = HOME / "simple_auth_manager_passwords.json.generated"

API_HOST = os.environ.get("SIMPOST_AIRFLOW_HOST", "127.0.0.1")
API_PORT = int(os.environ.get("SIMPOST_AIRFLOW_PORT", "8080"))
CLOUD_HOST = os.environ.get("SIMPOST_LOCAL_CLOUD_HOST", "127.0.0.1")
CLOUD_PORT = int(os.environ.get("SIMPOST_LOCAL_CLOUD_PORT", "8976"))


def _reachable(host: str) -> str:
    """Where a client on this machine reaches a server bound to `host`."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


API_URL = f"http://{_reachable(API_HOST)}:{API_PORT}"
CLOUD_URL = os.environ.get("SIMPOST_LOCAL_CLOUD_URL") or f"http://{_reachable(CLOUD_HOST)}:{CLOUD_PORT}"


def airflow_env(**extra: str) -> dict:
    env = dict(os.environ)
    sensitive = ",".join(filter(None, [env.get("AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES"), CONFIG_FIELD]))
    env.update({
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # the Test button of the connection list
        "AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES": sensitive,  # Backend config shows as *** (README)
        "SIMPOST_RESULTS_ROOT": str(DEMO / "results"),
        "SIMPOST_WORK_DIR": str(DEMO / "work"),
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # standalone starts its parts as bare `airflow`
    })
    env.update(extra)
    return env


def standalone_env(password: str) -> dict:
    """airflow_env plus the api-server's address and the airflow_api connection storage_retention lists with."""
    api = {"conn_type": "http", "host": _reachable(API_HOST), "port": API_PORT, "schema": "http",
           "login": ADMIN, "password": password, "description": "this Airflow's REST API (make airflow)"}
    return airflow_env(**{
        "AIRFLOW__API__HOST": API_HOST,
        "AIRFLOW__API__PORT": str(API_PORT),
        "AIRFLOW__API__BASE_URL": API_URL,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{API_URL}/execution/",
        "AIRFLOW_CONN_AIRFLOW_API": json.dumps(api),
    })


def admin_password(path: Path = PASSWORD_FILE) -> str:
    """The admin password, created once and kept in SimpleAuthManager's own file, so it can always be shown."""
    try:
        password = json.loads(path.read_text()).get(ADMIN)
    except (FileNotFoundError, ValueError, AttributeError):
        password = None
    if not password:
        path.parent.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(12)
        path.write_text(json.dumps({ADMIN: password}) + "\n")
        path.chmod(0o600)
    return password


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
    """The server in the config (links stay readable in logs), the API key as the masked token."""
    return {
        "conn_type": CONN_TYPE,
        "password": api_key,
        "description": "local_cloud on this machine (make demo / make airflow)",
        "extra": {
            "storage_backend": "Local cloud",
            "storage_backend_id": "local",
            CONFIG_FIELD: json.dumps({"server": cloud_url}),
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
