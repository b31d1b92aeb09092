"""docker-compose.yaml, checked without a Docker engine.

`docker-compose config` (Debian's v1, installed by deploy/ensure-docker-compose.sh when missing)
validates and resolves the file; the resolved services, volumes and environment are then checked
against what the code reads: env var names, queues, pools, ports, the connection JSON.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yaml"
WORKER_COMPOSE = REPO / "deploy" / "docker-compose.worker.yaml"
ENV_EXAMPLE = REPO / ".env.example"
AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker", "airflow-init"}
LONG_RUNNING = AIRFLOW_SERVICES - {"airflow-init"} | {"postgres", "redis", "local-cloud"}
SECRETS = ["AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_ADMIN_PASSWORD",
           "POSTGRES_PASSWORD", "REDIS_PASSWORD", "LOCAL_CLOUD_API_KEY"]


def _clean_env() -> dict:
    """No variable of the test session (conftest sets SIMPOST_*) may leak into interpolation."""
    return {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}


@pytest.fixture(scope="module")
def compose_bin() -> str:
    subprocess.run([str(REPO / "deploy" / "ensure-docker-compose.sh")], check=True, timeout=600)
    return "docker-compose"


def _compose(compose_bin, *args, files=(COMPOSE,), env_file=ENV_EXAMPLE, extra_env=None):
    cmd = [compose_bin]
    for f in files:
        cmd += ["-f", str(f)]
    cmd += ["--project-directory", str(REPO), "--env-file", str(env_file), *args]
    return subprocess.run(cmd, cwd=REPO, env={**_clean_env(), **(extra_env or {})},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def resolved(compose_bin) -> dict:
    res = _compose(compose_bin, "config")
    assert res.returncode == 0, res.stderr
    return yaml.safe_load(res.stdout)


def _env(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: ("" if v is None else str(v)) for k, v in env.items()}


def _mounts(service: dict) -> dict[str, str]:
    """container path -> source (volume name or host path)."""
    out = {}
    for v in service.get("volumes") or []:
        if isinstance(v, str):
            parts = v.split(":")
            out[parts[1]] = parts[0]
        else:
            out[v["target"]] = v.get("source", "")
    return out


def test_compose_validates_quietly(compose_bin):
    res = _compose(compose_bin, "config", "-q")
    assert res.returncode == 0, res.stderr
    res = _compose(compose_bin, "config", "-q", files=(WORKER_COMPOSE,), extra_env={
        "POSTGRES_HOST": "10.0.0.1", "REDIS_HOST": "10.0.0.1", "AIRFLOW_API_URL": "http://10.0.0.1:8080",
        "LOCAL_CLOUD_ADDRESS": "10.0.0.2:8600", "SIMPOST_RESULTS_DIR": "/mnt/simpost/results",
        "SIMPOST_WORK_HOST_DIR": "/mnt/simpost/work"})
    assert res.returncode == 0, res.stderr


def test_secrets_are_required_not_defaulted(compose_bin, tmp_path):
    """Without a .env the file refuses to resolve: no secret has a default in the compose file."""
    empty = tmp_path / "empty.env"
    empty.write_text("")
    res = _compose(compose_bin, "config", "-q", env_file=empty)
    assert res.returncode != 0
    assert "in .env" in res.stderr, res.stderr
    text = COMPOSE.read_text() + WORKER_COMPOSE.read_text()
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"(:[-?][^}]*)?\}", text)
        assert uses, f"{name} not used"
        assert not any(u.startswith(":-") for u in uses), f"{name} has a default in a compose file"
    example = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
                   if line and not line.startswith("#"))
    for name in SECRETS:
        assert example[name].startswith("change-me"), f".env.example must not hold a real {name}"
    assert re.search(r"^\.env$", (REPO / ".gitignore").read_text(), re.M), ".env must be git-ignored"


def test_services_follow_the_official_layout(resolved):
    services = resolved["services"]
    assert set(services) >= AIRFLOW_SERVICES | {"postgres", "redis", "local-cloud"}
    for name in LONG_RUNNING:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"
    images = {services[n]["image"] for n in AIRFLOW_SERVICES | {"local-cloud"}}
    assert len(images) == 1, f"one image for every Airflow service and local-cloud: {images}"
    for name in AIRFLOW_SERVICES:
        assert services[name]["build"]["context"] == str(REPO), name
    assert services["airflow-init"]["depends_on"].keys() >= {"postgres", "redis"}
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        dep = services[name]["depends_on"]
        assert dep["airflow-init"]["condition"] == "service_completed_successfully", name
        assert dep["postgres"]["condition"] == dep["redis"]["condition"] == "service_healthy", name
    commands = {n: " ".join(services[n]["command"]) if isinstance(services[n]["command"], list)
                else services[n]["command"] for n in AIRFLOW_SERVICES - {"airflow-init"}}
    assert commands["airflow-apiserver"] == "api-server"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-worker"].startswith("celery worker")


def test_airflow_environment_matches_the_code(resolved):
    services = resolved["services"]
    for name in AIRFLOW_SERVICES:
        env = _env(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://"), name
        assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://") and "@redis:6379/" in \
            env["AIRFLOW__CELERY__BROKER_URL"], name
        for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
            assert env[key], f"{name}: {key} empty"
        # the execution API is the api-server service on its container port
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        # shared folders: the env vars the code reads point at the mounted shared volumes
        mounts = _mounts(services[name])
        assert mounts.get(env["SIMPOST_RESULTS_ROOT"]), f"{name}: results root not mounted"
        assert mounts.get(env["SIMPOST_WORK_DIR"]), f"{name}: work dir not mounted"
    ports = {p["target"] for p in services["airflow-apiserver"]["ports"]}
    assert 8080 in ports


def test_env_var_names_exist_in_the_code(resolved):
    """Every SIMPOST_* the compose sets is read by the code, and every one the code needs is set."""
    code = "\n".join(p.read_text() for p in [*(REPO / "dags").glob("*.py"), *(REPO / "plugins").rglob("*.py")])
    read = set(re.findall(r"""environ(?:\.get)?[\(\[]\s*["'](SIMPOST_[A-Z_]+)""", code))
    assert {"SIMPOST_RESULTS_ROOT", "SIMPOST_WORK_DIR", "SIMPOST_UPLOAD_QUEUE", "SIMPOST_PARSE_QUEUE"} <= read, read
    env = _env(resolved["services"]["airflow-worker"])
    set_here = {k for k in env if k.startswith("SIMPOST_")}
    assert set_here <= read, f"set but never read: {set_here - read}"
    needed = {"SIMPOST_RESULTS_ROOT", "SIMPOST_WORK_DIR", "SIMPOST_UPLOAD_QUEUE", "SIMPOST_PARSE_QUEUE"}
    assert needed <= set_here


def test_queues_and_pools(resolved):
    env = _env(resolved["services"]["airflow-worker"])
    command = resolved["services"]["airflow-worker"]["command"]
    command = command if isinstance(command, str) else " ".join(command)
    queues = set(re.search(r"--queues\s+(\S+)", command).group(1).split(","))
    assert {"default", env["SIMPOST_UPLOAD_QUEUE"], env["SIMPOST_PARSE_QUEUE"]} <= queues
    dag = (REPO / "dags" / "simulation_postprocess.py").read_text()
    pools = set(re.findall(r"""pool\s*=\s*["']([a-z_]+)["']""", dag))
    assert pools >= {"storage_uploads", "results_parsing"}, pools
    init = (REPO / "deploy" / "airflow-init.sh").read_text()
    for pool in pools:
        assert re.search(rf"pools set {pool} ", init), f"airflow-init does not create pool {pool}"


def test_local_cloud_connection_and_service(resolved):
    services = resolved["services"]
    conn = json.loads(_env(services["airflow-worker"])["AIRFLOW_CONN_LOCAL_CLOUD"])
    assert conn["conn_type"] == "storage_backend"
    extra = conn["extra"]
    assert extra["storage_backend_id"] == "local" and extra["storage_backend_active"] is True
    assert isinstance(extra["storage_backend_keep_days"], int)
    config = json.loads(extra["storage_backend_config"])
    cloud_env = _env(services["local-cloud"])
    assert conn["password"] == cloud_env["LOCAL_CLOUD_API_KEY"], "worker and local-cloud keys differ"
    host, port = config["server"].split(":")  # not a secret: share links stay readable in task logs
    assert host == "local-cloud" and port == cloud_env["LOCAL_CLOUD_PORT"]
    common = _env(services["airflow-apiserver"])  # the Test button, and Backend config masked in the UI
    assert common["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
    assert "storage_backend_config" in common["AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES"].split(",")
    # every LOCAL_CLOUD_* given to the server is a setting it reads (pydantic-settings, env prefix LOCAL_CLOUD_)
    from local_cloud.settings import ServerSettings

    known = {f"LOCAL_CLOUD_{n.upper()}" for n in ServerSettings.model_fields}
    assert set(cloud_env) <= known, set(cloud_env) - known
    assert "local-cloud-data" in resolved["volumes"]
    _local_cloud_publishes_only_its_public_face(services["local-cloud"], cloud_env, config["server"])
    assert _mounts(services["local-cloud"])[cloud_env["LOCAL_CLOUD_FOLDER"]] == "local-cloud-data" or \
        _mounts(services["local-cloud"])[cloud_env["LOCAL_CLOUD_FOLDER"]].endswith("local-cloud-data")


def _local_cloud_publishes_only_its_public_face(service: dict, cloud_env: dict, server: str) -> None:
    """Workers reach the API over the compose network; the host publishes the share pages only."""
    from local_cloud.settings import ServerSettings

    settings = ServerSettings(folder="/data/cloud", **{k.removeprefix("LOCAL_CLOUD_").lower(): v
                                                       for k, v in cloud_env.items() if k != "LOCAL_CLOUD_FOLDER"})
    api_port, public = settings.api_address[1], settings.public_address
    assert public is not None and public[1] != api_port, "local-cloud must serve its public pages on their own port"
    published = {int(p["target"]) for p in service.get("ports") or []}
    assert published == {public[1]}, f"local-cloud publishes {published}, only the public port {public[1]} may be"
    assert int(server.rsplit(":", 1)[1]) == api_port, "the workers' connection must name the API port"
    link_port = urlsplit(cloud_env["LOCAL_CLOUD_PUBLIC_URL"]).port
    host_ports = {int(p["published"]) for p in service["ports"]}
    assert link_port in host_ports, "share links must carry the published public port"


def test_dockerfile_builds_on_the_installed_airflow():
    from importlib.metadata import version

    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG AIRFLOW_VERSION=" + re.escape(version("apache-airflow")) + "$", text, re.M)
    assert re.search(r"^FROM apache/airflow:\$\{AIRFLOW_VERSION\}", text, re.M)
    assert "pip install --no-cache-dir --no-deps /opt/simpost" in text  # the provider entry point
    ignore = (REPO / ".dockerignore").read_text().split()
    assert {".env", ".venv", ".git"} <= set(ignore)
