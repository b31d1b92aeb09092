"""The Results view's actions, in a real Airflow and in Debian's Chromium: Restore on an archived
archive (issue 19) and a fresh link for a copy on S3 (issue 22), with `simpost where`.

One real Airflow (api-server, scheduler, dag-processor; SQLite; own home and ports) with the one
DAG under test, two real local_cloud servers (`hot`: keep 1 day, archive_to `cold`; `cold`: the
archive tier, keep 0) and a real S3 protocol server on loopback (moto's server mode; connection
`s3_lab`). The archived archive is made as retention makes it: its bytes uploaded to `cold` through
the backend, the catalog saying `archived` there and `deleted` on hot. The restore itself is
storage_restore as Airflow runs it. Screenshots: tests/screenshots/results-archived.png,
results-restoring.png, results-restored.png, results-restore-failed.png, results-new-link.png.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from emulators.fixtures import settings_of
from emulators.s3 import s3_server  # noqa: F401  (fixture)
from local_cloud.testing import LocalCloudServer
from playwright.sync_api import FrameLocator, expect
from simpost.catalog import Catalog
from simpost_client.__main__ import main as simpost_cli
from simpost_client.client import Simpost
from storage_backends import open_backend
from storage_backends.naming import remote_name
from test_archive import local_conn
from test_ui_results import _results_from_navigation

from browser import ACTION_TIMEOUT_MS, AirflowUI, chromium
from cluster import AirflowCluster
from conftest import POOLS, REPO

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1800)]
RESTORE_DAG = "storage_restore"
ARCHIVED, ON_S3, FAILS = "archived-ui-7", "s3-ui-3", "archived-ui-8"
BY_CLI, NO_COPY = "archived-cli-9", "no-copy-cli-2"
RESTORE_MS = 600_000  # one storage_restore run through the scheduler, on a loaded 2-core machine
S3_DAYS_LEFT = 2  # the S3 copy's keep days end in 2 days: a fresh link lasts that long, not 7 days


@dataclass
class World:
    cluster: AirflowCluster
    ui: AirflowUI
    catalog: Catalog
    conns: dict[str, dict]
    cold: LocalCloudServer
    archived: str  # SHA-256 of the archived archive
    on_s3: str  # SHA-256 of the archive with a present copy on s3_lab (and one on hot)


def _zip(tmp: Path, name: str) -> Path:
    """A small archive with a report, as the share page previews one."""
    path = tmp / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("report.html", f"<!doctype html><title>{name}</title><h1>{name}</h1>")
        z.writestr("data/scalars.csv", secrets.token_hex(20_000))
    return path


def _put(catalog: Catalog, conns: dict, backend: str, path: Path, simulation_id: str, state: str,
         keep_days: int) -> str:
    """The archive's bytes uploaded to `backend` through its backend, and the catalog's record of it."""
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    name = remote_name(simulation_id, simulation_id, sha256)
    upload = open_backend(settings_of(backend, conns[backend])).upload(str(path), name, keep_days)
    catalog.record_archive(sha256, path.stat().st_size, simulation_id, title=simulation_id,
                           run_id=f"sim__{simulation_id}__1")
    catalog.record_copy(sha256, backend, state, remote_id=upload.remote_id, remote_name=name, link=upload.link,
                        uploaded=upload.uploaded_at, expires=upload.expires_at)
    return sha256


def _archived(catalog: Catalog, conns: dict, tmp: Path, simulation_id: str) -> str:
    """An archive as retention leaves it: on cold `archived`, its hot copy (uploaded a week ago) `deleted`."""
    sha256 = _put(catalog, conns, "cold", _zip(tmp, simulation_id), simulation_id, "archived", 0)
    a_week_ago = datetime.now(timezone.utc) - timedelta(days=7)
    catalog.record_copy(sha256, "hot", "deleted", remote_name="gone", uploaded=a_week_ago, last_error="archived to cold")
    return sha256


@pytest.fixture(scope="module")
def world(tmp_path_factory, s3_server):
    tmp = tmp_path_factory.mktemp("results-restore")
    key = secrets.token_urlsafe(24)
    hot, cold = LocalCloudServer(tmp / "hot", key), LocalCloudServer(tmp / "cold", key)
    hot.start()
    cold.start()
    conns = {"hot": local_conn(hot.url, key, 1, "cold"), "cold": local_conn(cold.url, key, 0),
             "s3_lab": s3_server.conn_json(keep_days=7)}
    env = {"SIMPOST_RESULTS_ROOT": str(tmp), "SIMPOST_WORK_DIR": str(tmp / "work"), "SIMPOST_RETRY_DELAY": "1",
           "LOCAL_CLOUD_RETRY_BUDGET": "10",  # the stopped archive tier fails a restore in 10 s of retrying, not 120
           "AIRFLOW_VAR_STORAGE_BACKENDS": json.dumps(sorted(conns)),
           **{f"AIRFLOW_CONN_{c.upper()}": json.dumps(conn) for c, conn in conns.items()}}
    dags = tmp / "dags"  # storage_restore alone: the daily verify and retention would change the copies here
    dags.mkdir()
    shutil.copy(REPO / "dags" / f"{RESTORE_DAG}.py", dags)
    cluster = AirflowCluster(tmp / "airflow", dags_folder=dags, plugins_folder=REPO / "plugins",
                             env_overrides=env, pools=POOLS)
    try:
        cluster.start(wait_for_dags=[RESTORE_DAG])
        with Catalog.open(f"sqlite:///{cluster.home / 'simpost-catalog.db'}") as catalog:  # the deployment's default
            archived = _archived(catalog, conns, tmp, ARCHIVED)
            on_s3 = _put(catalog, conns, "s3_lab", _zip(tmp, ON_S3), ON_S3, "present", 7)
            catalog.record_copy(on_s3, "s3_lab", "present",
                                expires=datetime.now(timezone.utc) + timedelta(days=S3_DAYS_LEFT))
            catalog.record_copy(on_s3, "hot", "present", remote_id="on-hot", link=f"{hot.url}/f/on-hot")
            expect.set_options(timeout=ACTION_TIMEOUT_MS)  # a first page load on a loaded 2-core machine
            with chromium() as browser:
                ui = AirflowUI(browser, cluster.base_url)
                ui.login(cluster.username, cluster.password)
                yield World(cluster, ui, catalog, conns, cold, archived, on_s3)
                ui.close()
    finally:
        cluster.stop()
        hot.stop()
        cold.stop()


def _restore_runs(world: World) -> list[dict]:
    return world.cluster.api("GET", f"/api/v2/dags/{RESTORE_DAG}/dagRuns").json()["dag_runs"]


def _search(world: World, simulation_id: str) -> FrameLocator:
    frame = _results_from_navigation(world.ui)
    frame.get_by_label("Simulation id or title").fill(simulation_id)
    frame.get_by_role("button", name="Search").click()
    expect(frame.locator("tr[data-sha256]")).to_have_count(1)
    return frame


def test_actions_refuse_a_request_without_a_valid_login(world):
    base, path = world.cluster.base_url, f"/simpost/api/archives/{world.archived}/restore"
    assert requests.post(base + path, timeout=30).status_code == 401
    for bad in ({"Authorization": "Bearer not-a-jwt"}, {"Cookie": "_token=not-a-jwt", "X-Requested-With": "simpost-results"}):
        refused = requests.post(base + path, headers=bad, timeout=30)
        assert refused.status_code in (401, 403) and "x-requested-with" not in refused.text  # the token's fault
    cookie_only = requests.post(base + path, headers={"Cookie": f"_token={world.cluster.token()}"}, timeout=30)
    assert cookie_only.status_code == 403 and "x-requested-with" in cookie_only.json()["detail"]
    link = f"/simpost/api/archives/{world.on_s3}/copies/s3_lab/link"
    for method, route in (("GET", path), ("GET", link)):
        r = requests.request(method, base + route, timeout=30)
        assert r.status_code == 401 and "X-Amz" not in r.text
    assert _restore_runs(world) == []  # nothing was started


def test_restore_button_restores_the_archive_and_shows_its_new_link(world, tmp_path):
    frame = _search(world, ARCHIVED)
    cell = frame.locator(f"td[data-restore-for='{world.archived}']")
    expect(cell.locator("div.restore")).to_contain_text("Archived")
    expect(cell).to_contain_text("0 of 1 wanted copies present")
    world.ui.page.mouse.move(0, 0)
    world.ui.shot("results-archived")

    cell.get_by_role("button", name="Restore").click()
    expect(cell.locator("div.restore")).to_contain_text("Restoring...")
    again = world.cluster.api("POST", f"/simpost/api/archives/{world.archived}/restore")  # a second click, at once
    [run] = _restore_runs(world)
    assert again.status_code == 200 and again.json()["state"] == "restoring"
    assert again.json()["run_id"] == run["dag_run_id"] and run["dag_run_id"].startswith(f"restore__{world.archived[:16]}__")
    assert run["conf"]["sha256"] == world.archived and run["triggering_user_name"] == world.cluster.username
    world.ui.shot("results-restoring")  # to look at: the run may be quick enough to be done already

    restored = cell.locator("div.restore")
    expect(restored).to_contain_text("Restored until", timeout=RESTORE_MS)
    copy = world.catalog.copy(world.archived, "hot")
    assert copy.state == "present" and world.catalog.copy(world.archived, "cold").state == "archived"
    assert timedelta(days=6.9) < copy.expires - datetime.now(timezone.utc) < timedelta(days=7.1)
    expect(restored).to_contain_text(f"Restored until {copy.expires:%Y-%m-%d %H:%M} UTC")
    link = restored.locator("a[data-share]")
    expect(link).to_have_attribute("href", copy.link)
    expect(cell).to_contain_text("1 of 1 wanted copies present")  # the copies below are the catalog's now
    world.ui.page.mouse.move(0, 0)
    assert world.ui.shot("results-restored").stat().st_size > 10_000

    download = world.ui.download(link)
    path = tmp_path / "restored.zip"
    download.save_as(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == world.archived
    hot = open_backend(settings_of("hot", world.conns["hot"]))
    assert [f.name for f in hot.list_uploads()] == [copy.remote_name]  # copied once
    state = world.cluster.wait(RESTORE_DAG, run["dag_run_id"], timeout=60)
    assert state == "success" and len(_restore_runs(world)) == 1


def test_a_failed_restore_says_so_and_offers_the_button_again(world, tmp_path):
    sha256 = _archived(world.catalog, world.conns, tmp_path, FAILS)
    world.cold.stop()  # the archive tier is down: the copy back cannot be made
    try:
        frame = _search(world, FAILS)
        cell = frame.locator(f"td[data-restore-for='{sha256}']")
        cell.get_by_role("button", name="Restore").click()
        expect(cell.locator("div.restore")).to_contain_text("Restoring...")
        expect(cell.locator("div.restore")).to_contain_text("Restore failed", timeout=RESTORE_MS)
        [run] = [r for r in _restore_runs(world) if r["conf"]["sha256"] == sha256]
        assert run["state"] == "failed"
        expect(cell.locator("div.restore")).to_contain_text(f"see run {run['dag_run_id']} of storage_restore")
        expect(cell.get_by_role("button", name="Restore")).to_be_enabled()
        hot = world.catalog.copy(sha256, "hot")
        assert hot.state == "deleted" and hot.last_error.startswith("restore failed: download from cold")
        world.ui.page.mouse.move(0, 0)
        world.ui.shot("results-restore-failed")
    finally:
        world.cold.start()


def _expires_in(link: str) -> int:
    return int(parse_qs(urlsplit(link).query)["X-Amz-Expires"][0])


def _lasts_as_long_as_the_copy(world: World, link: str) -> bool:
    """The link was signed for the time the S3 copy has left (not 7 days), a moment ago."""
    left = (world.catalog.copy(world.on_s3, "s3_lab").expires - datetime.now(timezone.utc)).total_seconds()
    return left - 5 <= _expires_in(link) <= left + 120


def test_a_present_s3_copy_gets_a_fresh_link_that_lasts_as_long_as_the_copy(world):
    stored = world.catalog.copy(world.on_s3, "s3_lab")
    assert _expires_in(stored.link) == 7 * 86400
    r = world.cluster.api("GET", f"/simpost/api/archives/{world.on_s3}/copies/s3_lab/link")
    fresh = r.json()
    assert _lasts_as_long_as_the_copy(world, fresh["link"]) and _expires_in(fresh["link"]) < 7 * 86400
    assert datetime.fromisoformat(fresh["expires_at"]) - stored.expires < timedelta(minutes=2)
    assert hashlib.sha256(requests.get(fresh["link"], timeout=30).content).hexdigest() == world.on_s3
    refused = world.cluster.api("GET", f"/simpost/api/archives/{world.on_s3}/copies/hot/link", check=False)
    assert refused.status_code == 409 and "do not expire" in refused.json()["detail"]
    gone = world.cluster.api("GET", f"/simpost/api/archives/{world.on_s3}/copies/nowhere/link", check=False)
    assert gone.status_code == 404


def test_where_prints_fresh_links_for_s3_copies(world, monkeypatch, capsys):
    monkeypatch.setenv("SIMPOST_AIRFLOW_PASSWORD", world.cluster.password)
    assert simpost_cli(["--airflow", world.cluster.base_url, "--user", world.cluster.username, "where", ON_S3]) == 0
    out = capsys.readouterr().out
    s3_line = next(line for line in out.splitlines() if "s3_lab" in line)
    printed = re.search(r"(http\S+)", s3_line).group(1)
    assert printed != world.catalog.copy(world.on_s3, "s3_lab").link
    assert _lasts_as_long_as_the_copy(world, printed)
    until = world.catalog.copy(world.on_s3, "s3_lab").expires
    assert re.search(r"link valid until \d{4}-\d\d-\d\d \d\d:\d\d UTC$", s3_line)
    assert abs(datetime.strptime(s3_line[-20:-4], "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc) - until) \
        < timedelta(minutes=2)
    hot_line = next(line for line in out.splitlines() if " hot " in line)
    assert hot_line.rstrip().endswith("verified never") and "/f/on-hot" in hot_line  # a link that does not expire
    assert hashlib.sha256(requests.get(printed, timeout=30).content).hexdigest() == world.on_s3


def test_new_link_button_replaces_an_s3_copys_link(world):
    frame = _search(world, ON_S3)
    copy = frame.locator("tr[data-backend=s3_lab]")
    expect(frame.locator("tr[data-backend=hot]").get_by_role("button", name="New link")).to_have_count(0)
    stored = world.catalog.copy(world.on_s3, "s3_lab").link
    expect(copy.locator("a[data-share]")).to_have_attribute("href", stored)
    copy.get_by_role("button", name="New link").click()
    expect(copy.locator("td.link")).to_contain_text("valid until")
    href = copy.locator("a[data-share]").get_attribute("href")
    assert href != stored and _lasts_as_long_as_the_copy(world, href)
    world.ui.page.mouse.move(0, 0)
    assert world.ui.shot("results-new-link").stat().st_size > 10_000
    assert hashlib.sha256(requests.get(href, timeout=30).content).hexdigest() == world.on_s3


def _cli(world: World, monkeypatch, *args: str) -> int:
    """The client as a person runs it, against the deployment's api-server."""
    monkeypatch.setenv("SIMPOST_AIRFLOW_PASSWORD", world.cluster.password)
    return simpost_cli(["--airflow", world.cluster.base_url, "--user", world.cluster.username, *args])


def test_simpost_restore_prints_the_new_link_and_a_second_one_joins_the_first(world, tmp_path, monkeypatch, capsys):
    sha256 = _archived(world.catalog, world.conns, tmp_path, BY_CLI)
    assert _cli(world, monkeypatch, "restore", BY_CLI, "--wait", "--timeout", "0") == 3  # stops waiting at once
    first = capsys.readouterr()
    first_run = re.search(r"^triggered (\S+)$", first.err, re.M).group(1)
    assert first.out == "" and f"restore {first_run} is still running after 0 s and goes on" in first.err
    assert "GLACIER" in first.err and f"`simpost where {BY_CLI}`" in first.err
    assert f"`simpost restore {BY_CLI} --wait` (it joins this restore)" in first.err

    assert _cli(world, monkeypatch, "restore", BY_CLI, "--wait", "--timeout", str(RESTORE_MS / 1000)) == 0
    second = capsys.readouterr()
    second_run = re.search(r"^triggered (\S+)$", second.err, re.M).group(1)
    copy = world.catalog.copy(sha256, "hot")
    assert copy.state == "present" and second.out == f"{copy.link}\n"
    assert f"restored on hot; link valid until {copy.link_until:%Y-%m-%d %H:%M} UTC" in second.err
    assert hashlib.sha256(requests.get(copy.link, timeout=30).content).hexdigest() == sha256

    assert world.cluster.wait(RESTORE_DAG, first_run, timeout=RESTORE_MS / 1000) == "success"
    client = Simpost(world.cluster.base_url, world.cluster.username, world.cluster.password)
    assert client.result(first_run, RESTORE_DAG)["link"] == copy.link  # both requests, one copy, one link
    assert copy.claimed_by in (f"{RESTORE_DAG}/{first_run}", f"{RESTORE_DAG}/{second_run}")
    ends = [datetime.fromisoformat(r["end_date"]) for r in _restore_runs(world)
            if r["dag_run_id"] in (first_run, second_run)]
    assert len(ends) == 2 and abs(ends[0] - ends[1]) < timedelta(seconds=150)  # the joiner heard soon, not in 300 s
    hot = open_backend(settings_of("hot", world.conns["hot"]))
    assert [f.name for f in hot.list_uploads() if BY_CLI in f.name] == [copy.remote_name]  # copied once


def test_simpost_restore_of_what_cannot_be_restored_answers_in_one_line(world, tmp_path, monkeypatch, capsys):
    runs = len(_restore_runs(world))
    assert _cli(world, monkeypatch, "restore", "never-simulated", "--wait") == 1
    unknown = capsys.readouterr()
    assert unknown.out == "" and unknown.err == (
        "simpost: no archive of simulation 'never-simulated' in the catalog: nothing to restore\n")
    assert len(_restore_runs(world)) == runs  # answered without starting a run

    sha256 = _put(world.catalog, world.conns, "cold", _zip(tmp_path, NO_COPY), NO_COPY, "deleted", 0)
    assert _cli(world, monkeypatch, "restore", NO_COPY, "--wait", "--timeout", str(RESTORE_MS / 1000)) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith("triggered ")
    assert err[1] == (f"simpost: restore {err[0].removeprefix('triggered ')} failed: restore refused: archive"
                      f" {sha256[:12]} of simulation {NO_COPY} has no copy left to restore from")
