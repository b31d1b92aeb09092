"""Contract tests: the seafile backend and CLIs over requests against the loopback Seafile emulator."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from emulators.fixtures import (  # noqa: F401  (fixtures)
    SEAFILE_PASSWORD,
    SEAFILE_REPO,
    SEAFILE_TOKEN,
    SEAFILE_USER,
    _seafile_server,
    seafile_conn_json,
    seafile_emulator,
    settings_of,
    write_file,
)
from emulators.seafile_api import Fault

from storage_backends import BackendError, RemoteStat, RetryPolicy, open_backend, remote_name

SHA = "fedcba9876543210" * 4
NAME = remote_name("Aloha run", "sim-7", SHA)
PATH = f"/simpost/{NAME}"
BIN = Path(sys.executable).parent


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def backend_for(seafile_emulator, waits):
    def make(**kwargs):
        settings = settings_of("sea", seafile_conn_json(seafile_emulator.base_url, **kwargs))
        return open_backend(settings, retry=RetryPolicy(attempts=4, sleep=waits.append))
    return make


def test_upload_creates_folder_and_shares_with_expire_days(seafile_emulator, backend_for, tmp_path):
    archive = write_file(tmp_path / "results.zip", 3000)
    upload = backend_for(keep_days=14).upload(str(archive), NAME, 14)

    assert seafile_emulator.files[PATH]["data"] == archive.read_bytes()
    assert "/simpost" in seafile_emulator.dirs
    assert upload.remote_id == PATH and upload.size == 3000
    assert upload.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    link = seafile_emulator.share_links[PATH]
    assert upload.link == link["link"] and link["expire_date"]
    assert upload.expires_at - upload.uploaded_at == timedelta(days=14)
    assert seafile_emulator.route_calls("upload") == [{"ret-json": "1"}]


def test_bearer_on_11_token_before(seafile_emulator, backend_for, tmp_path):
    """Seafile 10 refuses Bearer (the emulator answers 401): the backend must send Token there."""
    seafile_emulator.reset(version="10.0.1")
    backend = backend_for()
    backend.upload(str(write_file(tmp_path / "r.zip", 10)), NAME, 0)
    assert backend.service.api.auth_scheme == "Token"
    assert backend_for().service.api.auth_scheme == "Token"
    seafile_emulator.reset(version="11.0.5")
    assert backend_for().service.api.auth_scheme == "Bearer"


def test_retried_upload_replaces_and_reuses_existing_share_link(seafile_emulator, backend_for, tmp_path):
    archive = write_file(tmp_path / "results.zip", 500)
    backend = backend_for()
    first = backend.upload(str(archive), NAME, 7)
    second = backend.upload(str(archive), NAME, 7)
    assert list(seafile_emulator.files) == [PATH], "replace=1: no 'name (1).zip'"
    assert sorted(seafile_emulator.dirs) == ["/", "/simpost"], "folder not created twice"
    assert second.link == first.link
    assert seafile_emulator.route_calls("share-links")[-1] == {"repo_id": SEAFILE_REPO, "path": PATH}


def test_big_file_goes_in_resumable_chunks(seafile_emulator, backend_for, tmp_path):
    archive = write_file(tmp_path / "big.zip", 10_000)
    backend_for(chunk_size=4096).upload(str(archive), NAME, 0)
    assert seafile_emulator.files[PATH]["data"] == archive.read_bytes()
    assert len(seafile_emulator.route_calls("upload")) == 3
    assert PATH not in seafile_emulator.share_links or not seafile_emulator.share_links[PATH]["expire_date"]


def test_failed_chunk_resumes_where_seafile_is(seafile_emulator, backend_for, waits, tmp_path):
    """The middle chunk is stored but its answer lost: the resend is refused, the backend asks
    file-uploaded-bytes and goes on from there."""
    archive = write_file(tmp_path / "big.zip", 12_000)
    backend = backend_for(chunk_size=4096)
    seafile_emulator.inject(Fault("upload", after_effect=True))  # first chunk: stored, 500
    backend.upload(str(archive), NAME, 0)
    assert seafile_emulator.files[PATH]["data"] == archive.read_bytes()
    assert len(seafile_emulator.route_calls("uploaded-bytes")) == 2  # at start, after the failure
    assert len(waits) == 1


def test_interrupted_upload_resumes_from_uploaded_bytes(seafile_emulator, backend_for, tmp_path):
    """An earlier task attempt got 4096 bytes in; the retry of the task starts there."""
    archive = write_file(tmp_path / "big.zip", 9000)
    seafile_emulator.partial[("/simpost", NAME)] = bytearray(archive.read_bytes()[:4096])
    seafile_emulator.dirs.add("/simpost")
    backend_for(chunk_size=4096).upload(str(archive), NAME, 0)
    assert seafile_emulator.files[PATH]["data"] == archive.read_bytes()
    assert len(seafile_emulator.route_calls("upload")) == 2


def test_list_with_mtime_only_own_uploads_and_delete(seafile_emulator, backend_for, tmp_path):
    backend = backend_for()
    assert backend.list_uploads() == [], "folder not there yet"
    names = [remote_name("run", f"s{i}", SHA) for i in range(3)]
    for name in names:
        backend.upload(str(write_file(tmp_path / "a.zip", 20)), name, 0)
    seafile_emulator.files["/simpost/readme.txt"] = {"data": b"x", "mtime": 0, "id": "0" * 40}
    listed = backend.list_uploads()
    assert sorted(f.name for f in listed) == sorted(names)
    now = datetime.now(timezone.utc)
    assert all(abs(now - f.modified_at) < timedelta(minutes=1) and f.size == 20 for f in listed)

    backend.delete(listed[0].remote_id)
    assert listed[0].remote_id not in seafile_emulator.files
    for outside in ("/other/" + names[1], "/simpost/readme.txt", f"/simpost/../{names[1]}"):
        with pytest.raises(BackendError, match="refusing to delete"):
            backend.delete(outside)
    assert len(backend.list_uploads()) == 2


def test_wrong_token_is_401_with_clear_message(seafile_emulator, backend_for, tmp_path):
    backend = backend_for(token="f" * 40)
    with pytest.raises(BackendError) as err:
        backend.upload(str(write_file(tmp_path / "a.zip", 10)), NAME, 0)
    message = str(err.value)
    assert "HTTP 401 Invalid token (wrong or expired token?)" in message and "'sea'" in message
    assert "f" * 40 not in message
    ok, message = backend.check()
    assert not ok and "HTTP 401" in message


def test_check_reports_library_and_space(seafile_emulator, backend_for):
    ok, message = backend_for().check()
    assert ok and "Seafile 11.0.5" in message and "'Simulations' writable" in message
    assert SEAFILE_TOKEN not in message


def test_rate_limit_and_server_errors_are_retried(seafile_emulator, backend_for, waits, tmp_path):
    seafile_emulator.inject(Fault("upload-link", kind="rate_limit", retry_after=4))
    seafile_emulator.inject(Fault("share-links", status=502))
    backend_for().upload(str(write_file(tmp_path / "a.zip", 10)), NAME, 0)
    assert waits[0] == 4.0 and len(waits) == 2
    assert PATH in seafile_emulator.share_links


def test_unreachable_server_is_retried_then_named(tmp_path, waits):
    conn = seafile_conn_json("http://127.0.0.1:9")  # discard port: connection refused
    backend = open_backend(settings_of("sea", conn), retry=RetryPolicy(attempts=3, sleep=waits.append))
    with pytest.raises(BackendError, match=r"'sea'.*cannot reach Seafile at http://127.0.0.1:9 .*ConnectionError"):
        backend.upload(str(write_file(tmp_path / "a.zip", 10)), NAME, 0)
    assert len(waits) == 2


def test_not_enough_space(seafile_emulator, backend_for, tmp_path):
    seafile_emulator.total = 5
    try:
        with pytest.raises(BackendError, match="not enough space on Seafile"):
            backend_for().upload(str(write_file(tmp_path / "a.zip", 10)), NAME, 0)
    finally:
        seafile_emulator.total = 10 * 1024 ** 3


# --- the CLIs, run as the installed console scripts ---------------------------------------------
def run_cli(name: str, *args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    # A new session has no controlling terminal, so getpass reads the prompt answer from stdin.
    return subprocess.run([str(BIN / name), *args], input=stdin, capture_output=True, text=True, timeout=60,
                          start_new_session=True, env={**os.environ, **(env or {})})


def test_get_token_prompts_and_prints_token(seafile_emulator):
    done = run_cli("seafile-get-token", "--server", seafile_emulator.base_url,
                   stdin=f"{SEAFILE_USER}\n{SEAFILE_PASSWORD}\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].endswith(SEAFILE_TOKEN)
    assert SEAFILE_PASSWORD not in done.stdout + done.stderr


def test_get_token_wrong_password(seafile_emulator):
    done = run_cli("seafile-get-token", "--server", seafile_emulator.base_url, "--username", SEAFILE_USER,
                   "--password-stdin", stdin="not-the-password\n")
    assert done.returncode == 1
    assert "Unable to login with provided credentials" in done.stderr and "not-the-password" not in done.stderr


def test_list_repo_ids(seafile_emulator):
    done = run_cli("seafile-list-repo-ids", "--server", seafile_emulator.base_url,
                   env={"SEAFILE_TOKEN": SEAFILE_TOKEN})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["id", "name", "permission"]
    assert any(SEAFILE_REPO in line and "Simulations" in line and line.endswith("rw") for line in lines)
    as_json = run_cli("seafile-list-repo-ids", "--server", seafile_emulator.base_url, "--json", "--token-stdin",
                      stdin=SEAFILE_TOKEN + "\n", env={"SEAFILE_TOKEN": ""})
    assert json.loads(as_json.stdout)[0] == {"id": SEAFILE_REPO, "name": "Simulations", "permission": "rw"}


def test_list_repo_ids_wrong_token_and_missing_server(seafile_emulator):
    done = run_cli("seafile-list-repo-ids", "--server", seafile_emulator.base_url, env={"SEAFILE_TOKEN": "bad"})
    assert done.returncode == 1 and "HTTP 401" in done.stderr
    usage = run_cli("seafile-list-repo-ids", env={"SEAFILE_TOKEN": "bad"})
    assert usage.returncode == 2 and "--server" in usage.stderr


def test_stat_gives_size_and_file_id_and_download_the_bytes(seafile_emulator, backend_for, tmp_path):
    archive = write_file(tmp_path / "results.zip", 4000)
    backend = backend_for()
    upload = backend.upload(str(archive), NAME, 7)
    assert backend.stat(upload.remote_id) == RemoteStat(
        exists=True, size=4000, checksum=hashlib.sha1(archive.read_bytes()).hexdigest(),
        checksum_kind="seafile_file_id")
    backend.download(upload.remote_id, str(tmp_path / "back.zip"))
    assert (tmp_path / "back.zip").read_bytes() == archive.read_bytes()
    assert seafile_emulator.route_calls("file-detail") == [{"p": PATH}]

    seafile_emulator.replace_data(PATH, b"x" * 4000)  # same size, other bytes: another file id
    changed = backend.stat(upload.remote_id)
    assert changed.size == 4000 and changed.checksum != hashlib.sha1(archive.read_bytes()).hexdigest()

    backend.delete(upload.remote_id)
    assert backend.stat(upload.remote_id) == RemoteStat(exists=False)
    with pytest.raises(BackendError, match="download link refused: HTTP 404"):
        backend.download(upload.remote_id, str(tmp_path / "none.zip"))
    assert not (tmp_path / "none.zip").exists()
