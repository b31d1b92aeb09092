"""Run real Airflow components as processes: a reusable test harness.

One `AirflowCluster` is one Airflow deployment on this machine: its own AIRFLOW_HOME, its own
metadata database (SQLite in the home by default, or any SQLAlchemy URL, e.g. a fresh PostgreSQL
database from `postgres_database()`), its own ports, and a full environment passed explicitly to
every process (nothing leaks in from the test process, whose AIRFLOW_* variables tests/conftest.py
set for in-process tests).

    with AirflowCluster(tmp_path / "af", dags_folder=..., env_overrides={...}) as cluster:
        run_id = cluster.trigger("my_dag", {"x": 1})
        assert cluster.wait("my_dag", run_id, timeout=120) == "success"

Components run as their own process groups with logs in `<home>/component-logs/<name>.log`:
api-server, scheduler, dag-processor, optionally a triggerer, and with the CeleryExecutor one
`airflow celery worker` per entry of `workers` (distinct Celery node names and distinct task
instance hostnames, so tests can see which worker ran what). `start()` waits, with deadlines and
no fixed sleeps, for the api-server's health endpoint to report the scheduler and dag-processor
healthy, for every Celery worker to answer a broker ping, and for the requested DAGs to be
parsed. `stop()` sends SIGTERM to every group, then SIGKILL to whatever is left after a
deadline, including task processes that put themselves into their own process group.

Resident memory of the whole topology is sampled in the background (`peak_rss`, `peak_pss`).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import psutil
import requests

VENV_BIN = Path(sys.executable).parent
AIRFLOW_BIN = str(VENV_BIN / "airflow")
TERMINAL_RUN_STATES = {"success", "failed"}
CLUSTER_MARKER = "SIMPOST_TEST_CLUSTER_ID"
# A folder shared by the parallel workers of one test session (set by conftest.py): the migrated
# metadata DB every SQLite cluster starts from is made there once.
TEMPLATE_DIR_ENV = "SIMPOST_TEST_TEMPLATE_DIR"

# The task instance hostname is reported by the task runner through [core] hostname_callable.
# Several workers on one machine would all report the same FQDN, so the harness points that
# option at this tiny module (written into the cluster home) which returns the worker's name.
_HOSTNAME_MODULE = '''\
"""Written by tests/cluster.py: the task instance hostname of a harness worker."""
import os
import socket


def get_hostname():
    return os.environ.get("SIMPOST_TEST_HOSTNAME") or socket.getfqdn()
'''


class ClusterError(RuntimeError):
    """A component did not start, died, or a deadline passed; the message has the log tails."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _deadline_loop(timeout: float, interval: float = 0.25) -> Iterator[float]:
    """Yield the remaining time until `timeout` passes (polling helper, not a synchronisation sleep)."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        yield left
        time.sleep(min(interval, max(left, 0)))


# --------------------------------------------------------------------------------------------
# external services: a fresh PostgreSQL database, a private Redis DB number


@contextlib.contextmanager
def postgres_database(
    host: str = "127.0.0.1", port: int = 5432, user: str = "postgres", prefix: str = "simpost_test"
) -> Iterator[str]:
    """Create a uniquely named database, yield its SQLAlchemy URL, drop it (even on failure)."""
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(host=host, port=port, user=user, dbname="postgres")
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg2://{user}@{host}:{port}/{name}"
        finally:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def postgres_database_exists(url_or_name: str, host="127.0.0.1", port=5432, user="postgres") -> bool:
    import psycopg2

    name = url_or_name.rsplit("/", 1)[-1]
    with contextlib.closing(psycopg2.connect(host=host, port=port, user=user, dbname="postgres")) as c:
        with c.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cur.fetchone() is not None


@contextlib.contextmanager
def redis_database(db: int = 7, host: str = "127.0.0.1", port: int = 6379) -> Iterator[str]:
    """Flush Redis DB number `db` (only that one) before and after; yield its URL."""
    import redis

    client = redis.Redis(host=host, port=port, db=db)
    client.flushdb()
    try:
        yield f"redis://{host}:{port}/{db}"
    finally:
        client.flushdb()
        client.close()


def sqlite_template(pools: Mapping[str, int]) -> Path | None:
    """The session's migrated SQLite metadata DB holding `pools`, made by the first worker that asks
    (the others wait on its lock); None outside a test session."""
    folder = os.environ.get(TEMPLATE_DIR_ENV)
    if not folder:
        return None
    key = uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(sorted(pools.items()))).hex[:12]
    template = Path(folder) / f"airflow-{key}.db"
    Path(folder).mkdir(parents=True, exist_ok=True)
    with open(Path(folder) / f"airflow-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            home = Path(tempfile.mkdtemp(prefix="template-", dir=folder))
            env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
            env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}"})
            commands = [["db", "migrate"]] + [["pools", "set", n, str(v), f"{n} (test harness)"] for n, v in pools.items()]
            for args in commands:
                out = subprocess.run([AIRFLOW_BIN, *args], env=env, capture_output=True, text=True,
                                     stdin=subprocess.DEVNULL, timeout=600)
                if out.returncode:
                    raise ClusterError(f"airflow {' '.join(args)} (template DB): {out.stdout[-2000:]}{out.stderr[-2000:]}")
            (home / "airflow.db").rename(template)
    return template


# --------------------------------------------------------------------------------------------
# processes


@dataclass
class Component:
    name: str
    cmd: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None
    killed: bool = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, cwd: Path) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=str(cwd),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group
            )
        finally:
            log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def processes(self) -> list[psutil.Process]:
        """The leader and all its descendants (including task processes in their own groups)."""
        if not self.alive():
            return []
        try:
            leader = psutil.Process(self.proc.pid)
            return [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text[-lines:])


@dataclass
class Worker:
    """A Celery worker: Celery node name and task instance hostname are both `hostname`."""

    hostname: str
    queues: Sequence[str] | None = None  # None: [operators] default_queue
    concurrency: int | None = None  # None: the cluster's worker_concurrency


def _kill_tree(procs: Iterable[psutil.Process], sig: int) -> None:
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            p.send_signal(sig)


class AirflowCluster:
    """Real Airflow components as processes. See the module docstring."""

    def __init__(
        self,
        home: str | Path,
        *,
        dags_folder: str | Path,
        plugins_folder: str | Path | None = None,
        pythonpath: Sequence[str | Path] = (),
        env_overrides: Mapping[str, str] | None = None,
        executor: str = "LocalExecutor",
        sql_alchemy_conn: str | None = None,
        broker_url: str | None = None,
        workers: Sequence[str | Worker] = (),
        worker_concurrency: int = 2,
        parallelism: int = 4,
        triggerer: bool = False,
        pools: Mapping[str, int] | None = None,
        username: str = "admin",
        password: str | None = None,
        api_port: int | None = None,
    ):
        self.home = Path(home).resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        self.executor = executor
        self.id = uuid.uuid4().hex[:10]
        self.api_port = api_port or free_port()
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.username = username
        self.password = password or secrets.token_urlsafe(12)
        self.pools = dict(pools or {})
        self.worker_concurrency = worker_concurrency
        self.want_triggerer = triggerer
        self.components: dict[str, Component] = {}
        self.workers: dict[str, Worker] = {}
        self._token: str | None = None
        self._session = requests.Session()
        self._monitor: _MemoryMonitor | None = None
        if executor == "CeleryExecutor" and not broker_url:
            raise ValueError("CeleryExecutor needs broker_url (e.g. from redis_database())")
        self.broker_url = broker_url
        self.sql_alchemy_conn = sql_alchemy_conn or f"sqlite:///{self.home / 'airflow.db'}"
        (self.home / "pylib").mkdir(exist_ok=True)
        (self.home / "pylib" / "simpost_test_hostname.py").write_text(_HOSTNAME_MODULE)

        from cryptography.fernet import Fernet

        env: dict[str, str] = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "SIMPOST_", "LOCAL_CLOUD", "PYTEST_", "_AIRFLOW"))
        }
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        env["PYTHONPATH"] = os.pathsep.join(
            [str(self.home / "pylib"), *map(str, pythonpath), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        env["PYTHONUNBUFFERED"] = "1"
        env[CLUSTER_MARKER] = self.id
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__EXECUTOR": executor,
                "AIRFLOW__CORE__DAGS_FOLDER": str(Path(dags_folder).resolve()),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__PARALLELISM": str(parallelism),
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "simpost_test_hostname.get_hostname",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{username}:admin",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                # the DAG files do not change during a test: parse each once, not every 30 s (a third
                # of an idle deployment's CPU)
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                # serve-logs sidecars must not collide with another cluster on this machine
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                # storage_retention and storage_verify run when a test triggers them, never at start
                # (their @daily run would clean and repair under the test, and cost its CPU)
                "SIMPOST_RETENTION_SCHEDULE": "none",
                "SIMPOST_VERIFY_SCHEDULE": "none",
            }
        )
        if plugins_folder:
            env["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(Path(plugins_folder).resolve())
        if executor == "CeleryExecutor":
            env.update(
                {
                    "AIRFLOW__CELERY__BROKER_URL": broker_url,
                    "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.sql_alchemy_conn,
                    "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(worker_concurrency),
                    "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
                }
            )
        env.update({k: str(v) for k, v in (env_overrides or {}).items()})
        self.env = env
        for w in workers:
            w = w if isinstance(w, Worker) else Worker(w)
            self.workers[w.hostname] = w

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> "AirflowCluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def airflow(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        """Run an `airflow` CLI command with the cluster's environment."""
        res = subprocess.run(
            [AIRFLOW_BIN, *args],
            env=self.env,
            cwd=str(self.home),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and res.returncode != 0:
            raise ClusterError(
                f"airflow {' '.join(args)} exited {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
            )
        return res

    def prepare_db(self) -> None:
        """Migrate the metadata DB and create the pools; a SQLite cluster copies the session's
        migrated template instead (`airflow db migrate` and two CLI calls cost 30-60 s of CPU each
        time, on a machine that runs several clusters at once)."""
        default = f"sqlite:///{self.home / 'airflow.db'}"
        template = sqlite_template(self.pools) if self.sql_alchemy_conn == default else None
        if template:
            shutil.copyfile(template, self.home / "airflow.db")
            return
        self.airflow("db", "migrate")
        for name, slots in self.pools.items():
            self.airflow("pools", "set", name, str(slots), f"{name} (test harness)")

    def start(self, wait_for_dags: Sequence[str] = (), timeout: float = 240) -> None:
        """Prepare the DB, write the password file, start the components, wait until usable."""
        if any(c.alive() for c in self.components.values()):
            raise ClusterError("cluster already started (the `with` form starts it)")
        t0 = time.monotonic()
        self.prepare_db()
        # SimpleAuthManager keeps a password file that exists before it starts
        (self.home / "simple_auth_manager_passwords.json.generated").write_text(
            json.dumps({self.username: self.password}) + "\n"
        )
        self._spawn("api-server", ["api-server", "--port", str(self.api_port), "--host", "127.0.0.1"])
        self._spawn("scheduler", ["scheduler"])
        self._spawn("dag-processor", ["dag-processor"])
        if self.want_triggerer:
            self._spawn("triggerer", ["triggerer"])
        for w in list(self.workers.values()):
            self._spawn_worker(w)
        self._monitor = _MemoryMonitor(self)
        self._monitor.start()

        left = lambda: max(timeout - (time.monotonic() - t0), 1)  # noqa: E731
        self.wait_healthy(timeout=left())
        for hostname in self.workers:
            self.wait_worker(hostname, timeout=left())
        for dag_id in wait_for_dags:
            self.wait_dag(dag_id, timeout=left())

    def _spawn(self, name: str, args: list[str], extra_env: Mapping[str, str] | None = None) -> Component:
        env = dict(self.env)
        env.update(extra_env or {})
        comp = Component(name, [AIRFLOW_BIN, *args], env, self.home / "component-logs" / f"{name}.log")
        comp.start(self.home)
        self.components[name] = comp
        return comp

    def _spawn_worker(self, w: Worker) -> Component:
        args = ["celery", "worker", "--celery-hostname", w.hostname, "--skip-serve-logs"]
        args += ["--concurrency", str(w.concurrency or self.worker_concurrency)]
        if w.queues:
            args += ["--queues", ",".join(w.queues)]
        return self._spawn(f"worker-{w.hostname}", args, {"SIMPOST_TEST_HOSTNAME": w.hostname})

    def add_worker(self, hostname: str, queues: Sequence[str] | None = None, timeout: float = 120) -> None:
        """Start one more Celery worker and wait until it answers a broker ping."""
        if self.executor != "CeleryExecutor":
            raise ValueError("workers need the CeleryExecutor")
        w = Worker(hostname, queues)
        self.workers[hostname] = w
        self._spawn_worker(w)
        self.wait_worker(hostname, timeout=timeout)

    def kill_worker(self, hostname: str, sig: int = signal.SIGKILL) -> list[int]:
        """Kill a worker like a host dying: `sig` to its whole process tree. Returns the pids hit."""
        comp = self.components[f"worker-{hostname}"]
        procs = comp.processes()
        _kill_tree(procs, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(comp.proc.pid, sig)
        comp.killed = True
        with contextlib.suppress(subprocess.TimeoutExpired):
            comp.proc.wait(timeout=10)
        return [p.pid for p in procs]

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM every process group (workers first), SIGKILL what is left after `timeout`."""
        if self._monitor:
            self._monitor.stop()
        order = sorted(self.components.values(), key=lambda c: (not c.name.startswith("worker-"), c.name))
        trees: dict[str, list[psutil.Process]] = {c.name: c.processes() for c in order}
        for comp in order:
            if comp.alive():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(comp.proc.pid, signal.SIGTERM)
        end = time.monotonic() + timeout
        for comp in order:
            if comp.proc is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                comp.proc.wait(timeout=max(end - time.monotonic(), 0.1))
        for comp in order:
            if comp.proc is None:
                continue
            if comp.alive():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(comp.proc.pid, signal.SIGKILL)
                comp.proc.wait(timeout=10)
            # children that left the group (task processes) or outlived the leader
            survivors = [p for p in trees[comp.name] if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
            _kill_tree(survivors, signal.SIGKILL)
        for p in self.leftover_processes():
            _kill_tree([p], signal.SIGKILL)
        self._session.close()

    def leftover_processes(self) -> list[psutil.Process]:
        """Processes that carry this cluster's marker in their environment and are still alive."""
        found = []
        me = os.getpid()
        for p in psutil.process_iter(["pid"]):
            if p.pid == me:
                continue
            with contextlib.suppress(psutil.Error, OSError):
                if p.environ().get(CLUSTER_MARKER) == self.id and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
        return found

    # ---------------------------------------------------------------- waiting

    def _check_alive(self) -> None:
        dead = [c for c in self.components.values() if not c.killed and c.proc and c.proc.poll() is not None]
        if dead:
            raise ClusterError(
                "component(s) exited: "
                + "; ".join(f"{c.name} rc={c.proc.returncode}\n{c.tail()}" for c in dead)
            )

    def health(self) -> dict | None:
        try:
            r = self._session.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
        except requests.RequestException:
            return None
        return r.json() if r.status_code == 200 else None

    def wait_healthy(self, timeout: float = 180) -> dict:
        """Until the api-server answers and reports scheduler and dag-processor healthy."""
        last = None
        for _ in _deadline_loop(timeout, 0.5):
            self._check_alive()
            last = self.health()
            if last and last["metadatabase"]["status"] == "healthy":
                parts = ["scheduler", "dag_processor"] + (["triggerer"] if self.want_triggerer else [])
                if all((last.get(p) or {}).get("status") == "healthy" for p in parts):
                    return last
        raise ClusterError(f"not healthy after {timeout:.0f}s: {last}\n{self.tails()}")

    def wait_worker(self, hostname: str, timeout: float = 120) -> None:
        """Until the Celery worker answers a broker ping (remote control)."""
        from celery import Celery

        app = Celery(broker=self.broker_url)
        try:
            for _ in _deadline_loop(timeout, 0.5):
                self._check_alive()
                replies = app.control.ping(destination=[f"celery@{hostname}"], timeout=1.0)
                if replies:
                    return
        finally:
            app.close()
        raise ClusterError(f"worker {hostname} did not answer in {timeout:.0f}s\n{self.tails()}")

    def wait_dag(self, dag_id: str, timeout: float = 180) -> dict:
        """Until the dag-processor has parsed `dag_id`; fails early on an import error."""
        for _ in _deadline_loop(timeout, 0.5):
            self._check_alive()
            r = self.api("GET", f"/api/v2/dags/{dag_id}", check=False)
            if r.status_code == 200:
                return r.json()
            errors = self.import_errors()
            if errors:
                raise ClusterError(f"import errors while waiting for {dag_id}: {errors}")
        raise ClusterError(f"DAG {dag_id} not parsed in {timeout:.0f}s\n{self.tails(['dag-processor'])}")

    def import_errors(self) -> list[dict]:
        r = self.api("GET", "/api/v2/importErrors", check=False)
        return r.json().get("import_errors", []) if r.status_code == 200 else []

    def tails(self, names: Iterable[str] | None = None, lines: int = 30) -> str:
        names = list(names or self.components)
        return "\n".join(f"--- {n} ({self.components[n].log_path})\n{self.components[n].tail(lines)}" for n in names if n in self.components)

    # ---------------------------------------------------------------- REST

    def token(self, refresh: bool = False) -> str:
        if self._token is None or refresh:
            r = self._session.post(
                f"{self.base_url}/auth/token",
                json={"username": self.username, "password": self.password},
                timeout=30,
            )
            if r.status_code not in (200, 201):
                raise ClusterError(f"/auth/token -> {r.status_code} {r.text[:500]}")
            self._token = r.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, *, check: bool = True, **kw) -> requests.Response:
        """An authenticated REST call; `check` raises on HTTP >= 400 with the response body."""
        kw.setdefault("timeout", 30)
        headers = {"Authorization": f"Bearer {self.token()}", **kw.pop("headers", {})}
        r = self._session.request(method, f"{self.base_url}{path}", headers=headers, **kw)
        if r.status_code == 401:
            headers["Authorization"] = f"Bearer {self.token(refresh=True)}"
            r = self._session.request(method, f"{self.base_url}{path}", headers=headers, **kw)
        if check and r.status_code >= 400:
            raise ClusterError(f"{method} {path} -> {r.status_code} {r.text[:2000]}")
        return r

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: Mapping | None = None, run_id: str | None = None) -> str:
        run_id = run_id or f"test__{uuid.uuid4().hex[:12]}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf or {})}
        r = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        return r.json()["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()["state"]

    def wait(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        """Poll until the run is success/failed; returns the state (raises on deadline)."""
        return self.wait_all(dag_id, [run_id], timeout)[run_id]

    def wait_all(self, dag_id: str, run_ids: Sequence[str], timeout: float = 600) -> dict[str, str]:
        states: dict[str, str] = {}
        for _ in _deadline_loop(timeout, 0.5):
            self._check_alive()
            for rid in run_ids:
                if states.get(rid) not in TERMINAL_RUN_STATES:
                    states[rid] = self.run_state(dag_id, rid)
            if all(s in TERMINAL_RUN_STATES for s in states.values()) and len(states) == len(run_ids):
                return states
        raise ClusterError(f"runs not finished in {timeout:.0f}s: {states}\n{self.tails()}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """Task instances of a run (task_id, state, hostname, try_number, queue, pool, ...)."""
        r = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return r.json()["task_instances"]

    def task_tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict]:
        """Every try of a task instance, including earlier failed ones (hostname per try)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        if map_index >= 0:
            path += f"/{map_index}"
        return self.api("GET", f"{path}/tries").json()["task_instances"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task's log as text (one line per structured log event)."""
        r = self.api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
            headers={"Accept": "application/json"},
            check=False,
        )
        if r.status_code != 200:
            return f"(log: HTTP {r.status_code} {r.text[:300]})"
        content = r.json().get("content")
        if isinstance(content, list):
            return "\n".join(
                " ".join(str(e.get(k, "")) for k in ("timestamp", "level", "event", "error_detail") if e.get(k))
                if isinstance(e, dict) else str(e)
                for e in content
            )
        return str(content)

    # ---------------------------------------------------------------- memory

    def rss(self) -> dict[str, int]:
        """Current RSS in bytes per component (leader + descendants)."""
        out = {}
        for name, comp in self.components.items():
            total = 0
            for p in comp.processes():
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            out[name] = total
        return out

    @property
    def peak_rss(self) -> int:
        """Highest sampled sum of RSS over every process of the topology (shared pages counted per process)."""
        return self._monitor.peak_rss if self._monitor else 0

    @property
    def peak_pss(self) -> int:
        """Highest sampled sum of PSS (shared pages split between processes): the honest total."""
        return self._monitor.peak_pss if self._monitor else 0

    @property
    def peak_by_component(self) -> dict[str, int]:
        return dict(self._monitor.peak_by_component) if self._monitor else {}


@dataclass
class _MemoryMonitor:
    cluster: AirflowCluster
    interval: float = 1.0
    peak_rss: int = 0
    peak_pss: int = 0
    peak_by_component: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cluster-memory", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def sample(self) -> None:
        rss_total = pss_total = 0
        for name, comp in list(self.cluster.components.items()):
            comp_rss = 0
            for p in comp.processes():
                with contextlib.suppress(psutil.Error, OSError):
                    m = p.memory_full_info()
                    comp_rss += m.rss
                    pss_total += getattr(m, "pss", m.rss)
            rss_total += comp_rss
            if comp_rss > self.peak_by_component.get(name, 0):
                self.peak_by_component[name] = comp_rss
        self.peak_rss = max(self.peak_rss, rss_total)
        self.peak_pss = max(self.peak_pss, pss_total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):  # a sampling period, not synchronisation
            with contextlib.suppress(Exception):
                self.sample()
