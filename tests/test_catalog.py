"""The catalog package on SQLite and on the machine's real PostgreSQL (a database of its own)."""
from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from sqlalchemy import inspect, text

from cluster import postgres_database
from simpost.catalog import Catalog, CatalogError, ImportRefused
from simpost.catalog.schema import _config, head_revision

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
SIGNED = "http://127.0.0.1:9/bucket/simpost/b.zip?X-Amz-Expires=604800&X-Amz-Signature=ab12"


def sha(n) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sub' / 'catalog.db'}"
    else:
        with postgres_database(prefix="simpost_catalog") as url:
            yield url.replace("postgresql+psycopg2", "postgresql+psycopg")


@pytest.fixture
def catalog(catalog_url):
    with Catalog.open(catalog_url) as c:
        yield c


def test_open_migrates_once_and_reopens(catalog_url):
    with Catalog.open(catalog_url) as c:
        tables = set(inspect(c.engine).get_table_names())
        assert {"archive", "copy", "alembic_version"} <= tables
        with c.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
    with Catalog.open(catalog_url) as c:
        assert c.archives() == []


def test_concurrent_opens_of_a_new_database_migrate_once(catalog_url):
    errors, opened = [], []

    def open_one():
        try:
            opened.append(Catalog.open(catalog_url))
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == [] and len(opened) == 4
    opened[0].record_archive(sha(1), 10, "sim1")
    assert [a.sha256 for a in opened[3].archives()] == [sha(1)]
    [c.close() for c in opened]


def test_unsupported_database_and_bad_password_are_named(tmp_path):
    with pytest.raises(CatalogError, match="'mysql' is not supported"):
        Catalog.open("mysql://u:p@127.0.0.1/x")
    with pytest.raises(CatalogError) as err:
        Catalog.open("postgresql+psycopg://nobody:s3cret-pw@127.0.0.1:5432/no_such_db_simpost")
    assert "s3cret-pw" not in str(err.value) and "cannot open the catalog" in str(err.value)


def test_an_upload_recorded_then_its_copies_listed(catalog):
    a = catalog.record_archive(sha(1), 1234, "sim-1", "Aloha run", "run_1", copies_wanted=2, created=T0)
    assert (a.sha256, a.size, a.simulation_id, a.title, a.run_id, a.created, a.copies_wanted, a.copies) == \
        (sha(1), 1234, "sim-1", "Aloha run", "run_1", T0, 2, [])
    p = catalog.record_copy(sha(1), "local_cloud", "pending")
    assert (p.state, p.attempts, p.remote_id) == ("pending", 1, None)
    failed = catalog.record_copy(sha(1), "local_cloud", "failed", last_error="HTTP 503\nService down\n  retry")
    assert failed.last_error == "HTTP 503 Service down retry"
    catalog.record_copy(sha(1), "local_cloud", "pending")
    present = catalog.record_copy(sha(1), "local_cloud", "present", remote_id="abc", remote_name="x.zip",
                                  link="http://l/f/abc", uploaded=T0, expires=T0 + timedelta(days=3))
    assert (present.state, present.attempts, present.last_error, present.remote_id, present.expires) == \
        ("present", 2, None, "abc", T0 + timedelta(days=3))
    assert present.updated_at.tzinfo is not None
    catalog.record_copy(sha(1), "dropbox", "failed", last_error="x" * 2000)
    got = catalog.archive(sha(1))
    assert [(c.backend, c.state) for c in got.copies] == [("dropbox", "failed"), ("local_cloud", "present")]
    assert len(got.copies[0].last_error) == 500 and [c.backend for c in got.present] == ["local_cloud"]
    assert catalog.archive(sha(2)) is None


def test_wrong_inputs_are_refused(catalog):
    with pytest.raises(CatalogError, match="not in the catalog"):
        catalog.record_copy(sha(9), "b", "present")
    catalog.record_archive(sha(9), 1, "s")
    with pytest.raises(CatalogError, match="not one of"):
        catalog.record_copy(sha(9), "b", "gone")
    with pytest.raises(CatalogError, match="unknown copy fields"):
        catalog.record_copy(sha(9), "b", "present", token="x")
    with pytest.raises(CatalogError, match="64 hex"):
        catalog.record_archive("abc", 1, "s")
    with pytest.raises(CatalogError, match="timezone-aware: uploaded"):
        catalog.record_copy(sha(9), "b", "present", uploaded=datetime(2026, 1, 1))


def test_recording_an_archive_again_keeps_it_and_raises_copies_wanted(catalog):
    catalog.record_archive(sha(1), 5, "sim", "first", copies_wanted=2, created=T0)
    again = catalog.record_archive(sha(1), 5, "sim", "second", copies_wanted=1)
    assert (again.title, again.copies_wanted, again.created) == ("first", 2, T0)
    assert catalog.record_archive(sha(1), 5, "sim", copies_wanted=3).copies_wanted == 3


def test_archives_newest_first_filtered_searched_and_paged(catalog):
    for n in range(5):
        catalog.record_archive(sha(n), n, f"sim-{n % 2}", f"Title {n}%", created=T0 + timedelta(hours=n))
    assert [a.size for a in catalog.archives()] == [4, 3, 2, 1, 0]
    assert [a.size for a in catalog.archives(simulation_id="sim-1")] == [3, 1]
    assert [a.size for a in catalog.archives(search="TITLE 2")] == [2]
    assert [a.size for a in catalog.archives(search="%")] == [4, 3, 2, 1, 0]
    assert [a.size for a in catalog.archives(search="_")] == []
    assert [a.size for a in catalog.archives(limit=2, offset=1)] == [3, 2]
    assert catalog.count_archives() == 5 and catalog.count_archives("sim-0") == 3


@pytest.mark.parametrize("workers", [8])
def test_workers_writing_copies_of_one_archive_at_once_leave_one_row_each(catalog_url, catalog, workers):
    """Mapped uploads of one run: each worker records the archive and its backend's copy, some twice
    (a retried try), all at the same moment."""
    barrier, errors = threading.Barrier(workers), []

    def worker(i):
        with Catalog.open(catalog_url) as mine:
            try:
                barrier.wait()
                mine.record_archive(sha(7), 99, "sim", copies_wanted=3)
                mine.record_copy(sha(7), f"b{i % 4}", "pending")
                mine.record_copy(sha(7), f"b{i % 4}", "present", remote_id=f"r{i % 4}")
            except Exception as err:  # noqa: BLE001 - asserted below
                errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    archive = catalog.archive(sha(7))
    assert [(c.backend, c.state, c.attempts) for c in archive.copies] == [(f"b{i}", "present", 2) for i in range(4)]
    assert catalog.count_archives() == 1


def test_transition_only_from_the_given_states(catalog):
    catalog.record_archive(sha(1), 1, "s")
    catalog.record_copy(sha(1), "b", "present", remote_id="r")
    assert catalog.transition(sha(1), "b", ("pending",), "failed") is None
    lost = catalog.transition(sha(1), "b", ("present",), "lost", last_error="gone")
    assert (lost.state, lost.last_error, lost.remote_id) == ("lost", "gone", "r")
    assert catalog.verified(sha(1), "b") is None
    assert catalog.transition(sha(1), "nowhere", ("present",), "lost") is None


def test_copies_to_verify_oldest_first_and_resumable(catalog):
    for n in range(4):
        catalog.record_archive(sha(n), 1, "s")
        catalog.record_copy(sha(n), "b", "present", remote_id=str(n))
    catalog.record_copy(sha(3), "b", "failed")
    catalog.verified(sha(0), "b", T0)
    catalog.verified(sha(1), "b", T0 - timedelta(days=1))
    start = T0 + timedelta(hours=1)
    first = catalog.copies_to_verify(start, limit=2)
    assert [c.remote_id for c in first] == ["2", "1"]  # never verified, then the oldest
    for c in first:
        catalog.verified(c.archive_sha256, c.backend, start)
    assert [c.remote_id for c in catalog.copies_to_verify(start, limit=2)] == ["0"]
    assert catalog.copies_to_verify(start, backend="other") == []
    assert len(catalog.copies(backend="b", states=["present"])) == 3


def test_links_ending_are_present_copies_with_a_link_end_before_a_time_soonest_first(catalog):
    ends = {"gone": T0 - timedelta(days=1), "soon": T0 + timedelta(hours=6), "later": T0 + timedelta(days=5),
            "forever": None}
    for n, (remote_id, end) in enumerate(ends.items()):
        catalog.record_archive(sha(n), 1, "s")
        catalog.record_copy(sha(n), "s3", "present", remote_id=remote_id, link_expires=end)
    catalog.record_archive(sha(9), 1, "s")
    catalog.record_copy(sha(9), "s3", "lost", remote_id="lost", link_expires=T0 - timedelta(days=2))
    catalog.record_copy(sha(0), "other", "present", remote_id="elsewhere", link_expires=T0 - timedelta(days=3))
    soon = T0 + timedelta(days=1)
    assert [c.remote_id for c in catalog.links_ending(soon)] == ["elsewhere", "gone", "soon"]
    assert [c.remote_id for c in catalog.links_ending(soon, backend=["s3"])] == ["gone", "soon"]
    assert [c.remote_id for c in catalog.links_ending(soon, backend="s3", limit=1)] == ["gone"]


def test_archives_to_repair(catalog):
    catalog.record_archive(sha(1), 1, "s", copies_wanted=2)  # short: one present of two
    catalog.record_copy(sha(1), "a", "present")
    catalog.record_archive(sha(2), 1, "s", copies_wanted=1)  # enough, but a lost copy
    catalog.record_copy(sha(2), "a", "present")
    catalog.record_copy(sha(2), "b", "lost")
    catalog.record_archive(sha(3), 1, "s", copies_wanted=1)  # fine
    catalog.record_copy(sha(3), "a", "present")
    catalog.record_archive(sha(4), 1, "s", copies_wanted=1)  # no copy at all
    catalog.record_archive(sha(5), 1, "s", copies_wanted=2)  # retention deleted one: not verify's to restore
    catalog.record_copy(sha(5), "a", "present")
    catalog.record_copy(sha(5), "b", "deleted")
    assert sorted(a.sha256 for a in catalog.archives_to_repair()) == sorted([sha(1), sha(2), sha(4)])
    assert len(catalog.archives_to_repair(limit=1)) == 1


def _fill(catalog):
    catalog.record_archive(sha(1), 10, "sim-a", "A", "run_a", copies_wanted=2, created=T0)
    catalog.record_copy(sha(1), "local", "present", remote_id="r1", remote_name="a.zip", link="http://x/f/r1",
                        uploaded=T0, expires=T0 + timedelta(days=7), last_verified=T0)
    catalog.record_copy(sha(1), "dropbox", "failed", last_error="HTTP 503")
    catalog.record_archive(sha(2), 20, "sim-b", None, None, created=T0 + timedelta(days=1))
    catalog.record_copy(sha(2), "s3", "present", remote_id="simpost/b.zip", link=SIGNED, uploaded=T0,
                        expires=T0 + timedelta(days=30), link_expires=T0 + timedelta(days=7))
    catalog.record_copy(sha(2), "local", "present", remote_id="r2")


def _dump(catalog):
    return [(a.sha256, a.size, a.simulation_id, a.title, a.run_id, a.created, a.copies_wanted,
             [(c.backend, c.state, c.remote_id, c.remote_name, c.link, c.uploaded, c.expires, c.link_expires,
               c.last_verified, c.attempts, c.last_error, c.updated_at) for c in a.copies]) for a in catalog.archives()]


def test_export_import_round_trip_is_idempotent(catalog, tmp_path):
    _fill(catalog)
    lines = list(catalog.export_lines())
    header = json.loads(lines[0])
    assert (header["format"], header["version"]) == ("simpost-catalog", 1)
    assert [json.loads(l)["type"] for l in lines[1:]] == ["archive", "copy", "copy", "archive", "copy", "copy"]
    with Catalog.open(f"sqlite:///{tmp_path / 'other.db'}") as other:
        first = other.import_lines(lines)
        assert (first.archives_added, first.copies_added) == (2, 4)
        assert _dump(other) == _dump(catalog)
        assert other.copy(sha(2), "s3").link_expires == T0 + timedelta(days=7)
        second = other.import_lines(lines)
        assert not second.changed and second.copies_unchanged == 4
        assert _dump(other) == _dump(catalog)


def test_an_export_written_before_link_expires_imports_with_none(catalog, tmp_path):
    _fill(catalog)
    older = [json.dumps({k: v for k, v in json.loads(line).items() if k != "link_expires"})
             for line in catalog.export_lines()]
    with Catalog.open(f"sqlite:///{tmp_path / 'other.db'}") as other:
        assert other.import_lines(older).copies_added == 4
        s3 = other.copy(sha(2), "s3")
        assert (s3.expires, s3.link_expires, s3.link_until) == (T0 + timedelta(days=30), None, T0 + timedelta(days=30))


def test_migration_0003_keeps_a_signed_links_end_apart_from_the_keep_until(catalog_url):
    """Before 0003 an S3 copy's `expires` held its presigned link's end: the upgrade copies it to
    `link_expires` for signed links only (keep days are not known, so `expires` stays)."""
    with Catalog.open(catalog_url) as catalog:
        _fill(catalog)
        with catalog.engine.begin() as connection:
            command.downgrade(_config(connection), "0002")
    with Catalog.open(catalog_url) as catalog:
        s3, local = catalog.copy(sha(2), "s3"), catalog.copy(sha(1), "local")
        assert (s3.expires, s3.link_expires) == (T0 + timedelta(days=30), T0 + timedelta(days=30))
        assert (local.expires, local.link_expires, local.link_until) == (T0 + timedelta(days=7), None,
                                                                         T0 + timedelta(days=7))


def test_import_merges_the_newer_state(catalog, tmp_path):
    _fill(catalog)
    with Catalog.open(f"sqlite:///{tmp_path / 'other.db'}") as other:
        other.import_lines(catalog.export_lines())
        other.record_copy(sha(1), "dropbox", "present", remote_id="d1")  # newer there
        catalog.record_copy(sha(2), "local", "lost", last_error="gone")  # newer here
        catalog.record_copy(sha(2), "seafile", "present", remote_id="s2")  # new here
        result = other.import_lines(catalog.export_lines())
        assert (result.copies_added, result.copies_updated) == (1, 1)
        merged = {(a.sha256, c.backend): c.state for a in other.archives() for c in a.copies}
        assert merged == {(sha(1), "dropbox"): "present", (sha(1), "local"): "present",
                          (sha(2), "local"): "lost", (sha(2), "s3"): "present", (sha(2), "seafile"): "present"}
        assert not other.import_lines(catalog.export_lines()).changed


def test_export_since(catalog):
    _fill(catalog)
    later = datetime.now(timezone.utc)
    catalog.record_copy(sha(1), "dropbox", "present", remote_id="d1")
    lines = [json.loads(l) for l in catalog.export_lines(since=later)]
    assert lines[0]["since"] == later.isoformat()
    assert [(l["type"], l.get("backend")) for l in lines[1:]] == [("archive", None), ("copy", "dropbox")]


@pytest.mark.parametrize("bad, number, message", [
    ("{not json", 3, "not JSON"),
    ('{"type": "copy", "archive": "%s", "backend": "x"}' % sha(1), 3, "lacks state"),
    ('{"type": "archive", "sha256": "XYZ", "size": 1, "simulation_id": "s", "title": null, "run_id": null,'
     ' "created": "2026-01-01T00:00:00+00:00", "copies_wanted": 1}', 3, "64 lower-case hex"),
    ('{"type": "note"}', 3, "unknown type"),
])
def test_a_bad_line_is_refused_by_number_and_nothing_imported(catalog, tmp_path, bad, number, message):
    _fill(catalog)
    lines = list(catalog.export_lines())
    lines.insert(number - 1, bad)
    with Catalog.open(f"sqlite:///{tmp_path / 'other.db'}") as other:
        with pytest.raises(ImportRefused, match=f"line {number}: .*{message}") as err:
            other.import_lines(lines)
        assert err.value.line == number and other.archives() == []


def test_a_copy_of_an_unknown_archive_rolls_back_everything(catalog, tmp_path):
    _fill(catalog)
    lines = list(catalog.export_lines())
    orphan = json.loads(lines[2])
    orphan["archive"] = sha(99)
    lines.append(json.dumps(orphan))
    with Catalog.open(f"sqlite:///{tmp_path / 'other.db'}") as other:
        with pytest.raises(ImportRefused, match=f"line {len(lines)}: copy of archive {sha(99)[:12]}"):
            other.import_lines(lines)
        assert other.archives() == []


@pytest.mark.parametrize("header, message", [
    ('{"format": "other", "version": 1}', "the first line must be the header"),
    ('{"format": "simpost-catalog", "version": 2}', "format version 2 is not supported"),
])
def test_the_header_names_format_and_version(catalog, header, message):
    with pytest.raises(ImportRefused, match=f"line 1: {message}"):
        catalog.import_lines([header])
    with pytest.raises(ImportRefused, match="line 1: empty"):
        catalog.import_lines([])


def test_the_simpost_catalog_connection_names_the_database(tmp_path, monkeypatch):
    from airflow.models.connection import Connection
    from simpost_airflow.catalog import CatalogConnectionError, default_url, url_from_connection

    with postgres_database(prefix="simpost_catalog") as url:
        name = url.rsplit("/", 1)[1]
        conn = Connection(conn_id="simpost_catalog", uri=f"postgresql://postgres@127.0.0.1:5432/{name}?connect_timeout=5")
        assert url_from_connection(conn) == f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}?connect_timeout=5"
        with Catalog.open(url_from_connection(conn)) as c:
            c.record_archive(sha(1), 1, "sim")
            assert c.count_archives() == 1
    sqlite = Connection(conn_id="simpost_catalog", conn_type="sqlite", host=str(tmp_path / "c.db"))
    assert url_from_connection(sqlite) == f"sqlite:///{tmp_path / 'c.db'}"
    with pytest.raises(CatalogConnectionError, match="conn_type 'http' is not a catalog database"):
        url_from_connection(Connection(conn_id="simpost_catalog", conn_type="http", host="x"))
    with pytest.raises(CatalogConnectionError, match="needs host and schema"):
        url_from_connection(Connection(conn_id="simpost_catalog", conn_type="postgres", host="db"))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert default_url() == f"sqlite:///{tmp_path / 'simpost-catalog.db'}"


def test_many_copies_verified_in_one_transaction(catalog):
    for n in range(3):
        catalog.record_archive(sha(n), 1, "s")
        catalog.record_copy(sha(n), "b", "present", checksum="k:old" if n == 0 else None)
    catalog.record_copy(sha(2), "b", "lost")
    catalog.verified_many([(sha(0), "b", "k:new"), (sha(1), "b", "k:1"), (sha(2), "b", "k:2")], T0)
    got = {c.archive_sha256: c for c in catalog.copies()}
    assert (got[sha(0)].last_verified, got[sha(0)].checksum) == (T0, "k:old")  # the first checksum stays
    assert (got[sha(1)].last_verified, got[sha(1)].checksum) == (T0, "k:1")
    assert (got[sha(2)].state, got[sha(2)].last_verified) == ("lost", None)  # only present copies
