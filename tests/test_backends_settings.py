"""Connection -> settings: every field, the forms the UI/CLI/env give them, and one clear error each."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from storage_backends import BackendError, open_backend, remote_name
from storage_backends.naming import is_remote_name, slugify
from storage_backends.settings import DropboxConfig, LocalConfig, SeafileConfig, SettingsError, from_connection

SECRET = "s3cr3t-value-never-shown"


def conn(extra, password=None, conn_id="backend_x", description=None):
    return SimpleNamespace(conn_id=conn_id, password=password, description=description, extra=extra)


def dropbox_extra(**overrides):
    extra = {
        "storage_backend": "Lab Dropbox",
        "storage_backend_id": "dropbox_oauth2",
        "storage_backend_config": json.dumps({"app_key": "key1", "app_secret": SECRET, "refresh_token": SECRET + "r"}),
        "storage_backend_keep_days": 30,
        "storage_backend_active": True,
    }
    extra.update(overrides)
    return extra


def test_ui_form_all_seven_fields():
    s = from_connection(conn(dropbox_extra(), description="the lab account"))
    assert (s.conn_id, s.name, s.identifier, s.service) == ("backend_x", "Lab Dropbox", "dropbox_oauth2", "dropbox")
    assert (s.keep_days, s.active, s.description) == (30, True, "the lab account")
    assert s.config == DropboxConfig(app_key="key1", app_secret=SECRET, refresh_token=SECRET + "r")
    assert s.config.folder == "/simpost"
    assert SECRET not in repr(s)
    assert set(s.secrets) == {SECRET, SECRET + "r"}


def test_cli_and_env_give_strings_and_json_text():
    """`airflow connections add --conn-extra` and AIRFLOW_CONN_* give a JSON string with string values."""
    extra = dropbox_extra(storage_backend_keep_days="7", storage_backend_active="false")
    extra["storage_backend_config"] = json.loads(extra["storage_backend_config"])  # nested object form
    s = from_connection(conn(json.dumps(extra)))
    assert (s.keep_days, s.active) == (7, False)
    assert s.config.refresh_token == SECRET + "r"


def test_airflow2_prefixed_keys_and_defaults():
    extra = {"extra__storage_backend__storage_backend_id": "local",
             "extra__storage_backend__storage_backend_config": '{"api_key": "k"}'}
    s = from_connection(conn(extra, password="127.0.0.1:8800", conn_id="lc"))
    assert s.name == "lc" and s.keep_days == 0 and s.active is True
    assert s.config == LocalConfig(server="http://127.0.0.1:8800", api_key="k")


def test_seafile_config_and_suffix():
    cfg = {"server": "https://seafile.example.org/", "token": SECRET, "repoid": "99B758E6-91ab-4265-b705-925367374cf0"}
    s = from_connection(conn({"storage_backend_id": "seafile-zfn", "storage_backend_config": json.dumps(cfg)}))
    assert s.config == SeafileConfig(server="https://seafile.example.org", repoid="99b758e6-91ab-4265-b705-925367374cf0",
                                     token=SECRET)
    assert s.service == "seafile"


def test_legacy_dropbox_token_in_password():
    s = from_connection(conn({"storage_backend_id": "dropbox"}, password=SECRET))
    assert s.config.access_token == SECRET and s.config.refresh_token is None


@pytest.mark.parametrize(
    "extra, password, field, words",
    [
        ({"storage_backend_id": "gdrive"}, None, "Backend identifier (storage_backend_id)", "unknown identifier"),
        ({"storage_backend_id": "dropboxx"}, None, "Backend identifier", "unknown identifier"),
        ({}, None, "Backend identifier", "missing"),
        (dropbox_extra(storage_backend_config='{"app_key": "k", "app_secret": "' + SECRET + '",'), None,
         "Backend config (storage_backend_config)", "not valid JSON"),
        (dropbox_extra(storage_backend_config=json.dumps({"app_key": "k", "app_secret": SECRET})), None,
         "Backend config", "'refresh_token'"),
        (dropbox_extra(storage_backend_keep_days=-1), None, "Backend keep days (storage_backend_keep_days)", ">= 0"),
        (dropbox_extra(storage_backend_keep_days="ten"), None, "Backend keep days", "whole number"),
        (dropbox_extra(storage_backend_active="maybe"), None, "Backend active", "true or false"),
        ({"storage_backend_id": "dropbox"}, None, "Backend config", "legacy access token"),
        ({"storage_backend_id": "seafile", "storage_backend_config": json.dumps({"server": "https://x", "token": SECRET})},
         None, "Backend config", "'repoid'"),
        ({"storage_backend_id": "local", "storage_backend_config": json.dumps({"api_key": SECRET})}, None,
         "Backend token", "host:port"),
        ({"storage_backend_id": "local", "storage_backend_config": json.dumps({"api_key": SECRET, "apikey": SECRET})},
         "h:1", "Backend config", "unknown key"),
        ({"storage_backend_id": "dropbox", "storage_backend_config": "[1, 2]"}, SECRET, "Backend config", "JSON object"),
    ],
)
def test_bad_definitions_give_one_clear_message(extra, password, field, words):
    with pytest.raises(SettingsError) as err:
        from_connection(conn(extra, password=password, conn_id="bad_one"))
    message = str(err.value)
    assert "'bad_one'" in message and field in message and words in message
    assert SECRET not in message and ("\n" not in message or "not valid JSON" in message)  # caret line
    assert isinstance(err.value, BackendError)


def test_extra_not_json_names_extra():
    with pytest.raises(SettingsError, match=r"'c1': extra: not valid JSON"):
        from_connection(conn("{not json " + SECRET, conn_id="c1"))


def test_inactive_backend_refuses_uploads(tmp_path):
    s = from_connection(conn(dropbox_extra(storage_backend_active=False), conn_id="old_box"))
    backend = open_backend(s)
    with pytest.raises(BackendError, match=r"'Lab Dropbox'.*'old_box'.*inactive.*uploads are refused"):
        backend.upload(str(tmp_path / "x.zip"), "x.zip", 0)


def test_remote_name_is_stable_and_recognised():
    sha = "ab" * 32
    name = remote_name("Aloha: 2 hosts, ρ=0.5 (final!)", "run-42.b", sha)
    assert name == "aloha-2-hosts-0-5-final_run-42.b_abababababab.zip"
    assert remote_name("Aloha: 2 hosts, ρ=0.5 (final!)", "run-42.b", sha.upper()) == name
    assert is_remote_name(name) and not is_remote_name("notes.txt")
    assert remote_name("", "r1", sha).startswith("simulation_r1_")
    assert len(slugify("x" * 500)) <= 60
    with pytest.raises(ValueError):
        remote_name("t", "../etc", sha)
    with pytest.raises(ValueError):
        remote_name("t", "r1", "nothex")
