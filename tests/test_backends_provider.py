"""The connection type as Airflow sees it: provider discovery, the UI's hook_meta, the Test button."""
from __future__ import annotations

import json
import subprocess

import pytest
from conftest import AIRFLOW
from emulators.fixtures import (  # noqa: F401  (fixtures)
    SEAFILE_TOKEN,
    _seafile_server,
    seafile_conn_json,
    seafile_emulator,
)

SEVEN_LABELS = {"Backend name", "Backend identifier", "Backend token", "Backend config", "Backend keep days",
                "Backend description", "Backend active"}


@pytest.fixture
def all_admins(monkeypatch):
    """SimpleAuthManager without login for the in-process api-server app (read per request)."""
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")


@pytest.mark.airflow
def test_hook_meta_route_of_the_api_server_shows_the_form(airflow_db, all_admins):
    """GET /ui/connections/hook_meta on Airflow's own FastAPI app, as the connection form reads it."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app("core")) as client:
        response = client.get("/ui/connections/hook_meta")
    assert response.status_code == 200, response.text[:500]
    (meta,) = [m for m in response.json() if m["connection_type"] == "storage_backend"]
    assert meta["hook_class_name"] == "storage_backends.hook.StorageBackendHook"

    extra = meta["extra_fields"]
    standard = meta["standard_fields"]
    labels = {f["schema"]["title"] for f in extra.values()} | {
        standard[k]["title"] for k in ("password", "description")}
    assert labels == SEVEN_LABELS
    assert set(extra) == {"storage_backend", "storage_backend_id", "storage_backend_config",
                          "storage_backend_keep_days", "storage_backend_active"}
    assert extra["storage_backend_config"]["schema"]["format"] == "password", "Backend config is sensitive"
    assert extra["storage_backend_keep_days"]["schema"]["minimum"] == 0
    assert extra["storage_backend_active"]["value"] is True
    for service in ("dropbox:", "seafile:", "local:"):
        assert service in extra["storage_backend_config"]["description"]
    assert all(standard[k]["hidden"] for k in ("host", "port", "login", "url_schema"))
    assert "local API key" in standard["password"]["placeholder"]


def test_providers_manager_marks_config_sensitive():
    """What the api-server also uses to mask the field when a connection is read back."""
    from airflow.providers_manager import ProvidersManager

    widgets = ProvidersManager().connection_form_widgets
    assert widgets["extra__storage_backend__storage_backend_config"].is_sensitive
    assert not widgets["extra__storage_backend__storage_backend_keep_days"].is_sensitive


@pytest.mark.airflow
def test_airflow_providers_hooks_lists_the_type():
    done = subprocess.run([AIRFLOW, "providers", "hooks", "--output", "json"], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    hooks = {h["connection_type"]: h for h in json.loads(done.stdout[done.stdout.index("["):])}
    assert hooks["storage_backend"]["class"] == "storage_backends.hook.StorageBackendHook"
    assert hooks["storage_backend"]["package_name"] == "simpost"
    assert hooks["storage_backend"]["conn_id_attribute_name"] == "storage_backend_conn_id"


def test_test_button_checks_the_service(seafile_emulator, monkeypatch):
    from storage_backends.hook import StorageBackendHook

    monkeypatch.setenv("AIRFLOW_CONN_SEA_OK", json.dumps(seafile_conn_json(seafile_emulator.base_url)))
    monkeypatch.setenv("AIRFLOW_CONN_SEA_BAD_TOKEN",
                       json.dumps(seafile_conn_json(seafile_emulator.base_url, token="e" * 40)))
    ok, message = StorageBackendHook("sea_ok").test_connection()
    assert ok and "library 'Simulations' writable" in message

    ok, message = StorageBackendHook("sea_bad_token").test_connection()
    assert not ok and "HTTP 401" in message and "e" * 40 not in message and SEAFILE_TOKEN not in message


def test_test_button_reports_a_bad_definition(monkeypatch):
    from storage_backends.hook import StorageBackendHook

    conn = {"conn_type": "storage_backend", "extra": {"storage_backend_id": "ftp"}}
    monkeypatch.setenv("AIRFLOW_CONN_WRONG_KIND", json.dumps(conn))
    ok, message = StorageBackendHook("wrong_kind").test_connection()
    assert not ok and "'wrong_kind'" in message and "Backend identifier" in message


def test_hook_settings_through_airflow_connection(monkeypatch, seafile_emulator):
    """An env-var connection with the extra as a JSON string and keep days/active as strings."""
    from storage_backends.hook import StorageBackendHook

    conn = seafile_conn_json(seafile_emulator.base_url)
    conn["extra"] |= {"storage_backend_keep_days": "21", "storage_backend_active": "false"}
    conn["extra"] = json.dumps(conn["extra"])
    monkeypatch.setenv("AIRFLOW_CONN_SEA_STRINGS", json.dumps(conn))
    hook = StorageBackendHook("sea_strings")
    assert (hook.settings.keep_days, hook.settings.active, hook.settings.service) == (21, False, "seafile")
    assert hook.settings.description == "emulated Seafile"
