"""The Airflow UI as a new user meets it, clicked through in Debian's Chromium (Playwright).

One real Airflow (api-server, scheduler, dag-processor; SQLite; own home and ports) is shared by
the module, with the Test button enabled and Backend config redacted by name, as `make airflow`
sets them up. Backends are added through the connection form: Dropbox and Seafile against the
emulators in tests/emulators, `local` against a real local_cloud. Every assertion is about what
the page shows or what the browser downloads. Screenshots: tests/screenshots/ (git-ignored).
"""
from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from emulators.fixtures import (  # noqa: F401  (fixtures)
    DROPBOX_APP_KEY,
    DROPBOX_APP_SECRET,
    DROPBOX_REFRESH_TOKEN,
    SEAFILE_REPO,
    SEAFILE_TOKEN,
    _dropbox_server,
    _seafile_server,
    test_ca,
)
from local_cloud.testing import LocalCloudServer
from omnetpp_results import verify_archive
from playwright.sync_api import expect

from browser import STANDARD_LABELS, AirflowUI, chromium
from cluster import AirflowCluster, free_port
from conftest import POOLS, REPO
from results_check import validate_result
from storage_backends.provider import CONFIG_FIELD
from storage_backends.settings import LABELS
from test_rest_e2e import Callbacks, Mailbox, body_of

pytestmark = pytest.mark.airflow
DAG, RETENTION = "simulation_postprocess", "storage_retention"
RESULTS_DIR = "aloha-PureAloha1"


@dataclass
class World:
    cluster: AirflowCluster
    ui: AirflowUI
    cloud: LocalCloudServer
    mailbox: Mailbox
    secrets: tuple[str, ...]  # every secret typed into a form; none may ever be shown
    backends: dict[str, dict]  # connection id -> form fields, by label
    dead: str  # a local backend whose server does not answer


@pytest.fixture(scope="module")
def world(tmp_path_factory, shared_results, _dropbox_server, _seafile_server, test_ca):
    tmp = tmp_path_factory.mktemp("ui")
    key = secrets.token_urlsafe(24)
    cloud = LocalCloudServer(tmp / "cloud", key)
    cloud.start()
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    callbacks = ThreadingHTTPServer(("127.0.0.1", 0), Callbacks)
    threading.Thread(target=callbacks.serve_forever, daemon=True).start()
    password, port = secrets.token_urlsafe(12), free_port()
    env = {
        "SIMPOST_RESULTS_ROOT": str(shared_results),
        "SIMPOST_WORK_DIR": str(tmp / "work"),
        "SIMPOST_RETRY_DELAY": "2",
        # what make airflow sets: the Test button, Backend config redacted by name, the REST API for retention
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES": CONFIG_FIELD,
        "AIRFLOW_CONN_AIRFLOW_API": json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port,
                                                "schema": "http", "login": "admin", "password": password}),
        "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "simpost@test.local"}}),
        "AIRFLOW_CONN_SIMULATOR_API": json.dumps({
            "conn_type": "http", "host": "127.0.0.1", "port": callbacks.server_address[1], "schema": "http"}),
        # the api-server (Test button) and the tasks reach the Dropbox emulator over TLS
        "DROPBOX_API_HOST": _dropbox_server.api_host,
        "DROPBOX_API_CONTENT_HOST": _dropbox_server.content_host,
        "REQUESTS_CA_BUNDLE": test_ca.bundle,
    }
    backends = {
        "ui_local": {"Backend name": "Lab local_cloud", "Backend identifier": "local", "Backend token": key,
                     "Backend config": json.dumps({"server": cloud.url}), "Backend keep days": 7,
                     "Backend description": "local_cloud on loopback"},
        "ui_seafile": {"Backend name": "Lab Seafile", "Backend identifier": "seafile-emu",
                       "Backend token": SEAFILE_TOKEN, "Backend keep days": 14,
                       "Backend config": json.dumps({"server": _seafile_server.base_url, "repoid": SEAFILE_REPO})},
        "ui_dropbox": {"Backend name": "Lab Dropbox", "Backend identifier": "dropbox_oauth2", "Backend keep days": 30,
                       "Backend config": json.dumps({"app_key": DROPBOX_APP_KEY, "app_secret": DROPBOX_APP_SECRET,
                                                     "refresh_token": DROPBOX_REFRESH_TOKEN})},
        "ui_dead": {"Backend identifier": "local", "Backend token": key,
                    "Backend config": json.dumps({"server": f"127.0.0.1:{free_port()}"})},
    }
    cluster = AirflowCluster(tmp / "airflow", dags_folder=REPO / "dags", plugins_folder=REPO / "plugins",
                             env_overrides=env, pools=POOLS, parallelism=8, password=password, api_port=port)
    try:
        cluster.start(wait_for_dags=[DAG, RETENTION])
        with chromium() as browser:
            ui = AirflowUI(browser, cluster.base_url)
            ui.login(cluster.username, cluster.password)
            yield World(cluster, ui, cloud, mailbox, (key, SEAFILE_TOKEN, DROPBOX_APP_SECRET, DROPBOX_REFRESH_TOKEN),
                        backends, "ui_dead")
            ui.close()
    finally:
        cluster.stop()
        cloud.stop()
        smtp.stop()
        callbacks.shutdown()


@pytest.fixture(scope="module")
def added(world) -> dict[str, str]:
    """Every backend added through the form; connection id -> what the add dialog showed before Save."""
    shown = {}
    for conn_id, fields in world.backends.items():
        dialog = world.ui.open_new_connection_form(conn_id)
        world.ui.fill_backend(dialog, fields)
        world.ui.section(dialog, "Extra Fields JSON")
        shown[conn_id] = world.ui.text(dialog, typed_passwords=False)
        world.ui.save(dialog)
    return shown


def assert_no_secret(world: World, text: str, where: str) -> None:
    for secret in world.secrets:
        assert secret not in text, f"a secret is shown in {where}"


def test_connection_form_has_seven_labelled_fields_each_with_a_hint(world):
    ui = world.ui
    dialog = ui.open_new_connection_form("ui_form_only")
    seen = []
    for section, labels in (("Standard Fields", STANDARD_LABELS),
                            ("Extra Fields", [la for la in LABELS.values() if la not in STANDARD_LABELS])):
        ui.section(dialog, section)
        for label in labels:
            row = ui.field(dialog, label)
            expect(row).to_be_visible()
            seen.append(label)
            placeholder = row.locator("input, textarea").first.get_attribute("placeholder") or ""
            hint = " ".join(row.locator("[data-part=helper-text]").all_inner_texts())
            # Airflow 3.3.2 renames a provider's `description` placeholder to extra__<type>__description,
            # so the standard Description field cannot show one (DESIGN notes); all six others can
            assert placeholder.strip() or hint.strip() or label == "Backend description", f"{label}: no hint"
            if label in ("Backend token", "Backend config"):
                assert row.locator("input").first.get_attribute("type") == "password", f"{label} is not masked"
        if section == "Standard Fields":
            for hidden in ("Host", "Port", "Login", "Schema"):  # nothing but the seven
                expect(ui.field(dialog, hidden)).to_have_count(0)
            ui.shot("connection-form-standard-fields")
    assert sorted(seen) == sorted(LABELS.values())
    ui.fill_backend(dialog, {"Backend identifier": "local"})
    ui.shot("connection-form")
    ui.page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_secrets_typed_into_the_form_are_masked_everywhere_after_saving(world, added):
    ui = world.ui
    # before Save: secrets that belong in Backend token never reach Extra Fields JSON
    for conn_id in ("ui_local", "ui_seafile"):
        assert_no_secret(world, added[conn_id], f"the add dialog of {conn_id}")
    for conn_id in ("ui_local", "ui_seafile", "ui_dropbox"):
        dialog = ui.open_edit_form(conn_id)
        seen = []
        for section in ("Standard Fields", "Extra Fields", "Extra Fields JSON"):
            ui.section(dialog, section)
            seen.append(ui.text(dialog))
        assert_no_secret(world, "\n".join(seen), f"the edit dialog of {conn_id}")
        assert '"storage_backend_config": "***"' in seen[2]  # Extra Fields JSON
        assert world.backends[conn_id]["Backend name"] in seen[1]  # what is not secret stays readable
        if conn_id == "ui_local":
            ui.shot("connection-edit-extra-json")
        ui.page.keyboard.press("Escape")
    ui.go("/connections")
    expect(ui.page.get_by_text("ui_dropbox", exact=True)).to_be_visible()
    assert_no_secret(world, ui.text(), "the connection list")
    listing = ui.go("/api/v2/connections").locator("body").inner_text()  # the REST listing, in the browser
    assert_no_secret(world, listing, "GET /api/v2/connections")
    shown = {c["connection_id"]: c for c in json.loads(listing)["connections"]}
    for conn_id in world.backends:
        assert json.loads(shown[conn_id]["extra"])[CONFIG_FIELD] == "***"
    assert shown["ui_local"]["password"] == "***"


def test_test_button_succeeds_for_live_backends_and_names_a_dead_one(world, added):
    ui = world.ui
    for conn_id, says in (("ui_local", "local_cloud"), ("ui_seafile", "Seafile"), ("ui_dropbox", "Dropbox")):
        toast = ui.press_test(conn_id)
        assert "Test Connection Successful" in toast and says in toast, toast
        assert "Warning" not in toast  # this Airflow redacts Backend config
        if conn_id == "ui_local":
            ui.shot("test-button-success")
    try:
        toast = ui.press_test(world.dead)
        ui.shot("test-button-failure")
        assert "Test Connection Failed" in toast and f"connection '{world.dead}'" in toast and "cannot reach" in toast
        assert "Bad Request" not in toast and "differs from the stored connection" not in toast
        assert_no_secret(world, toast, "a Test result")
    finally:
        ui.delete_connection(world.dead)  # retention would fail on it


def test_trigger_form_needs_three_fields_and_the_run_gives_a_verified_archive(world, added, tmp_path):
    ui = world.ui
    dialog = ui.open_trigger_form(DAG)
    assert ui.required_params(dialog) == {"simulation_id", "results_dir", "storage_backend"}
    ui.param(dialog, "simulation_id").fill("ui-form-run")
    ui.param(dialog, "results_dir").fill(RESULTS_DIR)
    ui.param(dialog, "storage_backend").fill("ui_local")
    trigger = dialog.get_by_role("button", name="Trigger", exact=True)
    expect(trigger).to_be_enabled()
    ui.shot("trigger-form")
    run_id = ui.trigger(dialog)
    assert ui.wait_for_run(DAG, run_id) == "Success"
    assert set(ui.task_states().values()) == {"Success"}
    note_link = ui.run_note_share_link()  # the first thing under the run's header
    ui.shot("run-share-link")
    download = ui.download(note_link)
    archive = tmp_path / download.suggested_filename
    download.save_as(archive)
    assert verify_archive(archive) > 5
    assert archive.name.startswith("simulation_ui-form-run_")  # no title given: the default slug
    link = note_link.get_attribute("href")
    ui.open_task("copies")
    task_link = ui.task_share_link()  # where Airflow 3.3 puts a task's links
    ui.shot("copies-details-share-link")
    assert task_link.get_attribute("href") == link
    # the link reads in clear where a person looks for it: the copies step's log and its XCom
    log = ui.task_log(DAG, run_id, "copies", link)
    assert "***/f/" not in log
    ui.page.get_by_role("link", name="Storage", exact=True).click()
    ui.page.get_by_text("XCom", exact=True).click()
    expect(ui.page.get_by_text(link, exact=True)).to_be_visible()


def test_retention_dry_run_sees_the_backends_made_in_the_form(world, added):
    ui = world.ui
    dialog = ui.open_trigger_form(RETENTION)
    assert ui.required_params(dialog) == set()
    ui.field(dialog, "dry_run").locator("[data-part=control]").click()
    expect(ui.field(dialog, "dry_run").locator("input")).to_be_checked()
    run_id = ui.trigger(dialog)
    assert ui.wait_for_run(RETENTION, run_id) == "Success"
    made = sorted(c for c in world.backends if c != world.dead)
    ui.task_log(RETENTION, run_id, "list_backends", f"retention: backends {made}")
    report = ui.task_log(RETENTION, run_id, "report", re.compile(r"retention ui_local: deleted 0"))
    for conn_id in made:
        assert f"retention {conn_id}: deleted 0 (0 bytes)" in report


def test_a_wrong_backend_fails_the_first_task_naming_connection_and_field(world, added):
    ui, cluster = world.ui, world.cluster
    cluster.api("POST", "/api/v2/connections", json={
        "connection_id": "ui_switched_off", "conn_type": "storage_backend", "password": world.secrets[0],
        "extra": json.dumps({"storage_backend_id": "local", CONFIG_FIELD: json.dumps({"server": world.cloud.url}),
                             "storage_backend_active": False})})
    cluster.api("POST", "/api/v2/connections", json={"connection_id": "ui_half_done", "conn_type": "storage_backend",
                                                     "extra": json.dumps({"storage_backend_id": "local"})})
    try:
        rest_runs = {name: cluster.trigger(DAG, {"simulation_id": f"ui-{name}", "results_dir": RESULTS_DIR,
                                                 "storage_backend": name})
                     for name in ("ui_switched_off", "ui_half_done")}
        dialog = ui.open_trigger_form(DAG)
        for name, value in (("simulation_id", "ui-typo"), ("results_dir", RESULTS_DIR), ("storage_backend", "ui_locla"),
                            ("notification_email", "typo@lab.test"), ("callback_endpoint", "/done/ui-typo")):
            ui.param(dialog, name).fill(value)
        run_id = ui.trigger(dialog)
        assert ui.wait_for_run(DAG, run_id) == "Failed"
        states = ui.task_states()
        assert states["check_backend"] == "Failed"
        assert {states[t] for t in ("collect", "parse", "stats", "zip", "upload", "notify")} == {"Upstream Failed"}
        log = ui.task_log(DAG, run_id, "check_backend", "'ui_locla'")
        assert "the run's storage_backend: no such connection" in log
        [mail] = world.mailbox.to("typo@lab.test")
        assert "failed" in mail["Subject"] and "check_backend" in body_of(mail)
        [callback] = [body for path, body in Callbacks.received if path == "/done/ui-typo"]
        validate_result(callback)
        assert callback["stage"] == "check_backend" and "'ui_locla'" in callback["reason"]

        expected = {"ui_switched_off": "Backend active (storage_backend_active): off",
                    "ui_half_done": "Backend config (storage_backend_config): local needs"}
        for name, rest_run in rest_runs.items():
            assert ui.wait_for_run(DAG, rest_run) == "Failed"
            assert ui.task_states()["check_backend"] == "Failed" and ui.task_states()["collect"] == "Upstream Failed"
            log = ui.task_log(DAG, rest_run, "check_backend", expected[name])
            assert f"'{name}'" in log
            assert_no_secret(world, log, "a check_backend log")
    finally:
        for name in ("ui_switched_off", "ui_half_done"):
            cluster.api("DELETE", f"/api/v2/connections/{name}", check=False)


def test_share_link_reads_in_clear_in_log_mail_and_callback_while_secrets_stay_masked(world, added):
    ui, cluster = world.ui, world.cluster
    run_id = cluster.trigger(DAG, {"simulation_id": "ui-notify", "results_dir": RESULTS_DIR,
                                   "storage_backend": "ui_local", "title": "Browser test",
                                   "notification_email": "notify@lab.test", "callback_endpoint": "/done/ui-notify"})
    assert ui.wait_for_run(DAG, run_id) == "Success"
    link = cluster.api("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/copies/xcomEntries/return_value"
                       ).json()["value"]["link"]
    assert link.startswith(world.cloud.url + "/f/")
    log = ui.task_log(DAG, run_id, "notify", f"notify: share link {link}")
    assert_no_secret(world, log, "the notify log")
    [mail] = world.mailbox.to("notify@lab.test")
    assert link in body_of(mail)
    [callback] = [body for path, body in Callbacks.received if path == "/done/ui-notify"]
    assert callback["link"] == link
    assert_no_secret(world, body_of(mail) + json.dumps(callback), "the mail or the callback")
    for task_log in (cluster.home / "logs").rglob("*.log"):
        assert_no_secret(world, task_log.read_text(errors="replace"), f"task log file {task_log.name}")
