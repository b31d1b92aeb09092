"""Start a real local_cloud server as a subprocess, for tests and demos of other parts.

    with running_server(tmp_path / "store", "a-key-of-16-chars+") as url:
        LocalCloudClient(url, key).upload(...)

`LocalCloudServer` does the same with stop()/start()/kill() for restart and crash tests; it keeps
the same port across restarts when it can, so links and URLs stay valid. With `small_disk="20m"`
the server runs in its own mount namespace (util-linux `unshare`, no root needed where user
namespaces are allowed) on a tmpfs of that size at its folder: a real disk that really fills up,
gone when the process ends; `srv.disk_path()` is how the test sees that folder.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests

OPTS = {"max_size", "min_free", "purge_interval", "session_ttl", "idle_timeout", "header_timeout",
        "keep_alive_timeout", "max_connections", "max_header_bytes", "forwarded_allow_ips", "public_url",
        "root_path", "log_level"}


class LocalCloudServer:
    """One server process over `folder`; start() waits until /health answers."""

    def __init__(self, folder, api_key: str, *, host: str = "127.0.0.1", port: int = 0,
                 startup_timeout: float = 30.0, log_path=None, no_fsync: bool = False,
                 small_disk: str | None = None, max_open_files: int | None = None,
                 public_host: str | None = None, public_port: int | None = None, **opts):
        unknown = set(opts) - OPTS
        if unknown:
            raise TypeError(f"unknown server options: {sorted(unknown)}")
        self.folder = Path(folder)
        self.api_key = api_key
        self.host = host
        self.port = port
        # Two faces when either is given: the public pages on their own port (0 = any free one).
        self.public_host = public_host
        self.public_port = public_port if public_port is not None or public_host is None else 0
        self.startup_timeout = startup_timeout
        self.opts = opts
        self.no_fsync = no_fsync
        self.small_disk = small_disk
        self.max_open_files = max_open_files
        self._own_dir = tempfile.mkdtemp(prefix="local-cloud-run-")
        self.log_path = Path(log_path) if log_path else Path(self._own_dir) / "server.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The API's address (with one face, the public pages' too)."""
        return f"http://{self.host}:{self.port}"

    @property
    def public_base(self) -> str:
        """Where the share links point: the public face's address, or `url` with one face."""
        if self.public_port is None:
            return self.url
        return f"http://{self.public_host or self.host}:{self.public_port}"

    def _command(self, port: int, port_file: str) -> list[str]:
        cmd = [sys.executable, "-m", "local_cloud", "serve", "--folder", str(self.folder),
               "--host", self.host, "--port", str(port), "--port-file", port_file]
        if self.public_port is not None:
            cmd += ["--public-host", self.public_host or self.host, "--public-port", str(self.public_port)]
        for k, v in self.opts.items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        if self.no_fsync:
            cmd.append("--no-fsync")
        if self.max_open_files:  # as systemd's LimitNOFILE would set it
            cmd = ["prlimit", f"--nofile={self.max_open_files}:{self.max_open_files}", "--", *cmd]
        if self.small_disk:
            self.folder.mkdir(parents=True, exist_ok=True)
            mount = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
            cmd = ["unshare", "--mount", "--map-root-user", "--propagation", "private",
                   "sh", "-c", mount, "sh", self.small_disk, str(self.folder), *cmd]
        return cmd

    def disk_path(self) -> Path:
        """The folder as the server sees it (through its mount namespace when on a small disk)."""
        if self.small_disk:
            return Path(f"/proc/{self.proc.pid}/root") / self.folder.resolve().relative_to("/")
        return self.folder

    def start(self) -> str:
        if self.proc is not None and self.proc.poll() is None:
            return self.url
        try:
            return self._start(self.port)
        except RuntimeError:
            if not self.port:
                raise
            if self.public_port is not None:
                self.public_port = 0
            return self._start(0)  # the old port was taken meanwhile

    def _start(self, port: int) -> str:
        port_file = Path(self._own_dir) / "port"
        port_file.unlink(missing_ok=True)
        env = {**os.environ, "LOCAL_CLOUD_API_KEY": self.api_key}  # env, not argv: not visible in ps
        env.pop("LOCAL_CLOUD_API_KEY_FILE", None)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self._command(port, str(port_file)), env=env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError(f"local_cloud exited during start-up:\n{self.log_tail()}")
            if port_file.exists():
                ports = [int(p) for p in port_file.read_text().split()]
                self.port = ports[0]
                if len(ports) > 1:
                    self.public_port = ports[1]
                try:
                    if requests.get(self.url + "/health", timeout=2).status_code == 200:
                        return self.url
                except requests.RequestException:
                    pass
            time.sleep(0.05)  # polling interval, bounded by the deadline
        self.kill()
        raise RuntimeError(f"local_cloud did not answer /health within {self.startup_timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful stop (SIGTERM), falling back to SIGKILL."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """Crash the server (SIGKILL): no clean-up runs, like a power cut of the process."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self) -> str:
        self.stop()
        return self.start()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __enter__(self) -> "LocalCloudServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def running_server(folder, api_key: str, **opts):
    """Run a server on a free loopback port for the duration of the block; yields its base URL."""
    server = LocalCloudServer(folder, api_key, **opts)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
