"""The Results view as a person meets it in Airflow's UI, in Debian's Chromium (Playwright).

One real api-server (it serves the UI and the simpost plugin) and one real local_cloud. A run's
archive is made by the results engine from OMNeT++'s own files, uploaded to local_cloud through the
`local` backend and recorded in the deployment's catalog with the upload's facts, next to the copies
that did not make it (a failed Dropbox copy, a lost Seafile one). The person logs in, opens Results
from the UI's navigation, searches by simulation id, and follows the local_cloud copy's link to the
archive. Screenshot: tests/screenshots/results-view.png.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

import pytest
from emulators.fixtures import local_conn_json, settings_of
from local_cloud.testing import LocalCloudServer
from omnetpp_results import verify_archive
from omnetpp_results.__main__ import main as engine
from playwright.sync_api import FrameLocator, expect
from simpost.catalog import Catalog
from storage_backends import open_backend
from storage_backends.naming import remote_name

from browser import ACTION_TIMEOUT_MS, AirflowUI, chromium
from cluster import AirflowCluster
from test_results_api import _api_server

pytestmark = pytest.mark.airflow
SIMULATION, TITLE = "aloha-ui-42", "Pure Aloha, 1 host"


@dataclass
class World:
    cluster: AirflowCluster
    ui: AirflowUI
    sha256: str
    size: int
    link: str


@pytest.fixture(scope="module")
def world(tmp_path_factory, shared_results):
    tmp = tmp_path_factory.mktemp("results-ui")
    key = secrets.token_urlsafe(24)
    cloud = LocalCloudServer(tmp / "cloud", key)
    cloud.start()
    cluster = None
    try:
        archive = tmp / "results.zip"
        assert engine(["export", str(shared_results / "aloha-PureAloha1"), str(tmp / "out"), "--graphs", "none",
                       "--zip", str(archive)]) == 0
        sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
        backend = open_backend(settings_of("local_cloud", local_conn_json(cloud.url, api_key=key)))
        uploaded = backend.upload(str(archive), remote_name(TITLE, SIMULATION, sha256), keep_days=7)
        assert uploaded.sha256 == sha256

        cluster = _api_server(tmp / "airflow")
        with Catalog.open(f"sqlite:///{cluster.home / 'simpost-catalog.db'}") as catalog:  # the deployment's default
            catalog.record_archive("9f" * 32, 4_321, "other-sim", title="Another study", run_id="sim__other-sim__1")
            catalog.record_copy("9f" * 32, "local_cloud", "present", link=f"{cloud.url}/f/not-this-one")
            catalog.record_archive(sha256, uploaded.size, SIMULATION, title=TITLE, run_id=f"sim__{SIMULATION}__1",
                                   copies_wanted=3)
            catalog.record_copy(sha256, "local_cloud", "present", remote_id=uploaded.remote_id, link=uploaded.link,
                                uploaded=uploaded.uploaded_at, expires=uploaded.expires_at)
            catalog.verified(sha256, "local_cloud")
            catalog.record_copy(sha256, "dropbox", "failed", last_error="HTTP 503 Service Unavailable (3 attempts)")
            catalog.record_copy(sha256, "seafile-lab", "lost", link="https://seafile.lab.example/f/0a1b2c/",
                                last_error="not in the library any more")
        expect.set_options(timeout=ACTION_TIMEOUT_MS)  # a first page load on a loaded 2-core machine
        with chromium() as browser:
            ui = AirflowUI(browser, cluster.base_url)
            yield World(cluster, ui, sha256, uploaded.size, uploaded.link)
            ui.close()
    finally:
        if cluster:
            cluster.stop()
        cloud.stop()


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
    expect(row).to_contain_text("1 of 3 wanted copies present")
    states = {}
    for copy in row.locator("table.copies tbody tr").all():
        backend, state, link, verified = copy.locator("td").all_inner_texts()
        states[backend] = (state.splitlines()[0], link, verified)
    assert states["local_cloud"][0] == "present" and states["local_cloud"][2].endswith("UTC")
    assert world.link.startswith("http://" + states["local_cloud"][1].rstrip("…"))
    link = row.locator("tr[data-backend=local_cloud] a[data-share]")
    expect(link).to_have_attribute("href", world.link)
    assert states["dropbox"] == ("failed", "no link", "never")
    assert states["seafile-lab"][0] == "lost"
    expect(row).to_contain_text("HTTP 503 Service Unavailable")
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
