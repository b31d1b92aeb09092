"""pytest fixtures starting the emulators on loopback; import the ones you need into a test module:

    from emulators.fixtures import dropbox_emulator, dropbox_connection  # noqa: F401

Servers are session-scoped (started once), state is reset before each test by the
function-scoped fixtures. Connections come as `AIRFLOW_CONN_*`-style JSON dicts and as
settings objects, with fixed fake secrets the tests can search logs for.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emulators.dropbox_api import DropboxEmulator
from emulators.seafile_api import SeafileEmulator
from emulators.server import LoopbackServer
from emulators.tls import TestCA

DROPBOX_APP_KEY = "emu-app-key"
DROPBOX_APP_SECRET = "emu-app-secret-5b1f0c"
DROPBOX_REFRESH_TOKEN = "emu-refresh-token-9d2e77"
DROPBOX_LEGACY_TOKEN = "sl.emu-legacy-token-41ac"
SEAFILE_TOKEN = "0123456789abcdef0123456789abcdef01234567"
SEAFILE_USER, SEAFILE_PASSWORD = "lab@example.org", "emu-password-7f3"
SEAFILE_REPO = "99b758e6-91ab-4265-b705-925367374cf0"


# pytest makes a separate session fixture for every test module that imports one from here, but
# the Dropbox SDK can be pointed at one host per process only: such fixtures share one instance,
# started by the first module that asks and stopped when the last one is done.
_PER_PROCESS: dict[str, list] = {}


@contextlib.contextmanager
def _once_per_process(key: str, start: Callable[[contextlib.ExitStack], object]) -> Iterator:
    entry = _PER_PROCESS.get(key)
    if entry is None:
        stack = contextlib.ExitStack()
        entry = _PER_PROCESS[key] = [start(stack), 0, stack]
    entry[1] += 1
    try:
        yield entry[0]
    finally:
        entry[1] -= 1
        if entry[1] == 0:
            del _PER_PROCESS[key]
            entry[2].close()


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory) -> Iterator[TestCA]:
    with _once_per_process("test_ca", lambda stack: TestCA(tmp_path_factory.mktemp("tls"))) as ca:
        yield ca


@pytest.fixture(scope="session")
def _dropbox_server(test_ca) -> Iterator[DropboxEmulator]:
    """The emulator on https://127.0.0.1:<port> (api) and https://localhost:<port> (content).

    The SDK reads DROPBOX_API_HOST / DROPBOX_API_CONTENT_HOST when `dropbox` is first imported,
    so that must not have happened before this fixture runs (storage_backends imports it lazily).
    """
    with _once_per_process("dropbox", lambda stack: _start_dropbox(test_ca, stack)) as emulator:
        yield emulator


def _start_dropbox(test_ca: TestCA, stack: contextlib.ExitStack) -> DropboxEmulator:
    emulator = DropboxEmulator(app_key=DROPBOX_APP_KEY, app_secret=DROPBOX_APP_SECRET,
                               refresh_token=DROPBOX_REFRESH_TOKEN, legacy_token=DROPBOX_LEGACY_TOKEN)
    server = LoopbackServer(emulator.app(), certfile=test_ca.certfile, keyfile=test_ca.keyfile)
    emulator.api_host, emulator.content_host = f"127.0.0.1:{server.port}", f"localhost:{server.port}"
    if "dropbox" in sys.modules:
        from dropbox import session

        if session.API_HOST != emulator.api_host:
            pytest.fail("the dropbox SDK was imported before the emulator fixture set DROPBOX_API_HOST;"
                        " import storage_backends' dropbox module only inside tests")
    saved = {k: os.environ.get(k) for k in ("DROPBOX_API_HOST", "DROPBOX_API_CONTENT_HOST")}
    os.environ["DROPBOX_API_HOST"] = emulator.api_host
    os.environ["DROPBOX_API_CONTENT_HOST"] = emulator.content_host

    @stack.callback
    def restore() -> None:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    stack.enter_context(server)
    stack.enter_context(test_ca.trusted_by_requests())
    return emulator


@pytest.fixture
def dropbox_emulator(_dropbox_server) -> DropboxEmulator:
    _dropbox_server.reset()
    return _dropbox_server


def dropbox_conn_json(*, oauth: bool = True, keep_days: int = 7, active: bool = True, folder: str = "/simpost",
                      chunk_size: int | None = None) -> dict:
    """A `storage_backend` connection as AIRFLOW_CONN_<ID> JSON (extra keys as the UI writes them)."""
    config: dict = {"folder": folder}
    if oauth:
        config |= {"app_key": DROPBOX_APP_KEY, "app_secret": DROPBOX_APP_SECRET,
                   "refresh_token": DROPBOX_REFRESH_TOKEN}
    if chunk_size:
        config["chunk_size"] = chunk_size
    return {
        "conn_type": "storage_backend",
        "password": None if oauth else DROPBOX_LEGACY_TOKEN,
        "description": "emulated Dropbox",
        "extra": {"storage_backend": "Emulated Dropbox", "storage_backend_id": "dropbox_oauth2" if oauth else "dropbox",
                  "storage_backend_config": json.dumps(config), "storage_backend_keep_days": keep_days,
                  "storage_backend_active": active},
    }


@pytest.fixture(scope="session")
def _seafile_server() -> Iterator[SeafileEmulator]:
    emulator = SeafileEmulator(token=SEAFILE_TOKEN, username=SEAFILE_USER, password=SEAFILE_PASSWORD,
                               repo_id=SEAFILE_REPO)
    server = LoopbackServer(emulator.app())
    emulator.base_url = server.url()
    with server:
        yield emulator


@pytest.fixture
def seafile_emulator(_seafile_server) -> SeafileEmulator:
    _seafile_server.reset()
    return _seafile_server


def seafile_conn_json(server: str, *, keep_days: int = 7, active: bool = True, token: str = SEAFILE_TOKEN,
                      chunk_size: int | None = None) -> dict:
    config: dict = {"server": server, "token": token, "repoid": SEAFILE_REPO, "folder": "/simpost"}
    if chunk_size:
        config["chunk_size"] = chunk_size
    return {
        "conn_type": "storage_backend",
        "description": "emulated Seafile",
        "extra": {"storage_backend": "Emulated Seafile", "storage_backend_id": "seafile-emu",
                  "storage_backend_config": json.dumps(config), "storage_backend_keep_days": keep_days,
                  "storage_backend_active": active},
    }


def settings_of(conn_id: str, conn_json: dict):
    """Settings from connection JSON, the way a Connection object would give them."""
    from types import SimpleNamespace

    from storage_backends.settings import from_connection

    return from_connection(SimpleNamespace(conn_id=conn_id, password=conn_json.get("password"),
                                           description=conn_json.get("description"), extra=conn_json["extra"]))


def write_file(path: Path, size: int, seed: int = 1) -> Path:
    """A file of `size` pseudo-random bytes (incompressible, deterministic)."""
    import random

    rng = random.Random(seed)
    path.write_bytes(rng.randbytes(size))
    return path


LOCAL_CLOUD_API_KEY = "emu-local-cloud-key-3c9a61"


@pytest.fixture(scope="session")
def local_cloud_url(tmp_path_factory) -> Iterator[str]:
    """A real local_cloud server (not an emulator) on loopback, for the `local` service."""
    from local_cloud.testing import running_server

    with running_server(tmp_path_factory.mktemp("local-cloud"), LOCAL_CLOUD_API_KEY) as url:
        yield url


def local_conn_json(server: str, *, keep_days: int = 7, active: bool = True,
                    api_key: str = LOCAL_CLOUD_API_KEY) -> dict:
    return {
        "conn_type": "storage_backend",
        "password": server.removeprefix("http://"),
        "description": "local_cloud on loopback",
        "extra": {"storage_backend": "Local cloud", "storage_backend_id": "local",
                  "storage_backend_config": json.dumps({"api_key": api_key}), "storage_backend_keep_days": keep_days,
                  "storage_backend_active": active},
    }
