"""`make airflow` owns what it starts: however it is stopped, nothing of it is left and its ports are free.

Started as a user's terminal starts it: `make airflow` in a process group of its own, SIGINT at its
default. Its state lives in a temporary SIMPOST_LOCAL_DIR, on free ports, so a developer's own
`make airflow` is never touched; that variable in a process's environment is how a left-over
process of ours is recognised.
"""
from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from cluster import free_port

# several whole DAG runs (or Airflow starts) per test: on a loaded 2-core machine one took 677 s
pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[1]
UP = "Airflow is up after"
GONE_WITHIN_S = 30  # the promise
POLL_S = 0.2  # polling interval while waiting for a condition with a deadline


class Launch:
    """One `make airflow` in its own process group, its output read line by line."""

    def __init__(self, local_dir: Path, ports: dict[str, int]):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update({"SIMPOST_LOCAL_DIR": str(local_dir),
                    "SIMPOST_AIRFLOW_PORT": str(ports["api"]), "SIMPOST_LOCAL_CLOUD_PORT": str(ports["cloud"]),
                    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports["logs"]),
                    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports["trigger_logs"])})
        self.make = subprocess.Popen(["make", "--no-print-directory", "airflow"], cwd=REPO, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.make.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = 480) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not printed; make airflow said:\n" + "\n".join(self.seen[-40:]))

    def output(self, timeout: float = GONE_WITHIN_S) -> str:
        """Everything printed until make ended."""
        self.make.wait(timeout)
        while (line := self.lines.get(timeout=5)) is not None:
            self.seen.append(line)
        return "\n".join(self.seen)

    def launcher(self) -> psutil.Process:
        [launcher] = [p for p in psutil.Process(self.make.pid).children() if "airflow_up.py" in " ".join(p.cmdline())]
        return launcher


def ours(local_dir: Path) -> list[psutil.Process]:
    """Every live process started for this local dir (they all inherit its variable)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("SIMPOST_LOCAL_DIR") == str(local_dir) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def assert_all_gone(local_dir: Path, ports: dict[str, int]) -> float:
    """Seconds until no process of ours is left and no port of ours is held (at most GONE_WITHIN_S)."""
    start = time.monotonic()
    while time.monotonic() - start < GONE_WITHIN_S:
        left = ours(local_dir)
        held = [name for name, port in ports.items() if listening(port)]
        if not left and not held:
            return time.monotonic() - start
        time.sleep(POLL_S)
    names = [" ".join(p.cmdline())[:100] for p in left]
    raise AssertionError(f"after {GONE_WITHIN_S}s still running: {names}; ports held: {held}")


@pytest.fixture(scope="module")
def local_dir(tmp_path_factory) -> Iterator[Path]:
    """One state folder for the module: the first start migrates its DB, later ones reuse it. A test
    that failed half-way must not leave its Airflow running for the rest of the suite."""
    folder = tmp_path_factory.mktemp("make-airflow")
    yield folder
    for proc in ours(folder):
        proc.kill()


@pytest.fixture
def ports() -> dict[str, int]:
    return {name: free_port() for name in ("api", "cloud", "logs", "trigger_logs")}


def stopped(launch: Launch, local_dir: Path, ports: dict[str, int], how: str) -> None:
    seconds = assert_all_gone(local_dir, ports)
    assert "stopped: Airflow and local_cloud" in launch.output()
    print(f"\nmake airflow, {how}: everything gone after {seconds:.1f}s")


def test_sighup_to_its_process_group_leaves_no_process_and_no_port(local_dir, ports):
    """A closed terminal or a dropped SSH session."""
    launch = Launch(local_dir, ports)
    launch.wait_for(UP)
    assert ours(local_dir) and listening(ports["api"]) and listening(ports["cloud"])
    os.killpg(launch.make.pid, signal.SIGHUP)
    stopped(launch, local_dir, ports, "SIGHUP to its process group")


def test_a_start_after_the_launcher_was_killed_stops_what_it_left_and_sigterm_stops_it(local_dir, ports):
    """SIGKILL gives the launcher no clean-up of its own: the next start finds what it left. That second
    start is then stopped as systemd or a supervisor stops it (one Airflow start fewer than testing
    SIGTERM on a start of its own)."""
    first = Launch(local_dir, ports)
    first.wait_for(UP)
    first.launcher().kill()
    first.make.wait(GONE_WITHIN_S)
    second = Launch(local_dir, ports)
    second.wait_for("stopped what an earlier make airflow left running")
    second.wait_for(UP)
    assert listening(ports["api"]) and listening(ports["cloud"])
    os.kill(second.make.pid, signal.SIGTERM)
    stopped(second, local_dir, ports, "SIGTERM to make")


def test_a_port_held_by_something_else_is_refused_in_one_line(local_dir, ports):
    with socket.socket() as foreign:
        foreign.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        foreign.bind(("127.0.0.1", ports["api"]))
        foreign.listen()
        launch = Launch(local_dir, ports)
        said = launch.output(timeout=60)
        assert launch.make.returncode != 0
        [line] = [line for line in said.splitlines() if f"port {ports['api']}" in line]
        assert f"pid {os.getpid()}" in line and "SIMPOST_AIRFLOW_PORT" in line
        assert UP not in said
        assert_all_gone(local_dir, {"cloud": ports["cloud"]})
