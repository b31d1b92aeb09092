"""Several copies and storage_verify, as Airflow runs them (`airflow dags test`), on local_cloud
started for real and the Dropbox and Seafile emulators, with SQLite and PostgreSQL catalogs.

(a) a run to three backends with one down succeeds with two present copies and one failed; once the
    backend is back, storage_verify completes the third;
(b) a copy deleted through the service's own API and a copy changed on local_cloud's disk are found
    lost by storage_verify and copied again, byte for byte the archive.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from emulators.s3 import s3_bucket, s3_server  # noqa: F401  (fixtures)
from emulators.fixtures import (  # noqa: F401  (fixtures)
    DROPBOX_APP_SECRET,
    DROPBOX_REFRESH_TOKEN,
    SEAFILE_REPO,
    SEAFILE_TOKEN,
    _dropbox_server,
    _seafile_server,
    dropbox_conn_json,
    dropbox_emulator,
    seafile_conn_json,
    seafile_emulator,
    test_ca,
)
from local_cloud.client import LocalCloudClient
from local_cloud.testing import running_server

from cluster import postgres_database
from helpers import dags_test
from simpost.catalog import Catalog
from test_notify import mail_parts, mailbox  # noqa: F401  (fixture)

# several whole DAG runs (or Airflow starts) per test: on a loaded 2-core machine one took 677 s
pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1800)]
BACKENDS = ["lc", "dbx", "sea"]


@pytest.fixture
def catalog_conn(request, tmp_path):
    """The simpost_catalog connection (as AIRFLOW_CONN_ JSON) and the catalog's URL: each whole-DAG test
    names its database (test_catalog.py runs every catalog operation on both)."""
    if request.param == "sqlite":
        path = tmp_path / "catalog.db"
        yield json.dumps({"conn_type": "sqlite", "host": str(path)}), f"sqlite:///{path}"
    else:
        with postgres_database(prefix="simpost_verify") as url:
            name = url.rsplit("/", 1)[1]
            yield (json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres",
                               "schema": name}), url.replace("postgresql+psycopg2", "postgresql+psycopg"))


@pytest.fixture
def world(airflow_db, tmp_path, catalog_conn, dropbox_emulator, seafile_emulator):
    key = secrets.token_urlsafe(24)
    folder = tmp_path / "cloud"
    with running_server(folder, key) as url:
        from helpers import local_backend_conn

        env = {
            "AIRFLOW_CONN_LC": local_backend_conn(url, key),
            "AIRFLOW_CONN_DBX": json.dumps(dropbox_conn_json()),
            "AIRFLOW_CONN_SEA": json.dumps(seafile_conn_json(seafile_emulator.base_url)),
            "AIRFLOW_VAR_STORAGE_BACKENDS": json.dumps(BACKENDS),
            "AIRFLOW_CONN_SIMPOST_CATALOG": catalog_conn[0],
            "SIMPOST_UPLOAD_RETRY_BUDGET": "1",  # a backend that is down fails each try in a second
            "SIMPOST_RETRY_DELAY": "0",
        }
        with Catalog.open(catalog_conn[1]) as catalog:
            yield env, catalog, LocalCloudClient(url, key), folder, dropbox_emulator, seafile_emulator


def checked_dags_test(dag_id: str, conf: dict, env: dict, ok: bool = True) -> str:
    """dags_test, and no secret of the emulators' in what Airflow printed."""
    output = dags_test(dag_id, conf, env, ok)
    for secret in (DROPBOX_APP_SECRET, DROPBOX_REFRESH_TOKEN, SEAFILE_TOKEN):
        assert secret not in output
    return output


def postprocess(env: dict, simulation_id: str, **conf) -> str:
    return checked_dags_test("simulation_postprocess", {"simulation_id": simulation_id, "results_dir": "aloha-PureAloha1",
                                                "storage_backend": BACKENDS, "graphs": "none", **conf}, env)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("catalog_conn", ["postgresql"], indirect=True)
def test_a_backend_down_fails_its_copy_only_and_verify_completes_it(world):
    env, catalog, cloud, _, dropbox, seafile = world
    dropbox.down = True
    output = postprocess(env, "three-copies", min_copies=2)
    [archive] = catalog.archives(simulation_id="three-copies")
    copies = {c.backend: c for c in archive.copies}
    assert {b: c.state for b, c in copies.items()} == {"lc": "present", "dbx": "failed", "sea": "present"}
    assert archive.copies_wanted == 3 and copies["dbx"].attempts == 5  # retries=4: five tries, each recorded
    assert "Dropbox" in copies["dbx"].last_error and "\n" not in copies["dbx"].last_error
    assert "copies: lc: [present](" in output and "dbx: failed" in output
    assert cloud.get(copies["lc"].remote_id)["sha256"] == archive.sha256
    assert sha256_of(seafile.files[copies["sea"].remote_id]["data"]) == archive.sha256

    dropbox.down = False
    output = checked_dags_test("storage_verify", {}, env)
    assert f"{archive.sha256[:12]} on dbx copied again from" in output
    again = {c.backend: c for c in catalog.archive(archive.sha256).copies}
    assert {b: c.state for b, c in again.items()} == dict.fromkeys(BACKENDS, "present")
    assert again["dbx"].last_error is None and again["dbx"].link.startswith("https://www.dropbox.com/")
    assert sha256_of(dropbox.files[again["dbx"].remote_id.lower()].data) == archive.sha256
    assert all(c.last_verified for c in again.values())


@pytest.mark.parametrize("catalog_conn", ["sqlite"], indirect=True)
def test_lost_copies_are_found_and_copied_again(world, tmp_path):
    env, catalog, cloud, folder, dropbox, seafile = world
    postprocess(env, "lose-two")
    [archive] = catalog.archives(simulation_id="lose-two")
    before = {c.backend: c for c in archive.copies}
    assert {b: c.state for b, c in before.items()} == dict.fromkeys(BACKENDS, "present")

    gone = requests.delete(f"{seafile.base_url}/api2/repos/{SEAFILE_REPO}/file/", timeout=10,
                           params={"p": before["sea"].remote_id}, headers={"Authorization": f"Token {SEAFILE_TOKEN}"})
    assert gone.status_code == 200 and before["sea"].remote_id not in seafile.files
    stored = folder / "files" / before["lc"].remote_id
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, same size
    stored.write_bytes(bytes(data))

    dry = checked_dags_test("storage_verify", {"dry_run": True}, env)
    assert f"{archive.sha256[:12]} on sea is lost: gone from the service" in dry
    assert {c.backend: c.state for c in catalog.archive(archive.sha256).copies} == dict.fromkeys(BACKENDS, "present")

    output = checked_dags_test("storage_verify", {}, env)
    assert f"{archive.sha256[:12]} on lc is lost: changed" in output
    assert f"{archive.sha256[:12]} on sea is lost: gone from the service" in output
    after = {c.backend: c for c in catalog.archive(archive.sha256).copies}
    assert {b: c.state for b, c in after.items()} == dict.fromkeys(BACKENDS, "present")
    assert after["lc"].remote_id != before["lc"].remote_id  # the damaged file was set aside
    cloud.download(after["lc"].remote_id, tmp_path / "lc.zip")
    assert sha256_of((tmp_path / "lc.zip").read_bytes()) == archive.sha256
    assert sha256_of(seafile.files[after["sea"].remote_id]["data"]) == archive.sha256
    assert after["dbx"].updated_at > before["dbx"].updated_at and after["dbx"].remote_id == before["dbx"].remote_id


@pytest.fixture
def cloud_backend(tmp_path):
    """A local_cloud of its own, opened as the `lc` backend, and its disk folder."""
    from emulators.fixtures import settings_of

    from helpers import local_backend_conn
    from storage_backends import open_backend

    key = secrets.token_urlsafe(24)
    with running_server(tmp_path / "cloud", key) as url:
        yield open_backend(settings_of("lc", json.loads(local_backend_conn(url, key, keep_days=0)))), tmp_path / "cloud"


def _upload(backend, tmp_path, n: int, simulation_id: str):
    from storage_backends import remote_name

    path = tmp_path / f"{simulation_id}.zip"
    path.write_bytes(secrets.token_bytes(3000 + n))
    sha = sha256_of(path.read_bytes())
    return backend.upload(str(path), remote_name("t", simulation_id, sha), 0), sha


def test_uploads_from_before_the_catalog_are_adopted(cloud_backend, tmp_path):
    from simpost.verify import verify_pass

    backend, _ = cloud_backend
    known, known_sha = _upload(backend, tmp_path, 1, "known")
    unknown, unknown_sha = _upload(backend, tmp_path, 2, "unknown")
    with Catalog.open(f"sqlite:///{tmp_path / 'c.db'}") as catalog:
        catalog.record_archive(known_sha, known.size, "known")  # the run is known, not its copy
        dry = verify_pass(catalog, {"lc": backend}, tmp_path / "work", batch=10, dry_run=True, log=lambda m: None)
        assert sorted(dry.adopted) == sorted([f"{known_sha[:12]} on lc", f"{unknown_sha[:12]} on lc"])
        assert catalog.count_archives() == 1 and catalog.archive(known_sha).copies == []
        report = verify_pass(catalog, {"lc": backend}, tmp_path / "work", batch=10, log=lambda m: None)
        assert len(report.adopted) == 2 and report.verified == 2 and report.lost == []
        learnt = catalog.archive(unknown_sha)
        assert (learnt.simulation_id, learnt.size, [c.remote_id for c in learnt.copies]) == \
            ("unknown", unknown.size, [unknown.remote_id])
        assert [c.state for c in catalog.archive(known_sha).copies] == ["present"]
        again = verify_pass(catalog, {"lc": backend}, tmp_path / "work", batch=10, log=lambda m: None)
        assert again.adopted == [] and again.verified == 2  # adopted once; verified on every pass


def test_a_pass_is_bounded_and_the_next_one_goes_on(cloud_backend, tmp_path):
    from simpost.verify import verify_pass

    backend, _ = cloud_backend
    with Catalog.open(f"sqlite:///{tmp_path / 'c.db'}") as catalog:
        for i in range(5):
            up, sha = _upload(backend, tmp_path, i, f"sim-{i}")
            catalog.record_archive(sha, up.size, f"sim-{i}")
            catalog.record_copy(sha, "lc", "present", remote_id=up.remote_id, remote_name="x")
        first = verify_pass(catalog, {"lc": backend}, tmp_path / "work", batch=3, log=lambda m: None)
        second = verify_pass(catalog, {"lc": backend}, tmp_path / "work", batch=3, log=lambda m: None)
        assert (first.verified, second.verified) == (3, 3)  # the two never verified, then the oldest one
        assert sum(1 for c in catalog.copies() if c.last_verified) == 5


def test_an_archive_with_no_present_copy_is_reported(cloud_backend, tmp_path):
    from simpost.verify import verify_pass

    backend, folder = cloud_backend
    up, sha = _upload(backend, tmp_path, 0, "only-one")
    with Catalog.open(f"sqlite:///{tmp_path / 'c.db'}") as catalog:
        catalog.record_archive(sha, up.size, "only-one")
        catalog.record_copy(sha, "lc", "present", remote_id=up.remote_id, remote_name="x")
        (folder / "files" / up.remote_id).unlink()
        report = verify_pass(catalog, {"lc": backend}, tmp_path / "work", batch=10, log=lambda m: None)
        assert report.lost == [f"{sha[:12]} on lc"] and report.unrecoverable == [f"{sha[:12]} (only-one)"]
        assert catalog.copy(sha, "lc").state == "lost" and catalog.copy(sha, "lc").last_error == "gone from the service"


def test_retention_and_expiry_delete_copies_verify_does_not_bring_back(cloud_backend, tmp_path):
    """A copy retention deleted is recorded `deleted`; one the service removed after its expiry is
    found `deleted` by verify, not lost: neither is copied again nor reported."""
    from datetime import datetime, timedelta, timezone

    from simpost.retention import clean, record_deleted
    from simpost.verify import verify_pass

    backend, folder = cloud_backend
    with Catalog.open(f"sqlite:///{tmp_path / 'c.db'}") as catalog:
        def catalogued(i):
            up, sha = _upload(backend, tmp_path, i, f"old-{i}")
            catalog.record_archive(sha, up.size, f"old-{i}")
            catalog.record_copy(sha, "lc", "present", remote_id=up.remote_id, remote_name="x",
                                expires=datetime.now(timezone.utc) - timedelta(seconds=1))
            return sha, up.remote_id

        first, _ = catalogued(0)
        summary = clean(backend, 1, datetime.now(timezone.utc) + timedelta(days=2), dry_run=False,
                        log=lambda m: None, on_deleted=record_deleted(catalog, "lc"))
        assert len(summary["deleted"]) == 1 and catalog.copy(first, "lc").state == "deleted"
        second, remote_id = catalogued(1)
        (folder / "files" / remote_id).unlink()  # what local_cloud's expiry purge does
        report = verify_pass(catalog, {"lc": backend}, tmp_path / "work", batch=10, log=lambda m: None)
        assert report.expired == [f"{second[:12]} on lc"] and report.lost == [] and report.unrecoverable == []
        assert [catalog.copy(s, "lc").state for s in (first, second)] == ["deleted", "deleted"]


def test_dropbox_and_seafile_copies_are_verified_from_one_listing(dropbox_emulator, seafile_emulator, tmp_path):
    """Services whose listing carries the checksum are asked one listing per folder, not one stat
    per copy; a copy missing from it is asked once more by stat (gone), a changed one is caught
    by the listing's checksum."""
    import dataclasses

    from emulators.dropbox_api import content_hash
    from emulators.fixtures import settings_of

    from simpost.copies import checksum_of
    from simpost.verify import verify_pass
    from storage_backends import open_backend

    backends = {"dbx": open_backend(settings_of("dbx", dropbox_conn_json(keep_days=0))),
                "sea": open_backend(settings_of("sea", seafile_conn_json(seafile_emulator.base_url, keep_days=0)))}
    dropbox_emulator.page_size = 1000  # one page: what Dropbox gives at limit=2000 for this folder
    with Catalog.open(f"sqlite:///{tmp_path / 'c.db'}") as catalog:
        copies = {}
        for i in range(6):
            for backend_id, backend in backends.items():
                up, sha = _upload(backend, tmp_path, i, f"list-{i}")
                catalog.record_archive(sha, up.size, f"list-{i}")
                catalog.record_copy(sha, backend_id, "present", remote_id=up.remote_id, remote_name="x",
                                    checksum=checksum_of(backend.stat(up.remote_id)))
                copies[backend_id, i] = sha, up.remote_id
        dropbox_emulator.calls.clear()
        seafile_emulator.calls.clear()
        report = verify_pass(catalog, backends, tmp_path / "work", batch=100, log=lambda m: None)
        assert report.verified == 12 and report.lost == [] and report.errors == []
        assert len(dropbox_emulator.route_calls("files/list_folder")) == 1
        assert [c for c in dropbox_emulator.calls if c[0] != "files/list_folder"] == []
        assert [name for name, _, _ in seafile_emulator.calls] == ["dir"]

        sha, gone = copies["sea", 0]
        del seafile_emulator.files[gone]
        changed_sha, changed = copies["dbx", 1]
        stored = dropbox_emulator.files[changed.lower()]
        flipped = bytes([stored.data[0] ^ 1]) + stored.data[1:]  # same size, other bytes
        dropbox_emulator.files[changed.lower()] = dataclasses.replace(stored, data=flipped)
        assert content_hash(flipped) != content_hash(stored.data)
        dropbox_emulator.calls.clear()
        seafile_emulator.calls.clear()
        again = verify_pass(catalog, backends, tmp_path / "work", batch=100, dry_run=True, log=lambda m: None)
        assert sorted(again.lost) == sorted([f"{sha[:12]} on sea", f"{changed_sha[:12]} on dbx"])
        assert again.verified == 10
        assert [name for name, _, _ in seafile_emulator.calls] == ["dir", "file-detail"]  # the gone one, asked
        assert [c[0] for c in dropbox_emulator.calls] == ["files/list_folder"]


def test_archives_with_no_copy_left_are_mailed_to_the_admin_once_per_run(airflow_db, tmp_path, mailbox):
    """storage_verify fails naming them and sends the admin (Variable simpost_admin_email) one mail
    listing them, through the real SMTP server; a dry run mails nobody."""
    from emulators.fixtures import settings_of

    from helpers import local_backend_conn
    from storage_backends import open_backend

    key, folder, catalog_path = secrets.token_urlsafe(24), tmp_path / "cloud", tmp_path / "c.db"
    with running_server(folder, key) as url, Catalog.open(f"sqlite:///{catalog_path}") as catalog:
        conn = local_backend_conn(url, key, keep_days=0)
        backend = open_backend(settings_of("lc", json.loads(conn)))
        gone = []
        for i in range(2):
            up, sha = _upload(backend, tmp_path, i, f"orphan-{i}")
            catalog.record_archive(sha, up.size, f"orphan-{i}")
            catalog.record_copy(sha, "lc", "present", remote_id=up.remote_id, remote_name="x")
            (folder / "files" / up.remote_id).unlink()
            gone.append(f"{sha[:12]} (orphan-{i})")
        env = {"AIRFLOW_CONN_LC": conn, "AIRFLOW_VAR_STORAGE_BACKENDS": json.dumps(["lc"]),
               "AIRFLOW_CONN_SIMPOST_CATALOG": json.dumps({"conn_type": "sqlite", "host": str(catalog_path)}),
               "AIRFLOW_VAR_SIMPOST_ADMIN_EMAIL": "admin@lab.test", "SIMPOST_RETRY_DELAY": "0"}
        dry = checked_dags_test("storage_verify", {"dry_run": True}, env)
        assert "2 would be lost" in dry and mailbox.messages == []
        output = checked_dags_test("storage_verify", {}, env, ok=False)
    assert all(g in output for g in gone) and "mailed the admin (admin@lab.test) about 2 archive(s)" in output
    [message] = mailbox.to("admin@lab.test")
    assert message["Subject"] == "[simpost] storage_verify: 2 archives with no copy left"
    parts = [p.get_payload(decode=True).decode() for p in message.walk() if not p.is_multipart()]
    for part in parts:
        assert all(g in part for g in gone), part
    assert "2 archives without a present copy" in " ".join(parts[0].split())  # the run's summary (wrapped at 72)
    assert len(mailbox.messages) == 1


def _signed(link: str) -> tuple[datetime, int]:
    """When a presigned link was signed and for how many seconds."""
    query = parse_qs(urlsplit(link).query)
    return (datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc),
            int(query["X-Amz-Expires"][0]))


def test_signed_links_that_end_before_their_copy_are_signed_anew(s3_bucket, tmp_path):
    """Copies on S3 kept 30 days, their links signed for 7: verify signs anew the link that has
    ended and the one ending within a day (for what the copy has left, at most 7 days), and
    leaves the one with days left; a dry run only says so."""
    from emulators.fixtures import settings_of
    from simpost.verify import verify_pass
    from storage_backends import open_backend

    backend = open_backend(settings_of("s3_lab", s3_bucket.conn_json(keep_days=30)))
    now = datetime.now(timezone.utc)
    ages = {"ended": timedelta(days=8), "ending": timedelta(days=6, hours=12), "fresh": timedelta(days=1)}
    with Catalog.open(f"sqlite:///{tmp_path / 'c.db'}") as catalog:
        sha = {}
        for i, (name, age) in enumerate(ages.items()):
            up, sha[name] = _upload(backend, tmp_path, i, name)
            assert up.link_expires_at - up.uploaded_at == timedelta(days=7)  # a copy kept 30 days, its link 7
            uploaded = now - age  # as the copy would stand `age` after its upload
            catalog.record_archive(sha[name], up.size, name)
            catalog.record_copy(sha[name], "s3_lab", "present", remote_id=up.remote_id, remote_name="x", link=up.link,
                                uploaded=uploaded, expires=uploaded + timedelta(days=30),
                                link_expires=uploaded + timedelta(days=7))
        before = {name: catalog.copy(sha[name], "s3_lab") for name in ages}
        dry = verify_pass(catalog, {"s3_lab": backend}, tmp_path / "work", batch=10, dry_run=True, log=lambda m: None)
        assert dry.relinked == [f"{sha['ended'][:12]} on s3_lab", f"{sha['ending'][:12]} on s3_lab"]
        assert all(catalog.copy(sha[n], "s3_lab").link_expires == before[n].link_expires for n in ages)
        report = verify_pass(catalog, {"s3_lab": backend}, tmp_path / "work", batch=10, log=lambda m: None)
        assert report.relinked == dry.relinked and report.verified == 3 and report.lost == []
        assert "2 links signed anew" in report.summary()
        for name in ("ended", "ending"):
            copy = catalog.copy(sha[name], "s3_lab")
            signed, seconds = _signed(copy.link)
            assert copy.state == "present" and copy.link_expires - before[name].link_expires > timedelta(days=6)
            assert abs(signed - now) < timedelta(minutes=2) and seconds == 7 * 86400  # 22 and 23.5 days left
            assert abs(copy.link_expires - (signed + timedelta(seconds=seconds))) < timedelta(seconds=1)
            assert copy.expires == before[name].expires  # the copy is kept as long as before
            assert sha256_of(requests.get(copy.link, timeout=30).content) == sha[name]
        fresh = catalog.copy(sha["fresh"], "s3_lab")
        assert (fresh.link, fresh.link_expires) == (before["fresh"].link, before["fresh"].link_expires)
        again = verify_pass(catalog, {"s3_lab": backend}, tmp_path / "work", batch=10, log=lambda m: None)
        assert again.relinked == []  # signed once: the fresh links last for days


def test_a_fresh_link_lasts_no_longer_than_its_copy(s3_bucket, tmp_path):
    """A copy with two days left gets a link for those two days; one past its keep days (retention
    has not run yet) a link for an hour."""
    from emulators.fixtures import settings_of
    from simpost.verify import verify_pass
    from storage_backends import open_backend

    backend = open_backend(settings_of("s3_lab", s3_bucket.conn_json(keep_days=30)))
    now = datetime.now(timezone.utc)
    with Catalog.open(f"sqlite:///{tmp_path / 'c.db'}") as catalog:
        sha = {}
        for i, (name, left) in enumerate({"two-days": timedelta(days=2), "past": -timedelta(hours=1)}.items()):
            up, sha[name] = _upload(backend, tmp_path, i, name)
            catalog.record_archive(sha[name], up.size, name)
            catalog.record_copy(sha[name], "s3_lab", "present", remote_id=up.remote_id, remote_name="x", link=up.link,
                                expires=now + left, link_expires=now - timedelta(hours=2))
        report = verify_pass(catalog, {"s3_lab": backend}, tmp_path / "work", batch=10, log=lambda m: None)
        assert len(report.relinked) == 2
        two_days, past = (catalog.copy(sha[n], "s3_lab") for n in ("two-days", "past"))
        assert abs(two_days.link_expires - two_days.expires) < timedelta(minutes=2)
        assert _signed(past.link)[1] == 3600 and past.link_expires > past.expires
