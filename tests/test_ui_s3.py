"""An s3 backend made in Airflow's connection form and tested with its Test button, in Chromium.

A real Airflow (tests/cluster.py) and a real S3 protocol server on loopback (moto's server mode,
tests/emulators/s3.py) that checks signatures while the buttons are pressed; the api-server's
Test button talks to it over HTTP with boto3. Screenshots: tests/screenshots/s3-*.png.
"""
from __future__ import annotations

import json
import secrets

import pytest
from emulators.s3 import s3_server  # noqa: F401  (fixture)
from playwright.sync_api import expect

from browser import ACTION_TIMEOUT_MS, STANDARD_LABELS, AirflowUI, chromium
from cluster import AirflowCluster
from conftest import REPO
from storage_backends.provider import CONFIG_FIELD
from storage_backends.settings import LABELS

pytestmark = pytest.mark.airflow
EXPECT_DEFAULT_MS = 5_000  # Playwright's own default for expect()


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui-s3")
    env = {"SIMPOST_RESULTS_ROOT": str(tmp), "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
           "AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES": CONFIG_FIELD}
    cluster = AirflowCluster(tmp / "airflow", dags_folder=REPO / "dags", plugins_folder=REPO / "plugins",
                             env_overrides=env, password=secrets.token_urlsafe(12))
    expect.set_options(timeout=ACTION_TIMEOUT_MS)  # a loaded 2-core machine; put back below
    try:
        cluster.start()
        with chromium() as browser:
            page = AirflowUI(browser, cluster.base_url)
            page.login(cluster.username, cluster.password)
            yield page
            page.close()
    finally:
        expect.set_options(timeout=EXPECT_DEFAULT_MS)
        cluster.stop()


def fields(s3, **config) -> dict:
    """The seven fields as a person fills them for a MinIO-like store."""
    return {"Backend name": "Lab S3", "Backend identifier": "s3-minio", "Backend token": s3.secret_access_key,
            "Backend config": json.dumps(s3.config(**config)), "Backend keep days": 10,
            "Backend description": "S3 on loopback (moto)", "Backend active": True}


def add(ui: AirflowUI, conn_id: str, values: dict, shot: str | None = None) -> None:
    dialog = ui.open_new_connection_form(conn_id)
    ui.fill_backend(dialog, values)
    if shot:
        ui.section(dialog, "Extra Fields")
        ui.shot(shot)
    ui.save(dialog)


def test_s3_backend_through_the_form_and_its_test_button(ui, s3_server):
    s3 = s3_server
    dialog = ui.open_new_connection_form("s3_form")
    for section, labels in (("Standard Fields", STANDARD_LABELS),
                            ("Extra Fields", [la for la in LABELS.values() if la not in STANDARD_LABELS])):
        ui.section(dialog, section)
        for label in labels:
            expect(ui.field(dialog, label)).to_be_visible()
    hint = " ".join(ui.field(dialog, "Backend identifier").locator("[data-part=helper-text]").all_inner_texts())
    assert "s3" in hint and "s3-minio" in hint, f"the hint names the s3 service: {hint!r}"
    ui.section(dialog, "Extra Fields")
    config_hint = " ".join(ui.field(dialog, "Backend config").locator("[data-part=helper-text]").all_inner_texts())
    assert all(key in config_hint for key in ("bucket", "access_key_id", "endpoint_url", "archive_storage_class"))
    ui.page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    wrong_secret = "wrong-secret-" + secrets.token_hex(8)
    add(ui, "s3_lab", fields(s3), shot="s3-connection-form")
    add(ui, "s3_wrong_secret", {**fields(s3), "Backend token": wrong_secret})
    add(ui, "s3_no_bucket", fields(s3, bucket="no-such-bucket"))

    with s3.auth():  # signatures checked, as S3 and MinIO do
        toast = ui.press_test("s3_lab")
        ui.shot("s3-test-success")
        assert "Test Connection Successful" in toast and f"bucket '{s3.bucket}' reachable" in toast, toast
        assert "no lifecycle rules" in toast
        toast = ui.press_test("s3_wrong_secret")
        ui.shot("s3-test-wrong-secret")
        assert "Test Connection Failed" in toast and "wrong secret access key (Backend token)" in toast, toast
        assert "connection 's3_wrong_secret'" in toast
        toast_bucket = ui.press_test("s3_no_bucket")
        assert "Test Connection Failed" in toast_bucket and "bucket 'no-such-bucket' does not exist" in toast_bucket
    for shown in (toast, toast_bucket, ui.text()):
        assert s3.secret_access_key not in shown and wrong_secret not in shown

    dialog = ui.open_edit_form("s3_lab")
    seen = []
    for section in ("Standard Fields", "Extra Fields", "Extra Fields JSON"):
        ui.section(dialog, section)
        seen.append(ui.text(dialog))
    assert s3.secret_access_key not in "\n".join(seen) and '"storage_backend_config": "***"' in seen[2]
    assert "Lab S3" in seen[1] and "s3-minio" in seen[1]
    ui.page.keyboard.press("Escape")
