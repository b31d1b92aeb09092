"""The S3 cold tier (issue 22) and restore robustness (issue 19), against moto's S3 server on
loopback and a real local_cloud: retention archives into GLACIER, a restore goes through
RestoreObject and `x-amz-restore` before the copy, failures release the claim, and a claim left
by a killed worker is taken over. The restore logic is driven as the plain module it is; one test
runs the whole path through Airflow.

What moto 5.2.5 does (and these tests are written to): a GLACIER object refuses GET
(InvalidObjectState) until restored; RestoreObject answers 202, then 200 for every later request
(it never answers RestoreAlreadyInProgress); `x-amz-restore` says ongoing-request="true" only
under moto's manual state progression (MotoS3.slow_restores), counted in object lookups.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.exceptions import ClientError
from emulators.fixtures import settings_of, write_file
from emulators.s3 import MotoS3, s3_bucket, s3_server  # noqa: F401  (fixtures)
from test_restore import listeners  # noqa: F401  (fixture)
from local_cloud.testing import LocalCloudServer

from simpost.archiving import ArchiveTier
from simpost.catalog import Catalog
from simpost.copies import upload_copy
from simpost.mailbody import text_part
from simpost.notify import content
from simpost.restore import RestoreFailed, begin, finish, ready, restore, restoring_note
from simpost.retention import Catalogued, clean, record_deleted
from storage_backends import RetryPolicy, open_backend, remote_name
from storage_backends.s3_backend import MAX_LINK_SECONDS

SIM = "cold-1"
HOT_KEEP = 1


def local_conn(url: str, key: str, keep_days: int) -> dict:
    return {"conn_type": "storage_backend", "password": key,
            "extra": {"storage_backend_id": "local", "storage_backend_config": json.dumps({"server": url}),
                      "storage_backend_keep_days": keep_days}}


def cold_conn(s3: MotoS3, **config) -> dict:
    return s3.conn_json(keep_days=0, archive_storage_class="GLACIER", restore_tier="Bulk", restore_days=2, **config)


@dataclass
class World:
    s3: MotoS3
    catalog: Catalog
    hot_server: LocalCloudServer
    key: str
    backends: dict
    sha256: str
    original: bytes
    work: Path

    @property
    def archived_key(self) -> str:
        return self.catalog.copy(self.sha256, "cold").remote_id

    def states(self) -> dict:
        return {c.backend: c.state for c in self.catalog.archive(self.sha256).copies}


@pytest.fixture
def world(s3_bucket, tmp_path):
    """An archive uploaded to `hot` (local_cloud, keep days 1), then archived by retention to `cold`
    (s3, archive_storage_class GLACIER, restore tier Bulk for 2 days) and deleted from hot."""
    key = secrets.token_urlsafe(24)
    hot_server = LocalCloudServer(tmp_path / "hot", key)
    hot_server.start()
    try:
        once = RetryPolicy(attempts=1)  # a service that is down fails the restore at once
        backends = {"hot": open_backend(settings_of("hot", local_conn(hot_server.url, key, HOT_KEEP)), once),
                    "cold": open_backend(settings_of("cold", cold_conn(s3_bucket)), once)}
        with Catalog.open(f"sqlite:///{tmp_path / 'catalog.db'}") as catalog:
            path = write_file(tmp_path / "results.zip", 300_000, seed=7)
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            catalog.record_archive(sha, path.stat().st_size, SIM, title="Cold Aloha")
            upload_copy(catalog, backends["hot"], "hot", str(path), sha, remote_name("Cold Aloha", SIM, sha), HOT_KEEP,
                        last_try=True, log=lambda m: None)
            world = World(s3_bucket, catalog, hot_server, key, backends, sha, path.read_bytes(), tmp_path / "work")
            tier = ArchiveTier("cold", backends["cold"], 0)
            summary = clean(backends["hot"], HOT_KEEP, datetime.now(timezone.utc) + timedelta(days=2), False,
                            log=lambda m: None, on_deleted=record_deleted(catalog, "hot"),
                            catalogued=Catalogued(catalog, "hot", tier, world.work))
            assert len(summary["archived"]) == 1 and not summary["not_archived"], summary
            yield world
    finally:
        hot_server.stop()


def test_retention_archives_into_glacier_which_refuses_reads_until_restored(world):
    assert world.states() == {"hot": "deleted", "cold": "archived"}
    client = world.s3.client()
    head = client.head_object(Bucket=world.s3.bucket, Key=world.archived_key)
    assert head["StorageClass"] == "GLACIER" and "Restore" not in head
    with pytest.raises(ClientError, match="InvalidObjectState"):
        client.get_object(Bucket=world.s3.bucket, Key=world.archived_key)
    assert world.catalog.copy(world.sha256, "cold").checksum == f"sha256:{world.sha256}"


def thaw_until_ready(world: World, plan, log) -> int:
    """The sensor's pokes, without its waits in between: how many said "not yet"."""
    not_yet = 0
    while not ready(world.catalog, plan, world.backends, log):
        not_yet += 1
        assert not_yet < 50, "S3 never finished the restore"
    return not_yet


def test_restore_goes_through_restore_object_and_x_amz_restore_before_the_copy(world):
    lines: list[str] = []
    with world.s3.slow_restores(polls=8):
        plan = begin(world.catalog, world.catalog.archive(world.sha256), "hot", world.backends, "req-1", lines.append)
        assert (plan.step, plan.source) == ("thaw", "cold")
        assert plan.note == "S3 GLACIER, Bulk retrieval: ready in about 5-12 hours"
        claimed = world.catalog.copy(world.sha256, "hot")
        assert claimed.state == "restoring" and claimed.claimed_by == "req-1"
        assert timedelta(hours=11.9) < claimed.ready_by - datetime.now(timezone.utc) <= timedelta(hours=12)
        assert restoring_note(claimed) == "restoring, ready in about 12 hours"
        head = world.s3.client().head_object(Bucket=world.s3.bucket, Key=world.archived_key)
        assert head["Restore"] == 'ongoing-request="true"', "RestoreObject was sent; S3 is thawing"
        with pytest.raises(ClientError, match="InvalidObjectState"):  # not readable while it thaws
            world.s3.client().get_object(Bucket=world.s3.bucket, Key=world.archived_key)

        second = begin(world.catalog, world.catalog.archive(world.sha256), "hot", world.backends, "req-2", lines.append)
        assert (second.step, second.target) == ("join", "hot") and second.note.startswith("restoring, ready in about")
        assert thaw_until_ready(world, plan, lines.append) >= 1
    head = world.s3.client().head_object(Bucket=world.s3.bucket, Key=world.archived_key)
    assert head["Restore"].startswith('ongoing-request="false", expiry-date=')

    outcome = finish(world.catalog, plan, world.backends, 3, world.work, lines.append)
    joined = finish(world.catalog, second, world.backends, 3, world.work, lines.append)
    restored = world.catalog.copy(world.sha256, "hot")
    assert (outcome.joined, joined.joined, joined.copy.link) == (False, True, restored.link)
    assert restored.state == "present" and timedelta(days=2.9) < restored.expires - datetime.now(timezone.utc)
    assert requests.get(restored.link, timeout=30).content == world.original
    assert [f.name for f in world.backends["hot"].list_uploads()] == [restored.remote_name], "copied once"
    assert world.states() == {"hot": "present", "cold": "archived"}
    assert any("asked S3 to restore it" in line for line in lines)
    assert any("S3: restoring, ready in about" in line for line in lines), lines


def test_a_failed_restore_says_why_and_releases_its_claim(world):
    archive = world.catalog.archive(world.sha256)
    plan = begin(world.catalog, archive, "hot", world.backends, "req-down", print)
    assert thaw_until_ready(world, plan, print) == 0  # moto's default: restored at once
    world.hot_server.stop()
    with pytest.raises(RestoreFailed, match="restore of .* to hot failed: .*") as err:
        finish(world.catalog, plan, world.backends, 3, world.work, print)
    copy = world.catalog.copy(world.sha256, "hot")
    assert (copy.state, copy.claimed_by) == ("deleted", None)
    assert copy.last_error.startswith("restore failed: ") and str(err.value).split("failed: ", 1)[1] in copy.last_error
    assert world.key not in copy.last_error and world.s3.secret_access_key not in str(err.value)

    world.hot_server.start()  # the archived copy changed on S3: its bytes are not the archive's
    client = world.s3.client()
    client.put_object(Bucket=world.s3.bucket, Key=world.archived_key, Body=b"not the archive", StorageClass="GLACIER")
    plan = begin(world.catalog, world.catalog.archive(world.sha256), "hot", world.backends, "req-changed", print)
    assert plan.step == "thaw", "the claim was released: a new request claims again"
    thaw_until_ready(world, plan, print)
    with pytest.raises(RestoreFailed, match=r"cold hands out sha256 [0-9a-f]{12}, not the archive's"):
        finish(world.catalog, plan, world.backends, 3, world.work, print)
    assert world.catalog.copy(world.sha256, "hot").state == "deleted"

    client.delete_object(Bucket=world.s3.bucket, Key=world.archived_key)  # the archived copy lost
    with pytest.raises(RestoreFailed, match="is gone from s3://"):
        begin(world.catalog, world.catalog.archive(world.sha256), "hot", world.backends, "req-lost", print)
    copy = world.catalog.copy(world.sha256, "hot")
    assert (copy.state, copy.claimed_by) == ("deleted", None) and "is gone" in copy.last_error


KILLED_WORKER = """
import json, os, sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from emulators.fixtures import settings_of
from simpost.catalog import Catalog
from simpost.restore import restore
from storage_backends import open_backend
from storage_backends.retry import RetryPolicy

conns = json.loads(os.environ["CONNS"])
backends = {b: open_backend(settings_of(b, c), retry=RetryPolicy(attempts=1)) for b, c in conns.items()}
with Catalog.open(os.environ["CATALOG"]) as catalog:
    archive = catalog.archive(os.environ["SHA"])
    restore(catalog, archive, "hot", backends, 3, Path(os.environ["WORK"]), owner="killed-run")
"""


def test_a_claim_left_by_a_killed_worker_is_taken_over(world, tmp_path):
    """The worker claims, then hangs on an S3 endpoint that never answers, and is SIGKILLed: no
    code of ours runs. A request while the claim is fresh joins it; once the claim has been
    silent for longer than the bound, the next request takes it over and restores."""
    with socket.socket() as black_hole:  # accepts connections (backlog), never answers
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(8)
        conn = cold_conn(world.s3)
        config = json.loads(conn["extra"]["storage_backend_config"])
        conn["extra"]["storage_backend_config"] = json.dumps(
            {**config, "endpoint_url": f"http://127.0.0.1:{black_hole.getsockname()[1]}"})
        hot = local_conn(world.hot_server.url, world.key, HOT_KEEP)
        env = {**os.environ, "CONNS": json.dumps({"hot": hot, "cold": conn}), "SHA": world.sha256,
               "CATALOG": str(world.catalog.engine.url), "WORK": str(tmp_path / "killed"),
               "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
        worker = subprocess.Popen([sys.executable, "-c", KILLED_WORKER], env=env)
        try:
            claim = wait_for_claim(world, worker)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
    assert claim.claimed_by == "killed-run" and worker.returncode == -signal.SIGKILL

    fresh = begin(world.catalog, world.catalog.archive(world.sha256), "hot", world.backends, "req-early", print,
                  stale=timedelta(hours=1))
    assert fresh.step == "join", "a claim younger than the bound is a running restore"
    silent = datetime.now(timezone.utc) - world.catalog.copy(world.sha256, "hot").updated_at
    lines: list[str] = []
    outcome = restore(world.catalog, world.catalog.archive(world.sha256), "hot", world.backends, 3, world.work,
                      lines.append, owner="req-late", stale=silent / 2)
    assert any("took over the restore of" in line and "by killed-run, silent since" in line for line in lines)
    assert outcome.copy.state == "present" and outcome.copy.claimed_by == "req-late"
    assert requests.get(outcome.copy.link, timeout=30).content == world.original
    joined = finish(world.catalog, fresh, world.backends, 3, world.work, print)  # the early joiner hears too
    assert joined.joined and joined.copy.link == outcome.copy.link


def wait_for_claim(world: World, worker: subprocess.Popen):
    """The worker's claim, read from the catalog as soon as it is there (or the worker's exit)."""
    deadline = datetime.now(timezone.utc) + timedelta(seconds=120)
    while datetime.now(timezone.utc) < deadline:
        copy = world.catalog.copy(world.sha256, "hot")
        if copy.state == "restoring":
            return copy
        assert worker.poll() is None, "the worker ended before it was killed"
        worker_wait(worker)
    raise AssertionError("the worker never claimed the restore")


def worker_wait(worker: subprocess.Popen) -> None:
    try:
        worker.wait(timeout=0.2)  # a bounded wait on the worker itself, not a sleep
    except subprocess.TimeoutExpired:
        pass


def test_a_retry_of_the_same_request_takes_its_own_claim_over_at_once(world):
    archive = world.catalog.archive(world.sha256)
    now = datetime.now(timezone.utc)
    assert world.catalog.claim_restore(archive.sha256, "hot", "run-a", now - timedelta(hours=1)).claimed
    assert not world.catalog.claim_restore(archive.sha256, "hot", "run-b", now - timedelta(hours=1)).claimed
    again = world.catalog.claim_restore(archive.sha256, "hot", "run-a", now - timedelta(hours=1))
    assert again.claimed and again.took_over.claimed_by == "run-a"
    assert world.catalog.release_restore(archive.sha256, "hot", "run-b", "not its claim") is None
    assert world.catalog.copy(archive.sha256, "hot").state == "restoring"


def test_a_30_day_copy_on_s3_outlives_its_7_day_link(world, s3_bucket):
    """Restored for 30 days to an s3 backend (its own keep days 1): the presigned link ends after 7
    days (SigV4's limit), the copy after 30. Retention goes by the copy's keep-until only, the
    restored event by the link's end."""
    s3_hot = open_backend(settings_of("s3_hot", s3_bucket.conn_json(keep_days=1, prefix="hot/")),
                          RetryPolicy(attempts=1))
    backends = {**world.backends, "s3_hot": s3_hot}
    outcome = restore(world.catalog, world.catalog.archive(world.sha256), "s3_hot", backends, 30, world.work,
                      lambda m: None)
    copy = world.catalog.copy(world.sha256, "s3_hot")
    assert outcome.copy == copy and copy.state == "present" and copy.remote_id.startswith("hot/")
    assert copy.expires - copy.uploaded == timedelta(days=30), "kept for the restore's keep days"
    assert copy.link_expires - copy.uploaded == timedelta(days=7) == copy.link_until - copy.uploaded
    assert parse_qs(urlsplit(copy.link).query)["X-Amz-Expires"] == [str(MAX_LINK_SECONDS)]
    assert requests.get(copy.link, timeout=30).content == world.original

    def retention_after(days: int) -> dict:
        return clean(s3_hot, 1, copy.uploaded + timedelta(days=days), False, log=lambda m: None,
                     on_deleted=record_deleted(world.catalog, "s3_hot"),
                     catalogued=Catalogued(world.catalog, "s3_hot"))

    after_8 = retention_after(8)
    assert (after_8["deleted"], after_8["kept"]) == ([], 1), "past the link's end, not the copy's"
    assert world.catalog.copy(world.sha256, "s3_hot").state == "present"
    assert s3_hot.list_uploads()[0].remote_id == copy.remote_id
    after_31 = retention_after(31)
    assert after_31["deleted"] == [copy.remote_name] and s3_hot.list_uploads() == []
    assert world.states() == {"hot": "deleted", "cold": "archived", "s3_hot": "deleted"}


def test_the_restored_mail_says_an_s3_link_lasts_seven_days(s3_bucket):
    backend = open_backend(settings_of("s3_lab", s3_bucket.conn_json(keep_days=30)))
    key = "simpost/" + remote_name("x", "mail-1", "ab" * 32)
    body = {"event": "restored", "state": "success", "simulation_id": "mail-1", "run_id": "r", "title": None,
            "seconds": 1.0, "size": 10, "sha256": "ab" * 32, "backend": "s3_lab",
            "expires_at": (datetime.now(timezone.utc) + timedelta(seconds=MAX_LINK_SECONDS)).isoformat()}
    signed = text_part(content({**body, "link": backend.service.presign(key)}))
    assert "the link lasts 7 days, the longest an S3 signed link may" in " ".join(signed.split())
    shorter = text_part(content({**body, "link": backend.service.presign(key, 3 * 86400)}))
    assert "lasts 7 days" not in " ".join(shorter.split())


@pytest.mark.airflow
@pytest.mark.timeout(1800)
def test_storage_restore_thaws_copies_and_tells_once_through_airflow(world, airflow_db, listeners):
    """The whole path as Airflow runs it (`airflow dags test`): begin asks S3, the sensor in
    reschedule mode sees `x-amz-restore` go from ongoing to done, finish copies, notify mails and
    calls back once; then a restore whose archived copy is gone fails with its reason, told too."""
    from helpers import dags_test
    from results_check import validate_result

    inbox, callbacks, connections = listeners
    env = {"AIRFLOW_CONN_HOT": json.dumps(local_conn(world.hot_server.url, world.key, HOT_KEEP)),
           "AIRFLOW_CONN_COLD": json.dumps(cold_conn(world.s3)),
           "AIRFLOW_CONN_SIMPOST_CATALOG": json.dumps({"conn_type": "sqlite",
                                                      "host": world.catalog.engine.url.database}),
           "SIMPOST_RESTORE_POKE_SECONDS": "1", "SIMPOST_UPLOAD_RETRY_BUDGET": "1", "SIMPOST_RETRY_DELAY": "0",
           **connections}
    conf = {"simulation_id": SIM, "keep_days": 3, "callback_endpoint": "/done", "notification_email": "ana@lab.test"}
    with world.s3.slow_restores(polls=6):
        output = dags_test("storage_restore", conf, env)
    assert "asked S3 to restore it: S3 GLACIER, Bulk retrieval: ready in about 5-12 hours" in output
    assert "S3: restoring, ready in about 12 hours" in output, "a poke found S3 still thawing"
    assert "up_for_reschedule" in output.lower(), "the sensor gave its worker back between pokes"
    restored = world.catalog.copy(world.sha256, "hot")
    assert restored.state == "present" and requests.get(restored.link, timeout=30).content == world.original
    [(path, body)] = callbacks
    assert path == "/done" and validate_result(body)["event"] == "restored" and body["link"] == restored.link
    [(to, mail)] = inbox.mails
    assert to == ["ana@lab.test"] and "archived results restored" in mail

    world.catalog.transition(world.sha256, "hot", ("present",), "deleted", last_error="deleted by retention")
    world.s3.client().delete_object(Bucket=world.s3.bucket, Key=world.archived_key)
    output = dags_test("storage_restore", conf, env, ok=False)
    [_, (_, failed)] = callbacks
    assert validate_result(failed)["state"] == "failed" and failed["stage"] == "restore"
    assert failed["reason"].startswith("restore of ") and "is gone from s3://" in failed["reason"]
    assert "restore failed" in inbox.mails[1][1] and world.s3.secret_access_key not in output
    copy = world.catalog.copy(world.sha256, "hot")
    assert (copy.state, copy.claimed_by) == ("deleted", None), "the failed restore let go of its claim"
