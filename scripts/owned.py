"""What `make airflow` and `make demo` start, they stop, however they are stopped.

- Ctrl-C, SIGTERM (`kill`, systemd, a CI runner; make forwards it) and SIGHUP (a closed terminal,
  a dropped SSH session) all end the launcher through the same clean-up path.
- The launcher follows its parent: if make dies, the kernel sends the launcher SIGTERM.
- A launcher killed with SIGKILL runs no clean-up: airflow standalone follows it by the kernel's
  parent-death signal, and everything it started is listed in a pid file, so the next start stops
  what is still running before it starts anew.
- A port held by anything else is refused in one line naming the process, never taken for ours.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

PR_SET_PDEATHSIG = 1  # prctl(2)
STOP_S = 20.0  # SIGINT, then SIGKILL: everything is gone within 30 s (README)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C would be, so one `finally` stops everything."""


def stop_on_signals() -> None:
    def handler(signum, _frame):
        signal.signal(signum, signal.SIG_IGN)  # a second signal must not cut the clean-up short
        raise Stopped(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def follow_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send `sig` when our parent dies (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before we asked
        os.kill(os.getpid(), sig)


def _child_follows_launcher() -> None:
    """In the child of airflow standalone: SIGINT (its clean stop) when the launcher dies."""
    follow_parent(signal.SIGINT)


def port_holder(port: int) -> str | None:
    """Who listens on `port` on this machine, in words, or None when it is free."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return "a process this user cannot see"
            try:
                proc = psutil.Process(conn.pid)
                return f"pid {conn.pid} ({' '.join(proc.cmdline())[:120] or proc.name()})"
            except psutil.Error:
                return f"pid {conn.pid}"
    return None


class Owned:
    """The processes this launcher started, kept in `path` with their start times, so that a reused
    pid is never taken for ours."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: list[dict] = []

    def reclaim(self) -> list[int]:
        """Stop what an earlier launcher of this folder left running; the pids it stopped."""
        try:
            recorded = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return []
        stopped = _stop(recorded if isinstance(recorded, list) else [])
        self.path.unlink(missing_ok=True)
        return stopped

    def start(self, args: list[str], *, group: bool = False, **popen) -> subprocess.Popen:
        """Popen, recorded; `group` makes it a process group of its own that follows the launcher."""
        if group:
            popen.update(start_new_session=True, preexec_fn=_child_follows_launcher)
        process = subprocess.Popen(args, **popen)
        self.adopt(process.pid, group)
        return process

    def adopt(self, pid: int, group: bool = False) -> None:
        self.entries.append({"pid": pid, "started": psutil.Process(pid).create_time(), "group": group})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.entries))

    def release(self) -> None:
        """Stop everything recorded, newest first, and forget it."""
        _stop(list(reversed(self.entries)))
        self.entries.clear()
        self.path.unlink(missing_ok=True)


def _ours(entry: dict) -> list[psutil.Process]:
    """The live processes of one record: the process itself, and for a group every member (a group
    outlives its leader, and its id is not handed out again while a member lives)."""
    try:
        leader = psutil.Process(entry["pid"])
        if abs(leader.create_time() - entry["started"]) > 1e-3:
            return []  # the pid was reused by something else
    except psutil.NoSuchProcess:
        leader = None
    except (psutil.Error, KeyError, TypeError):
        return []
    if not entry.get("group"):
        return [leader] if leader else []
    members = [p for p in psutil.process_iter() if _pgid(p) == entry["pid"] and p.pid != os.getpid()]
    return members


def _stop(entries: list[dict]) -> list[int]:
    """Each group's leader gets SIGINT (airflow standalone stops its parts on it, and only on it), a
    leaderless group or a single process SIGTERM; whatever is left after STOP_S gets SIGKILL."""
    procs: list[psutil.Process] = []
    groups = {e["pid"] for e in entries if e.get("group") and _ours(e)}
    for entry in entries:
        found = _ours(entry)
        leader = next((p for p in found if p.pid == entry.get("pid")), None)
        for proc in [leader] if entry.get("group") and leader else found:
            _send(proc, signal.SIGINT if entry.get("group") else signal.SIGTERM)
        procs += found
    _, alive = psutil.wait_procs(procs, timeout=STOP_S)
    alive += [p for p in psutil.process_iter() if _pgid(p) in groups and p not in alive and p.pid != os.getpid()]
    for proc in alive:
        _send(proc, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)
    return [p.pid for p in procs]


def _send(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except psutil.Error:
        pass


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except (ProcessLookupError, psutil.Error):
        return None


def refuse_held_ports(ports: dict[str, int]) -> None:
    """Exit with one line per port that something else holds, saying how to get it back."""
    held = [f"{what} port {port} is held by {holder}: stop that process, or choose another port"
            f" ({env})" for (what, env), port in ports.items() if (holder := port_holder(port))]
    if held:
        sys.exit("\n".join(held))
