"""storage_retention against the Dropbox and Seafile emulators and a real S3 protocol server (moto):
the services' own timestamps decide.

Archives go up through the real backends under pipeline names, are then aged on the emulator
(Dropbox `server_modified`, Seafile `mtime`), and `clean` runs against what the service lists.
Files retention must never touch (another folder, a sibling folder, a subfolder, a foreign name)
are seeded already 30 days old, so keeping them is not an accident of their age.
"""
from __future__ import annotations

import logging
import socket
from datetime import datetime, timedelta, timezone

import pytest
from emulators.dropbox_api import Fault as DropboxFault
from emulators.fixtures import (  # noqa: F401  (fixtures)
    _dropbox_server,
    _seafile_server,
    dropbox_conn_json,
    dropbox_emulator,
    seafile_conn_json,
    seafile_emulator,
    settings_of,
    test_ca,
    write_file,
)
from emulators.s3 import s3_bucket, s3_server  # noqa: F401  (fixtures)
from emulators.seafile_api import Fault as SeafileFault

from simpost.retention import clean
from storage_backends import BackendError, RetryPolicy, open_backend, remote_name
from storage_backends.base import file_sha256

FOLDER = "/simpost"
KEEP = 7
ATTEMPTS = 3
# simulation id -> age on the service; None leaves the timestamp the upload itself got.
AGES = {"old": timedelta(days=40), "past": timedelta(days=KEEP, seconds=1), "edge": timedelta(days=KEEP),
        "fresh": None}
EXPIRED = ("old", "past")  # strictly older than keep days; "edge" is exactly keep days old and stays
STRANGER = remote_name("someone else", "sim-x", "ab" * 32)  # a valid project name, in the wrong place
FOREIGN = (f"{FOLDER}/lab-notes.txt", f"/other/{STRANGER}", f"{FOLDER}-old/{STRANGER}",
           f"{FOLDER}/archive/{STRANGER}")


class Service:
    """What a test needs of one emulated service, so each test is written once for both."""

    kind = ""

    def __init__(self, emulator):
        self.emulator = emulator
        self.waits: list[float] = []  # retries record their waits instead of sleeping

    def conn(self, keep_days: int = KEEP) -> dict:
        raise NotImplementedError

    def path_of(self, remote_id: str) -> str:
        """How `paths()` names an upload (the services' paths are remote ids already)."""
        return remote_id

    def backend(self, conn: dict | None = None):
        settings = settings_of(f"{self.kind}_lab", conn or self.conn())
        return open_backend(settings, retry=RetryPolicy(attempts=ATTEMPTS, sleep=self.waits.append)), settings


class Dropbox(Service):
    kind = "dropbox"

    def conn(self, keep_days: int = KEEP) -> dict:
        return dropbox_conn_json(keep_days=keep_days, folder=FOLDER)

    def paths(self) -> set[str]:
        return {f.path_display for f in self.emulator.files.values()}

    def link(self, path: str) -> dict | None:
        return self.emulator.links.get(path.lower())

    def age(self, path: str, when: datetime) -> None:
        self.emulator.set_modified(path, when)

    def seed(self, path: str, data: bytes, when: datetime) -> None:
        self.emulator.seed_file(path, data, when)

    def delete_calls(self) -> list:
        return self.emulator.route_calls("files/delete_v2")

    def fail_deletes(self, times: int) -> None:
        for _ in range(times):
            self.emulator.inject(DropboxFault("files/delete_v2", "server_error"))


class Seafile(Service):
    kind = "seafile"

    def conn(self, keep_days: int = KEEP, server: str | None = None) -> dict:
        return seafile_conn_json(server or self.emulator.base_url, keep_days=keep_days)

    def paths(self) -> set[str]:
        return set(self.emulator.files)

    def link(self, path: str) -> dict | None:
        return self.emulator.share_links.get(path)

    def age(self, path: str, when: datetime) -> None:
        self.emulator.set_modified(path, when.timestamp())

    def seed(self, path: str, data: bytes, when: datetime) -> None:
        self.emulator.seed_file(path, data, when.timestamp())

    def delete_calls(self) -> list:
        return [c for name, method, c in self.emulator.calls if name == "file" and method == "DELETE"]

    def fail_deletes(self, times: int) -> None:
        for _ in range(times):
            self.emulator.inject(SeafileFault("file"))


class S3(Service):
    """Keys are paths without the leading slash; the prefix is FOLDER's "simpost/". DELETE requests
    are counted from the server's own request log (werkzeug's, as moto serves them)."""

    kind = "s3"

    def __init__(self, emulator):
        super().__init__(emulator)
        self.requests: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda record: self.requests.append(record.getMessage())
        logging.getLogger("werkzeug").addHandler(handler)
        logging.getLogger("werkzeug").setLevel(logging.INFO)
        self.handler = handler

    def conn(self, keep_days: int = KEEP) -> dict:
        return self.emulator.conn_json(keep_days=keep_days, prefix=FOLDER.strip("/") + "/")

    def path_of(self, remote_id: str) -> str:
        return "/" + remote_id

    def paths(self) -> set[str]:
        return {"/" + key for key in self.emulator.keys()}

    def link(self, path: str) -> bool:
        """A presigned link answers while its object exists: existence is the link's life."""
        return path.lstrip("/") in self.emulator.keys()

    def age(self, path: str, when: datetime) -> None:
        self.emulator.set_modified(path.lstrip("/"), when)

    def seed(self, path: str, data: bytes, when: datetime) -> None:
        self.emulator.client().put_object(Bucket=self.emulator.bucket, Key=path.lstrip("/"), Body=data)
        self.age(path, when)

    def delete_calls(self) -> list:
        return [r for r in self.requests if "DELETE /" in r]


def _service(request, kind: str) -> Service:
    # getfixturevalue: the dropbox fixture must set DROPBOX_API_HOST before the SDK is imported
    if kind == "dropbox":
        return Dropbox(request.getfixturevalue("dropbox_emulator"))
    if kind == "s3":
        return S3(request.getfixturevalue("s3_bucket"))
    return Seafile(request.getfixturevalue("seafile_emulator"))


@pytest.fixture(params=["dropbox", "seafile", "s3"])
def service(request) -> Service:
    svc = _service(request, request.param)
    yield svc
    if isinstance(svc, S3):
        logging.getLogger("werkzeug").removeHandler(svc.handler)


@pytest.fixture(params=["dropbox", "seafile"])
def faulty_service(request) -> Service:
    """A service whose emulator can be told to fail (moto cannot)."""
    return _service(request, request.param)


def _populate(service: Service, tmp_path) -> tuple[datetime, dict]:
    """Upload one archive per AGES entry as the pipeline names it, age them on the service, seed
    the foreign files; returns (reference time, {simulation id: Upload})."""
    backend, settings = service.backend()
    uploads = {}
    for i, simulation_id in enumerate(AGES):
        archive = write_file(tmp_path / f"{service.kind}-{simulation_id}.zip", 1000 + 111 * i, seed=i)
        name = remote_name("Aloha retention", simulation_id, file_sha256(str(archive)))
        uploads[simulation_id] = backend.upload(str(archive), name, settings.keep_days)
    now = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)
    for simulation_id, age in AGES.items():
        if age is not None:
            service.age(uploads[simulation_id].remote_id, now - age)
    for path in FOREIGN:
        service.seed(path, b"not ours", now - timedelta(days=30))
    assert all(service.link(u.remote_id) for u in uploads.values()), "every upload was shared"
    return now, uploads


def _name(upload) -> str:
    return upload.remote_id.rsplit("/", 1)[1]


def test_dry_run_lists_exactly_what_the_real_run_then_deletes(service, tmp_path):
    now, uploads = _populate(service, tmp_path)
    backend, settings = service.backend()
    before = service.paths()
    expired = {_name(uploads[s]) for s in EXPIRED}

    lines: list[str] = []
    planned = clean(backend, settings.keep_days, now, dry_run=True, log=lines.append)
    assert set(planned["deleted"]) == expired and len(planned["deleted"]) == len(expired)
    assert (planned["listed"], planned["kept"]) == (4, 2)  # the foreign files are not even listed
    assert planned["deleted_bytes"] == sum(uploads[s].size for s in EXPIRED)
    assert service.paths() == before and service.delete_calls() == []
    assert all(service.link(u.remote_id) for u in uploads.values()), "a dry run revokes no link"
    assert sorted(line.split()[3] for line in lines if "would delete" in line) == sorted(expired)

    done = clean(backend, settings.keep_days, now, dry_run=False, log=lines.append)
    assert done["deleted"] == planned["deleted"] and done["errors"] == []
    assert done["deleted_bytes"] == planned["deleted_bytes"] and done["kept"] == 2
    gone = before - service.paths()
    assert gone == {service.path_of(uploads[s].remote_id) for s in EXPIRED}
    assert set(FOREIGN) <= service.paths()
    assert {_name(f) for f in backend.list_uploads()} == {_name(uploads[s]) for s in ("edge", "fresh")}
    # the service drops a deleted file's share link; the kept uploads keep theirs
    assert not any(service.link(path) for path in gone)
    assert service.link(uploads["edge"].remote_id) and service.link(uploads["fresh"].remote_id)

    again = clean(backend, settings.keep_days, now, dry_run=False, log=lines.append)
    assert again["deleted"] == [] and again["listed"] == 2


def test_keep_days_zero_keeps_everything(service, tmp_path):
    now, _ = _populate(service, tmp_path)
    backend, settings = service.backend(service.conn(keep_days=0))
    before = service.paths()

    summary = clean(backend, settings.keep_days, now + timedelta(days=3650), dry_run=False, log=lambda m: None)
    assert settings.keep_days == 0
    assert summary["deleted"] == [] and summary["deleted_bytes"] == 0 and summary["kept"] == 4
    assert service.paths() == before and service.delete_calls() == []


def test_newer_than_keep_days_is_kept_even_when_old_ones_exist_in_other_places(service, tmp_path):
    """The reference time just before the oldest upload expires: nothing of ours goes, and the
    30-day-old foreign files stay whatever the reference time."""
    now, uploads = _populate(service, tmp_path)
    backend, settings = service.backend()
    oldest = now - AGES["old"]

    summary = clean(backend, settings.keep_days, oldest + timedelta(days=KEEP), dry_run=False, log=lambda m: None)
    assert summary["deleted"] == [] and summary["kept"] == 4
    summary = clean(backend, settings.keep_days, now + timedelta(days=3650), dry_run=False, log=lambda m: None)
    assert sorted(summary["deleted"]) == sorted(_name(u) for u in uploads.values())
    assert service.paths() == set(FOREIGN)


def test_a_failed_delete_is_reported_and_the_other_deletes_go_on(faulty_service, tmp_path):
    service = faulty_service
    now, uploads = _populate(service, tmp_path)
    backend, settings = service.backend()
    service.fail_deletes(ATTEMPTS)  # the first delete fails on every attempt

    summary = clean(backend, settings.keep_days, now, dry_run=False, log=lambda m: None)
    first, second = sorted(EXPIRED, key=lambda s: _name(uploads[s]))  # listings are sorted by name
    assert summary["deleted"] == [_name(uploads[second])]
    assert summary["deleted_bytes"] == uploads[second].size
    (error,) = summary["errors"]
    assert error.startswith(f"{_name(uploads[first])}: ") and "500" in error
    assert uploads[first].remote_id in service.paths() and uploads[second].remote_id not in service.paths()
    assert len(service.waits) == ATTEMPTS - 1, "the failing delete was retried before it was given up"


@pytest.mark.parametrize("down", ["dropbox", "seafile"])
def test_a_service_that_is_down_fails_its_clean_while_the_other_cleans(request, tmp_path, down):
    services = {kind: _service(request, kind) for kind in ("dropbox", "seafile")}
    populated = {kind: _populate(s, tmp_path) for kind, s in services.items()}
    broken, working = services[down], services["seafile" if down == "dropbox" else "dropbox"]
    before = broken.paths()

    with socket.socket() as closed:  # bound, never listening: connections to it are refused
        closed.bind(("127.0.0.1", 0))
        if down == "dropbox":
            # the SDK's host comes from the environment at import: take the emulator itself down
            broken.emulator.down = True
            backend, settings = broken.backend()
        else:
            backend, settings = broken.backend(broken.conn(server=f"http://127.0.0.1:{closed.getsockname()[1]}"))
        try:
            with pytest.raises(BackendError) as failure:
                clean(backend, settings.keep_days, populated[down][0], dry_run=False, log=lambda m: None)
        finally:
            if down == "dropbox":
                broken.emulator.down = False
    message = str(failure.value)
    assert f"connection '{settings.conn_id}'" in message
    assert ("Dropbox answered HTTP 503" if down == "dropbox" else "cannot reach Seafile") in message
    assert not any(secret in message for secret in settings.secrets)
    assert len(broken.waits) == ATTEMPTS - 1, "an outage is retried before the backend gives up"
    assert broken.paths() == before

    now, uploads = populated[working.kind]
    backend, settings = working.backend()
    summary = clean(backend, settings.keep_days, now, dry_run=False, log=lambda m: None)
    assert sorted(summary["deleted"]) == sorted(_name(uploads[s]) for s in EXPIRED) and summary["errors"] == []
