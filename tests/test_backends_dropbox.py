"""Contract tests: the real dropbox SDK over TLS against the loopback emulator of Dropbox's API."""
from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from emulators.dropbox_api import Fault
from emulators.fixtures import (  # noqa: F401  (fixtures)
    DROPBOX_APP_SECRET,
    DROPBOX_LEGACY_TOKEN,
    DROPBOX_REFRESH_TOKEN,
    _dropbox_server,
    dropbox_conn_json,
    dropbox_emulator,
    settings_of,
    test_ca,
    write_file,
)

from storage_backends import BackendError, RemoteStat, RetryPolicy, open_backend, remote_name

SHA = "0123456789abcdef" * 4
NAME = remote_name("Aloha run", "sim-1", SHA)


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def backend_for(waits):
    """Open a backend whose retries record their waits instead of sleeping."""
    def make(**conn_kwargs):
        settings = settings_of("dbx", dropbox_conn_json(**conn_kwargs))
        return open_backend(settings, retry=RetryPolicy(attempts=4, sleep=waits.append))
    return make


def test_small_upload_share_link_with_expiry(dropbox_emulator, backend_for, tmp_path):
    archive = write_file(tmp_path / "results.zip", 5000)
    upload = backend_for(keep_days=7).upload(str(archive), NAME, 7)

    stored = dropbox_emulator.files[f"/simpost/{NAME}".lower()]
    assert stored.data == archive.read_bytes()
    assert upload.remote_id == f"/simpost/{NAME}" and upload.size == 5000
    assert upload.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert upload.link.startswith("https://www.dropbox.com/scl/fi/")
    assert upload.expires_at - upload.uploaded_at == timedelta(days=7)
    (call,) = dropbox_emulator.route_calls("sharing/create_shared_link_with_settings")
    assert call["settings"]["audience"] in ("public", {".tag": "public"})
    assert call["settings"]["expires"] == upload.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(dropbox_emulator.route_calls("files/upload")) == 1
    assert dropbox_emulator.route_calls("users/get_space_usage"), "free space is checked before uploading"
    assert dropbox_emulator.refreshes == 1, "OAuth2: an access token was obtained with the refresh token"


def test_retried_upload_of_same_archive_keeps_one_file_and_link(dropbox_emulator, backend_for, tmp_path):
    archive = write_file(tmp_path / "results.zip", 3000)
    backend = backend_for()
    first = backend.upload(str(archive), NAME, 7)
    second = backend.upload(str(archive), NAME, 7)
    assert list(dropbox_emulator.files) == [f"/simpost/{NAME}".lower()]
    assert second.link == first.link, "the existing shared link is reused"


def test_session_upload_larger_than_chunk_reads_chunks(dropbox_emulator, backend_for, tmp_path):
    archive = write_file(tmp_path / "big.zip", 10_000)
    upload = backend_for(chunk_size=4096).upload(str(archive), NAME, 0)

    assert dropbox_emulator.files[f"/simpost/{NAME}".lower()].data == archive.read_bytes()
    assert not dropbox_emulator.route_calls("files/upload")
    assert len(dropbox_emulator.route_calls("files/upload_session/start")) == 1
    offsets = [c["cursor"]["offset"] for c in dropbox_emulator.route_calls("files/upload_session/append_v2")]
    assert offsets == [4096]
    (finish,) = dropbox_emulator.route_calls("files/upload_session/finish")
    assert finish["cursor"]["offset"] == 8192 and finish["commit"]["path"] == f"/simpost/{NAME}"
    assert upload.expires_at is None, "keep days 0: kept forever"


def test_failed_chunk_resumes_at_offset_dropbox_reports(dropbox_emulator, backend_for, waits, tmp_path):
    """The chunk reached Dropbox but the answer was lost (500): the retry gets incorrect_offset."""
    archive = write_file(tmp_path / "big.zip", 20_000)
    dropbox_emulator.inject(Fault("files/upload_session/append_v2", "server_error", after_effect=True))
    backend_for(chunk_size=4096).upload(str(archive), NAME, 0)

    assert dropbox_emulator.files[f"/simpost/{NAME}".lower()].data == archive.read_bytes()
    offsets = [c["cursor"]["offset"] for c in dropbox_emulator.route_calls("files/upload_session/append_v2")]
    assert offsets == [4096, 4096, 8192, 12288], "sent again, refused with the correct offset, resumed there"
    assert len(waits) == 1


def test_chunk_lost_before_dropbox_stored_it_is_resent(dropbox_emulator, backend_for, waits, tmp_path):
    archive = write_file(tmp_path / "big.zip", 9000)
    dropbox_emulator.inject(Fault("files/upload_session/append_v2", "server_error", status=503))
    backend_for(chunk_size=4096).upload(str(archive), NAME, 0)
    assert dropbox_emulator.files[f"/simpost/{NAME}".lower()].data == archive.read_bytes()
    assert len(waits) == 1


def test_existing_shared_link_is_reused(dropbox_emulator, backend_for, tmp_path):
    archive = write_file(tmp_path / "results.zip", 100)
    backend = backend_for()
    backend.upload(str(archive), NAME, 3)
    existing = dropbox_emulator.links[f"/simpost/{NAME}".lower()]["url"]
    dropbox_emulator.calls.clear()
    assert backend.upload(str(archive), NAME, 3).link == existing
    assert len(dropbox_emulator.route_calls("sharing/create_shared_link_with_settings")) == 1


def test_expiry_not_authorized_is_skipped(dropbox_emulator, backend_for, tmp_path):
    dropbox_emulator.expiry_allowed = False
    upload = backend_for().upload(str(write_file(tmp_path / "r.zip", 100)), NAME, 5)
    calls = dropbox_emulator.route_calls("sharing/create_shared_link_with_settings")
    assert [("expires" in c["settings"]) for c in calls] == [True, False]
    assert "expires" not in dropbox_emulator.links[f"/simpost/{NAME}".lower()]
    assert upload.link and upload.expires_at is not None  # retention still deletes after keep days


def test_rate_limit_honours_retry_after(dropbox_emulator, backend_for, waits, tmp_path):
    dropbox_emulator.inject(Fault("files/upload", "rate_limit", retry_after=7))
    dropbox_emulator.inject(Fault("sharing/create_shared_link_with_settings", "rate_limit", retry_after=3))
    backend_for().upload(str(write_file(tmp_path / "r.zip", 100)), NAME, 0)
    assert waits == [7.0, 3.0]
    assert f"/simpost/{NAME}".lower() in dropbox_emulator.files


def test_server_errors_back_off_then_give_up_without_secrets(dropbox_emulator, backend_for, waits, tmp_path):
    for _ in range(4):
        dropbox_emulator.inject(Fault("users/get_space_usage", "server_error", status=503))
    with pytest.raises(BackendError, match=r"space check failed: Dropbox answered HTTP 503") as err:
        backend_for().upload(str(write_file(tmp_path / "r.zip", 100)), NAME, 0)
    assert len(waits) == 3 and waits[0] <= waits[1] * 2 + 1  # exponential backoff, jittered
    assert DROPBOX_APP_SECRET not in str(err.value) and DROPBOX_REFRESH_TOKEN not in str(err.value)


def test_expired_access_token_is_refreshed(dropbox_emulator, backend_for, tmp_path):
    backend = backend_for()
    backend.upload(str(write_file(tmp_path / "a.zip", 100)), NAME, 0)
    dropbox_emulator.expire_access_tokens()
    assert [f.name for f in backend.list_uploads()] == [NAME]
    assert dropbox_emulator.refreshes == 2


def test_wrong_refresh_token_is_a_clear_error(dropbox_emulator, tmp_path):
    conn = dropbox_conn_json()
    conn["extra"]["storage_backend_config"] = conn["extra"]["storage_backend_config"].replace(
        DROPBOX_REFRESH_TOKEN, "revoked-token-123")
    backend = open_backend(settings_of("dbx", conn))
    ok, message = backend.check()
    assert not ok and "Dropbox refused the credentials" in message and "revoked-token-123" not in message


def test_legacy_access_token(dropbox_emulator, tmp_path):
    backend = open_backend(settings_of("dbx", dropbox_conn_json(oauth=False)))
    backend.upload(str(write_file(tmp_path / "a.zip", 10)), NAME, 0)
    assert dropbox_emulator.refreshes == 0
    ok, message = backend.check()
    assert ok, message
    assert "lab@example.org" in message and "1 upload(s) in /simpost" in message
    assert DROPBOX_LEGACY_TOKEN not in message


def test_list_only_own_uploads_with_server_modified_and_paging(dropbox_emulator, backend_for, tmp_path):
    backend = backend_for()
    names = [remote_name("run", f"s{i}", SHA) for i in range(5)]
    for name in names:
        backend.upload(str(write_file(tmp_path / "a.zip", 10)), name, 0)
    first = dropbox_emulator.files[f"/simpost/{names[0]}".lower()]
    dropbox_emulator.files["/simpost/notes.txt"] = dataclasses.replace(first, path_display="/simpost/notes.txt")
    listed = backend.list_uploads()
    assert sorted(f.name for f in listed) == sorted(names)
    assert len(dropbox_emulator.route_calls("files/list_folder/continue")) >= 2
    now = datetime.now(timezone.utc)
    assert all(abs(now - f.modified_at) < timedelta(minutes=1) and f.size == 10 for f in listed)


def test_list_of_missing_folder_is_empty(dropbox_emulator, backend_for):
    assert backend_for(folder="/never-used").list_uploads() == []


def test_delete_inside_folder_only(dropbox_emulator, backend_for, tmp_path):
    backend = backend_for()
    upload = backend.upload(str(write_file(tmp_path / "a.zip", 10)), NAME, 0)
    backend.delete(upload.remote_id)
    assert dropbox_emulator.files == {}
    backend.delete(upload.remote_id)  # already gone: idempotent
    for outside in (f"/other/{NAME}", f"/simpost/../{NAME}", "/simpost/notes.txt"):
        with pytest.raises(BackendError, match="refusing to delete"):
            backend.delete(outside)
    assert backend.list_uploads() == []


def test_not_enough_space_refuses_before_uploading(dropbox_emulator, backend_for, tmp_path):
    dropbox_emulator.extra_used = dropbox_emulator.allocated - 50
    with pytest.raises(BackendError, match=r"not enough space on Dropbox: the archive needs 100 bytes, 50 are free"):
        backend_for().upload(str(write_file(tmp_path / "a.zip", 100)), NAME, 0)
    assert not dropbox_emulator.route_calls("files/upload")


def test_emulator_refuses_wrong_calls(dropbox_emulator, test_ca):
    """The emulator is strict: wrong host, missing auth, unknown fields and bad hashes fail."""
    import requests

    api, content = f"https://{dropbox_emulator.api_host}", f"https://{dropbox_emulator.content_host}"
    auth = {"Authorization": f"Bearer {DROPBOX_LEGACY_TOKEN}"}
    up = {**auth, "Content-Type": "application/octet-stream"}
    arg = '{"path": "/simpost/x.zip", "content_hash": "00"}'
    assert requests.post(f"{api}/2/files/upload", headers={**up, "Dropbox-API-Arg": arg}, data=b"x").status_code == 400
    assert requests.post(f"{content}/2/files/upload", data=b"x",
                         headers={"Content-Type": "application/octet-stream", "Dropbox-API-Arg": arg}).status_code == 400
    r = requests.post(f"{content}/2/files/upload", headers={**up, "Dropbox-API-Arg": arg}, data=b"x")
    assert r.status_code == 409 and r.json()["error"][".tag"] == "content_hash_mismatch"
    r = requests.post(f"{api}/2/files/list_folder", headers=auth, json={"path": "", "bogus": 1})
    assert r.status_code == 400 and "unknown field" in r.text
    r = requests.post(f"{api}/2/files/list_folder", json={"path": ""},
                      headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"][".tag"] == "invalid_access_token"


def test_stat_gives_size_and_content_hash_and_download_the_bytes(dropbox_emulator, backend_for, tmp_path):
    from emulators.dropbox_api import content_hash

    archive = write_file(tmp_path / "results.zip", 9000)
    backend = backend_for()
    upload = backend.upload(str(archive), NAME, 7)
    assert backend.stat(upload.remote_id) == RemoteStat(
        exists=True, size=9000, checksum=content_hash(archive.read_bytes()), checksum_kind="dropbox_content_hash")
    backend.download(upload.remote_id, str(tmp_path / "back.zip"))
    assert (tmp_path / "back.zip").read_bytes() == archive.read_bytes()
    (call,) = dropbox_emulator.route_calls("files/download")
    assert call == {"path": upload.remote_id}

    assert backend.stat("/simpost") == RemoteStat(exists=False), "a folder is not the copy"
    del dropbox_emulator.files[upload.remote_id.lower()]  # cleared behind simpost's back
    assert backend.stat(upload.remote_id) == RemoteStat(exists=False)
    with pytest.raises(BackendError, match="download refused by Dropbox"):
        backend.download(upload.remote_id, str(tmp_path / "none.zip"))
    assert not (tmp_path / "none.zip").exists()


def test_stat_retries_server_errors(dropbox_emulator, backend_for, waits, tmp_path):
    upload = backend_for().upload(str(write_file(tmp_path / "a.zip", 10)), NAME, 7)
    dropbox_emulator.inject(Fault("files/get_metadata", "server_error"))
    assert backend_for().stat(upload.remote_id).exists and len(waits) == 1
