"""The `local` service against a real local_cloud server on loopback."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from emulators.fixtures import LOCAL_CLOUD_API_KEY, local_cloud_url, local_conn_json, settings_of, write_file  # noqa: F401

from storage_backends import BackendError, RemoteStat, open_backend, remote_name

SHA = "00112233445566778899aabbccddeeff" * 2


@pytest.fixture
def backend(local_cloud_url):
    backend = open_backend(settings_of("lc", local_conn_json(local_cloud_url)))
    yield backend
    for f in backend.list_uploads():
        backend.delete(f.remote_id)


def test_upload_list_delete_round_trip(backend, tmp_path):
    archive = write_file(tmp_path / "results.zip", 70_000)
    name = remote_name("Aloha", "lc-1", SHA)
    upload = backend.upload(str(archive), name, 3)
    assert upload.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest() and upload.size == 70_000
    assert upload.expires_at - upload.uploaded_at == timedelta(days=3)
    assert upload.link.startswith("http://127.0.0.1:")

    again = backend.upload(str(archive), name, 3)
    assert again.remote_id == upload.remote_id, "a retried upload of the same archive is the same file"
    (listed,) = backend.list_uploads()
    assert (listed.remote_id, listed.name, listed.size) == (upload.remote_id, name, 70_000)
    assert abs(datetime.now(timezone.utc) - listed.modified_at) < timedelta(minutes=1)

    backend.delete(upload.remote_id)
    backend.delete(upload.remote_id)  # already gone: fine
    assert backend.list_uploads() == []


def test_keep_forever_and_check(backend, tmp_path):
    upload = backend.upload(str(write_file(tmp_path / "a.zip", 10)), remote_name("x", "lc-2", SHA), 0)
    assert upload.expires_at is None
    ok, message = backend.check()
    assert ok and "local_cloud" in message and "bytes free" in message


def test_wrong_api_key_is_clear_and_secret_free(local_cloud_url, tmp_path):
    backend = open_backend(settings_of("lc", local_conn_json(local_cloud_url, api_key="wrong-key-0000000001")))
    with pytest.raises(BackendError, match=r"'lc'.*upload at http://127.0.0.1:\d+ failed: HTTP 40[13]") as err:
        backend.upload(str(write_file(tmp_path / "a.zip", 10)), remote_name("x", "lc-3", SHA), 0)
    assert "wrong-key-0000000001" not in str(err.value) and LOCAL_CLOUD_API_KEY not in str(err.value)
    ok, message = backend.check()
    assert not ok and "wrong api_key" in message


def test_stat_rehashes_the_stored_bytes_and_download_fetches_them(tmp_path):
    """stat() reports what local_cloud's disk holds now: a copy changed in place (same size) shows
    its new SHA-256, a copy whose data file is gone does not exist; a missing id is no exception."""
    from local_cloud.testing import running_server

    folder = tmp_path / "cloud"
    with running_server(folder, LOCAL_CLOUD_API_KEY) as url:
        backend = open_backend(settings_of("lc", local_conn_json(url)))
        archive = write_file(tmp_path / "results.zip", 50_000)
        upload = backend.upload(str(archive), remote_name("x", "lc-4", SHA), 0)
        assert backend.stat(upload.remote_id) == RemoteStat(exists=True, size=50_000, checksum=upload.sha256,
                                                            checksum_kind="sha256")
        backend.download(upload.remote_id, str(tmp_path / "back.zip"))
        assert (tmp_path / "back.zip").read_bytes() == archive.read_bytes()

        stored = folder / "files" / upload.remote_id
        data = bytearray(stored.read_bytes())
        data[100] ^= 0xFF
        stored.write_bytes(bytes(data))
        changed = backend.stat(upload.remote_id)
        assert changed.exists and changed.size == 50_000
        assert changed.checksum == hashlib.sha256(bytes(data)).hexdigest() != upload.sha256
        assert backend.stat(upload.remote_id) == changed, "stat changes nothing"
        again = backend.upload(str(archive), remote_name("x", "lc-4", SHA), 0)  # the same upload once more
        assert again.remote_id != upload.remote_id and backend.stat(again.remote_id).checksum == upload.sha256
        assert backend.stat(upload.remote_id) == RemoteStat(exists=False), "the changed file was set aside"
        assert not stored.exists() and list((folder / "quarantine").rglob(upload.remote_id))

        (folder / "files" / again.remote_id).unlink()
        assert backend.stat(again.remote_id) == RemoteStat(exists=False)
        assert backend.stat("no-such-file-id") == RemoteStat(exists=False)
        with pytest.raises(BackendError, match="download at http://127.0.0.1:\\d+ failed: HTTP 404"):
            backend.download("no-such-file-id", str(tmp_path / "none.zip"))
        assert not (tmp_path / "none.zip").exists(), "a failed download leaves no file to be taken for the archive"
