"""The `s3` service against a real S3 protocol server on loopback (moto's server mode, tests/emulators/s3.py).

boto3 speaks HTTP to it; nothing in simpost is patched. Archives above the part size go up in
parts (boto3's managed transfer), and the checksum S3 keeps is compared with ours.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from emulators.fixtures import settings_of, write_file
from emulators.s3 import MotoS3, s3_bucket, s3_server  # noqa: F401  (fixtures)

from storage_backends import BackendError, RetryPolicy, SettingsError, open_backend, remote_name
from storage_backends.base import file_sha256
from storage_backends.s3_backend import PART_SIZE, S3Backend, digests, parse_restore

KEEP = 3


def backend_for(s3: MotoS3, keep_days: int = KEEP, retry: RetryPolicy | None = None, **config):
    settings = settings_of("s3_lab", s3.conn_json(keep_days=keep_days, **config))
    return open_backend(settings, **({"retry": retry} if retry else {})), settings


def _upload(backend, tmp_path, size: int, sim: str = "s3-1", seed: int = 1):
    archive = write_file(tmp_path / f"{sim}.zip", size, seed=seed)
    name = remote_name("Aloha S3", sim, file_sha256(str(archive)))
    return archive, backend.upload(str(archive), name, KEEP)


def test_multipart_upload_keeps_sha256_and_its_presigned_link_downloads(s3_bucket, tmp_path):
    backend, _ = backend_for(s3_bucket)
    size = PART_SIZE * 2 + 12345  # three parts
    archive, upload = _upload(backend, tmp_path, size)
    sha = file_sha256(str(archive))
    assert upload.sha256 == sha and upload.size == size
    assert upload.remote_id == f"simpost/{remote_name('Aloha S3', 's3-1', sha)}"

    head = s3_bucket.client().head_object(Bucket=s3_bucket.bucket, Key=upload.remote_id, ChecksumMode="ENABLED")
    assert head["ETag"].strip('"').endswith("-3") or head.get("ChecksumType") == "COMPOSITE" or "-" in head["ETag"], \
        "sent in three parts"
    want = digests(str(archive), size)
    assert want.parts == 3 and head["ChecksumSHA256"].split("-")[0] == want.composite_b64
    assert head["Metadata"]["sha256"] == sha

    got = requests.get(upload.link, timeout=60)
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == sha
    query = parse_qs(urlsplit(upload.link).query)
    assert query["X-Amz-Expires"] == [str(KEEP * 86400)] and "X-Amz-Signature" in query
    assert upload.expires_at - upload.uploaded_at == timedelta(days=KEEP) == upload.link_until - upload.uploaded_at
    assert s3_bucket.secret_access_key not in upload.link


def test_single_put_has_s3s_own_full_object_sha256(s3_bucket, tmp_path):
    backend, _ = backend_for(s3_bucket)
    archive, upload = _upload(backend, tmp_path, 70_000, sim="s3-small")
    head = s3_bucket.client().head_object(Bucket=s3_bucket.bucket, Key=upload.remote_id, ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == file_sha256(str(archive))
    stat = backend.stat(upload.remote_id)
    assert (stat.exists, stat.size, stat.checksum, stat.checksum_kind) == (True, 70_000, upload.sha256, "sha256")


def test_links_last_the_earlier_of_keep_days_and_seven_days(s3_bucket, tmp_path):
    long_keep, _ = backend_for(s3_bucket, keep_days=30)
    archive = write_file(tmp_path / "a.zip", 1000)
    upload = long_keep.upload(str(archive), remote_name("x", "s3-long", file_sha256(str(archive))), 30)
    assert parse_qs(urlsplit(upload.link).query)["X-Amz-Expires"] == [str(7 * 86400)]
    assert upload.link_expires_at - upload.uploaded_at == timedelta(days=7) == upload.link_until - upload.uploaded_at
    assert upload.expires_at - upload.uploaded_at == timedelta(days=30), "the copy is kept for its keep days"
    assert upload.as_dict()["link_expires_at"] == upload.link_expires_at.isoformat()
    forever = long_keep.upload(str(archive), remote_name("x", "s3-zero", file_sha256(str(archive))), 0)
    assert forever.link_expires_at - forever.uploaded_at == timedelta(days=7), "keep forever: the link still ends"
    assert forever.expires_at is None

    public, _ = backend_for(s3_bucket, public_base_url=f"{s3_bucket.url}/{s3_bucket.bucket}")
    plain = public.upload(str(archive), remote_name("x", "s3-public", file_sha256(str(archive))), KEEP)
    assert plain.link == f"{s3_bucket.url}/{s3_bucket.bucket}/{plain.remote_id}" and "X-Amz" not in plain.link
    assert plain.expires_at - plain.uploaded_at == timedelta(days=KEEP)  # when retention deletes it
    assert plain.link_expires_at is None and plain.link_until == plain.expires_at, "a plain link lasts as the copy"
    assert requests.get(plain.link, timeout=30).status_code == 403, "a private bucket refuses plain links"
    client = s3_bucket.client()
    client.put_bucket_policy(Bucket=s3_bucket.bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{s3_bucket.bucket}/simpost/*"}]}))
    try:
        assert requests.get(plain.link, timeout=30).content == archive.read_bytes()
    finally:
        client.delete_bucket_policy(Bucket=s3_bucket.bucket)


def test_list_stat_download_delete(s3_bucket, tmp_path):
    backend, _ = backend_for(s3_bucket)
    archive, upload = _upload(backend, tmp_path, PART_SIZE + 1, sim="s3-2")
    client = s3_bucket.client()
    for key in ("simpost/notes.txt", "other/" + upload.remote_id.split("/")[1],
                "simpost/archive/" + upload.remote_id.split("/")[1], "simpost-old/x.zip"):
        client.put_object(Bucket=s3_bucket.bucket, Key=key, Body=b"not ours")
    (listed,) = backend.list_uploads()
    assert (listed.remote_id, listed.size) == (upload.remote_id, PART_SIZE + 1)
    assert abs(datetime.now(timezone.utc) - listed.modified_at) < timedelta(minutes=5)

    stat = backend.stat(upload.remote_id)
    assert (stat.exists, stat.size, stat.checksum) == (True, PART_SIZE + 1, upload.sha256)
    copy = tmp_path / "copy.zip"
    backend.download(upload.remote_id, str(copy))
    assert file_sha256(str(copy)) == upload.sha256

    with pytest.raises(BackendError, match="not a simpost upload"):
        backend.delete("simpost/notes.txt")
    backend.delete(upload.remote_id)
    backend.delete(upload.remote_id)  # already gone: fine
    assert backend.stat(upload.remote_id).exists is False
    assert backend.list_uploads() == []
    assert s3_bucket.keys() == {"simpost/notes.txt", "other/" + upload.remote_id.split("/")[1],
                          "simpost/archive/" + upload.remote_id.split("/")[1], "simpost-old/x.zip"}


def test_the_test_button_names_the_reason(s3_bucket):
    once = RetryPolicy(attempts=1)
    with s3_bucket.auth():
        ok, message = backend_for(s3_bucket, retry=once)[0].check()
        assert ok and f"bucket {s3_bucket.bucket!r} reachable" in message and "no lifecycle rules" in message

        wrong, _ = backend_for(s3_bucket, retry=once, secret="wrong-secret-0123456789")
        ok, message = wrong.check()
        assert not ok and "wrong secret access key (Backend token)" in message
        assert "wrong-secret-0123456789" not in message and s3_bucket.secret_access_key not in message

        ok, message = backend_for(s3_bucket, retry=once, bucket="no-such-bucket")[0].check()
        assert not ok and "bucket 'no-such-bucket' does not exist" in message
    assert "connection 's3_lab'" in message


def test_the_test_button_reports_lifecycle_rules(s3_bucket):
    client = s3_bucket.client()
    client.put_bucket_lifecycle_configuration(Bucket=s3_bucket.bucket, LifecycleConfiguration={"Rules": [
        {"ID": "expire-simpost", "Filter": {"Prefix": "simpost/"}, "Status": "Enabled", "Expiration": {"Days": KEEP}}]})
    try:
        ok, message = backend_for(s3_bucket, retry=RetryPolicy(attempts=1))[0].check()
    finally:
        client.delete_bucket_lifecycle(Bucket=s3_bucket.bucket)
    assert ok and "'expire-simpost'" in message and f"after {KEEP} days (the same as keep days {KEEP})" in message


def test_a_server_that_is_down_is_retried_by_our_layer_only(s3_bucket, tmp_path, caplog):
    import socket

    waits: list[float] = []
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        conn = s3_bucket.conn_json()
        cfg = json.loads(conn["extra"]["storage_backend_config"])
        cfg["endpoint_url"] = f"http://127.0.0.1:{closed.getsockname()[1]}"
        conn["extra"]["storage_backend_config"] = json.dumps(cfg)
        backend = open_backend(settings_of("s3_down", conn), retry=RetryPolicy(attempts=3, sleep=waits.append))
        with caplog.at_level(logging.WARNING), pytest.raises(BackendError, match="upload at s3://.* failed"):
            backend.upload(str(write_file(tmp_path / "a.zip", 100)), remote_name("x", "s3-down", "ab" * 32), 1)
    assert len(waits) == 2, "three attempts of ours, each a single botocore attempt"
    assert s3_bucket.secret_access_key not in caplog.text


def test_settings_name_the_field_never_a_value(s3_server):
    conn = s3_server.conn_json()
    del conn["password"]
    with pytest.raises(SettingsError, match=r"Backend token \(storage_backend_token\): s3 needs the secret"):
        settings_of("s3_x", conn)
    for bad, words in (({"bucket": None}, "s3 needs 'bucket'"), ({"bucket": "Bad_Bucket"}, "'bucket' must be"),
                       ({"storage_class": "COLDEST"}, "'storage_class' must be one of"),
                       ({"access_key_id": None}, "s3 needs 'access_key_id'"),
                       ({"prefix": "/abs"}, "'prefix' must be a relative"), ({"colour": "x"}, "unknown key")):
        cfg = {k: v for k, v in {**s3_server.config(), **bad}.items() if v is not None}
        conn = {**s3_server.conn_json(), "extra": {**s3_server.conn_json()["extra"], "storage_backend_config": json.dumps(cfg)}}
        with pytest.raises(SettingsError, match=words) as err:
            settings_of("s3_x", conn)
        assert s3_server.secret_access_key not in str(err.value) and "Bad_Bucket" not in str(err.value)
    settings = settings_of("s3_x", s3_server.conn_json())
    assert settings.service == "s3" and settings.config.prefix == "simpost/" and s3_server.secret_access_key in settings.secrets
    assert s3_server.secret_access_key not in repr(settings)


def test_cold_tier_upload_restore_request_and_status(s3_bucket, tmp_path):
    backend, settings = backend_for(s3_bucket, archive_storage_class="GLACIER")
    s3b: S3Backend = backend.service
    archive = write_file(tmp_path / "cold.zip", 5000)
    upload = s3b.upload(str(archive), remote_name("x", "s3-cold", file_sha256(str(archive))), 0,
                        storage_class=settings.config.archive_storage_class)
    head = s3_bucket.client().head_object(Bucket=s3_bucket.bucket, Key=upload.remote_id)
    assert head["StorageClass"] == "GLACIER"
    status = s3b.restore_status(upload.remote_id)
    assert status.archived and not status.ongoing and status.expires_at is None and not status.readable

    with s3_bucket.slow_restores(polls=6):
        assert s3b.request_restore(upload.remote_id, days=2, tier="Bulk") is True
        seen = [s3b.restore_status(upload.remote_id) for _ in range(8)]  # as a deferred task polls
    running = [s for s in seen if s.ongoing]
    assert running and all(s.archived and not s.readable and s.expires_at is None for s in running)
    status = seen[-1]
    assert status.archived and not status.ongoing and status.readable, seen
    assert timedelta(days=1) < status.expires_at - datetime.now(timezone.utc) <= timedelta(days=2)
    copy = tmp_path / "back.zip"
    s3b.download(upload.remote_id, str(copy))
    assert copy.read_bytes() == archive.read_bytes()
    assert s3b.restore_status("simpost/" + remote_name("x", "s3-none", "cd" * 32)) is None


def test_restore_header_and_already_in_progress():
    ongoing = parse_restore('ongoing-request="true"', "DEEP_ARCHIVE")
    assert ongoing.ongoing and ongoing.archived and not ongoing.readable and ongoing.expires_at is None
    done = parse_restore('ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"', "GLACIER")
    assert not done.ongoing and done.readable and done.expires_at == datetime(2012, 12, 21, tzinfo=timezone.utc)
    assert parse_restore(None, "STANDARD").readable
