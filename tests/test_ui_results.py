"""The Results view as a person meets it in Airflow's UI, in Debian's Chromium (Playwright).

One real Airflow (api-server, scheduler, dag-processor; SQLite; own home and ports) and one real
local_cloud. A run of simulation_postprocess on OMNeT++'s own files makes the archive and uploads it
to two backends: `local_cloud` (a copy that arrives) and `local_wrong_key` (a second local_cloud,
given a wrong key: its copy ends `failed`, the run succeeds with min_copies 1). The upload tasks record both
in the deployment's catalog. The person logs in, opens Results from the UI's navigation, searches by
simulation id and follows the present copy's link to the archive.
Screenshot: tests/screenshots/results-view.png.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass

import pytest
from local_cloud.testing import LocalCloudServer
from omnetpp_results import verify_archive
from playwright.sync_api import FrameLocator, expect
from simpost.catalog import Catalog

from browser import ACTION_TIMEOUT_MS, AirflowUI, chromium
from cluster import AirflowCluster
from conftest import POOLS, REPO

pytestmark = pytest.mark.airflow
DAG = "simulation_postprocess"
SIMULATION, TITLE = "aloha-ui-42", "Pure Aloha, 1 host"


@dataclass
class World:
    cluster: AirflowCluster
    ui: AirflowUI
    sha256: str
    size: int
    link: str


def _local_backend(server: str, key: str) -> str:
    """A `local` storage_backend connection as AIRFLOW_CONN_* JSON (the key as token, the server in config)."""
    return json.dumps({"conn_type": "storage_backend", "password": key, "extra": {
        "storage_backend": "Local cloud", "storage_backend_id": "local", "storage_backend_keep_days": 7,
        "storage_backend_config": json.dumps({"server": server}), "storage_backend_active": True}})


@pytest.fixture(scope="module")
def world(tmp_path_factory, shared_results):
    tmp = tmp_path_factory.mktemp("results-ui")
    key = secrets.token_urlsafe(24)
    cloud, other = LocalCloudServer(tmp / "cloud", key), LocalCloudServer(tmp / "other", secrets.token_urlsafe(24))
    cloud.start()
    other.start()
    env = {
        "SIMPOST_RESULTS_ROOT": str(shared_results),
        "SIMPOST_WORK_DIR": str(tmp / "work"),
        "SIMPOST_RETRY_DELAY": "1",
        "AIRFLOW_CONN_LOCAL_CLOUD": _local_backend(cloud.url, key),
        "AIRFLOW_CONN_LOCAL_WRONG_KEY": _local_backend(other.url, key),
    }
    cluster = AirflowCluster(tmp / "airflow", dags_folder=REPO / "dags", plugins_folder=REPO / "plugins",
                             env_overrides=env, pools=POOLS)
    try:
        cluster.start(wait_for_dags=[DAG])
        with Catalog.open(f"sqlite:///{cluster.home / 'simpost-catalog.db'}") as catalog:  # the deployment's default
            catalog.record_archive("9f" * 32, 4_321, "other-sim", title="Another study", run_id="sim__other-sim__1")
            catalog.record_copy("9f" * 32, "local_cloud", "present", link=f"{cloud.url}/f/not-this-one")
        run_id = cluster.trigger(DAG, {"simulation_id": SIMULATION, "title": TITLE, "results_dir": "aloha-PureAloha1",
                                       "storage_backend": ["local_cloud", "local_wrong_key"], "graphs": "none"})
        assert cluster.wait(DAG, run_id, timeout=600) == "success", cluster.tails()
        result = cluster.api("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/~/xcomEntries",
                             params={"xcom_key": "result"}).json()["xcom_entries"]
        entry = result[0]
        body = cluster.api("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/{entry['task_id']}"
                                  "/xcomEntries/result", params={"deserialize": "true"}).json()["value"]
        expect.set_options(timeout=ACTION_TIMEOUT_MS)  # a first page load on a loaded 2-core machine
        with chromium() as browser:
            ui = AirflowUI(browser, cluster.base_url)
            yield World(cluster, ui, body["sha256"], body["size"], body["link"])
            ui.close()
    finally:
        cluster.stop()
        cloud.stop()
        other.stop()


def _results_from_navigation(ui: AirflowUI) -> FrameLocator:
    """After logging in: the Results entry of the UI's side bar, the view it opens in its frame."""
    ui.page.get_by_role("link", name="Results").click()
    ui.page.wait_for_url(re.compile(r"/plugin/simpost-results"))
    frame = ui.page.frame_locator("iframe[title=Results]")
    expect(frame.get_by_role("heading", name="Results")).to_be_visible()
    return frame


def test_results_view_lists_the_runs_archive_and_its_copies_and_a_link_downloads_it(world, tmp_path):
    ui = world.ui
    ui.login(world.cluster.username, world.cluster.password)
    frame = _results_from_navigation(ui)
    rows = frame.locator("tr[data-sha256]")
    expect(rows).to_have_count(2)

    frame.get_by_label("Simulation id or title").fill(SIMULATION)
    frame.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    row = rows.first
    expect(row).to_have_attribute("data-sha256", world.sha256)
    cells = row.locator(":scope > td")
    expect(cells.nth(0)).to_contain_text(SIMULATION)
    expect(cells.nth(1)).to_contain_text(TITLE)
    expect(cells.nth(2)).to_have_attribute("title", f"{world.size} bytes")
    expect(row).to_contain_text("1 of 2 wanted copies present")
    states = {}
    for copy in row.locator("table.copies tr[data-backend]").all():
        backend, state, link, verified = copy.locator("td").all_inner_texts()
        states[backend] = (state.splitlines()[0], link, verified)
    assert states["local_cloud"][0] == "present" and states["local_cloud"][2].endswith("UTC")
    assert world.link.startswith("http://" + states["local_cloud"][1].rstrip("…"))
    link = row.locator("tr[data-backend=local_cloud] a[data-share]")
    expect(link).to_have_attribute("href", world.link)
    assert states["local_wrong_key"] == ("failed", "no link", "never")
    expect(row.locator("tr[data-why-for=local_wrong_key]")).to_contain_text("wrong api_key?")  # the reason, below
    assert "/plugin/simpost-results" in ui.page.url and SIMULATION in ui.page.url  # the search is in the address
    ui.page.mouse.move(0, 0)
    shot = ui.shot("results-view")
    assert shot.stat().st_size > 10_000

    download = ui.download(link)  # the share page in a new tab, then its Download button
    path = tmp_path / "downloaded.zip"
    download.save_as(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == world.sha256
    assert verify_archive(path) > 5


def test_without_an_airflow_login_the_view_shows_no_archive(world):
    context = world.ui.context.browser.new_context()
    try:
        page = context.new_page()
        response = page.goto(world.cluster.base_url + "/simpost/results?q=" + SIMULATION)
        assert response.status == 401
        text = page.locator("body").inner_text()
        assert "Log in to Airflow" in text and SIMULATION not in text and world.sha256[:12] not in page.content()
    finally:
        context.close()
