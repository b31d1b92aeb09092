"""Inputs as OPS users have them: "Config X" runconfigs, the seed's Seafile config without a server,
single-quoted JSON; and config JSON that cannot be read, shown at the character without its secrets."""
from __future__ import annotations

import json

import pytest
from emulators.fixtures import (  # noqa: F401  (fixtures)
    SEAFILE_REPO,
    SEAFILE_TOKEN,
    _seafile_server,
    seafile_emulator,
    settings_of,
    write_file,
)
from omnetpp_results import ResultsError, parse
from simpost.conf import runconfig_name
from storage_backends import open_backend
from storage_backends.settings import SEAFILE_SERVER_ENV, SettingsError

SECRET = "s3cr3t-T0ken-value"


@pytest.mark.parametrize("given, name", [
    ("Benchmark-04", "Benchmark-04"), ("Config Benchmark-04", "Benchmark-04"), ("  Config   PureAloha1 ", "PureAloha1"),
    ("[Config Net10]", "Net10"), ("ConfigA", "ConfigA"), ("Config", "Config"), ("", None), ("  ", None), (None, None),
])
def test_runconfig_with_or_without_the_config_prefix(given, name):
    assert runconfig_name(given) == name


def test_the_engine_reads_the_run_of_an_ops_style_runconfig(shared_results, tmp_path):
    summary = parse(shared_results / "aloha-PureAloha1", tmp_path / "p", runconfig=runconfig_name("Config PureAloha1"))
    assert summary["runs"] == ["PureAloha1-0-20261121-21:41:33-15150"]
    with pytest.raises(ResultsError, match="no run of config 'Config PureAloha1'"):
        parse(shared_results / "aloha-PureAloha1", tmp_path / "q", runconfig="Config PureAloha1")


def _seafile(config: str, conn_id: str = "sea_seed") -> dict:
    return {"conn_type": "storage_backend", "extra": {"storage_backend_id": "seafile",
                                                      "storage_backend_config": config}}


def test_seed_seafile_config_without_server_names_where_the_server_goes(monkeypatch):
    monkeypatch.delenv(SEAFILE_SERVER_ENV, raising=False)
    with pytest.raises(SettingsError) as err:
        settings_of("sea_seed", _seafile(json.dumps({"token": SECRET, "repoid": SEAFILE_REPO})))
    assert SEAFILE_SERVER_ENV in str(err.value) and "'server'" in str(err.value) and SECRET not in str(err.value)
    monkeypatch.setenv(SEAFILE_SERVER_ENV, "not a url")
    with pytest.raises(SettingsError, match=f"{SEAFILE_SERVER_ENV} must be host:port or an http"):
        settings_of("sea_seed", _seafile(json.dumps({"token": SECRET, "repoid": SEAFILE_REPO})))


def test_seed_seafile_config_uploads_once_the_server_is_set(seafile_emulator, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv(SEAFILE_SERVER_ENV, seafile_emulator.base_url)
    seed = "{'token': '%s', 'repoid': '%s'}" % (SEAFILE_TOKEN, SEAFILE_REPO)  # as OPS's seed, single quotes too
    settings = settings_of("sea_seed", _seafile(seed))
    assert settings.config.server == seafile_emulator.base_url.rstrip("/")
    upload = open_backend(settings).upload(str(write_file(tmp_path / "r.zip", 2000)), "r.zip", 0)
    assert seafile_emulator.files[upload.remote_id]["data"] == (tmp_path / "r.zip").read_bytes()
    monkeypatch.setenv(SEAFILE_SERVER_ENV, "http://127.0.0.1:9")  # the config's own server wins
    own = json.dumps({"server": seafile_emulator.base_url, "token": SEAFILE_TOKEN, "repoid": SEAFILE_REPO})
    assert settings_of("sea_own", _seafile(own)).config.server == seafile_emulator.base_url.rstrip("/")


@pytest.mark.parametrize("text, parsed", [
    ("{'token': 'a\"b', 'repoid': 'x'}", {"token": 'a"b', "repoid": "x"}),
    ("{'token': 'it\\'s', \"folder\": \"/o'k\"}", {"token": "it's", "folder": "/o'k"}),
    ('{"keep": 3, \'nested\': {\'a\': [1, \'b\']}}', {"keep": 3, "nested": {"a": [1, "b"]}}),
])
def test_single_quoted_json_is_read_as_ops_read_it(text, parsed):
    from storage_backends.settings import _json_object

    assert _json_object("c", "storage_backend_config", text) == parsed


@pytest.mark.parametrize("text, at, message", [
    ('{"token": "%s", "repoid": "abc" "folder": "/x"}' % SECRET, '"folder"', "Expecting ',' delimiter"),
    ('{\n  "token": "%s",\n  repoid: "abc"\n}' % SECRET, "repoid", "Expecting property name"),
    ("{'token': '%s', 'repoid': 'abc',}" % SECRET, "}", "Expecting property name"),
    ('{"token": "%s"' % SECRET + " " * 90 + "]", "]", "Expecting ',' delimiter"),
])
def test_unreadable_config_json_points_at_the_character_and_hides_the_values(text, at, message):
    index = text.index(at)
    line, column = text[:index].count("\n") + 1, index - (text.rfind("\n", 0, index) + 1) + 1
    with pytest.raises(SettingsError) as err:
        settings_of("broken", _seafile(text))
    first, excerpt, caret = str(err.value).split("\n")
    assert first.startswith("storage backend connection 'broken': Backend config (storage_backend_config): "
                            f"not valid JSON: {message}") and first.endswith(f"at line {line} column {column}:")
    assert SECRET not in str(err.value) and "abc" not in excerpt
    assert excerpt[:4] == caret[:4] == "    " and caret.strip() == "^"
    shown = "*" if text[index].isalnum() else text[index]  # words are masked, the structure is not
    assert excerpt[caret.index("^")] == shown  # the caret sits under the offending character


def test_unreadable_extra_is_shown_the_same_way():
    from types import SimpleNamespace

    from storage_backends.settings import from_connection

    with pytest.raises(SettingsError, match=r"extra: not valid JSON: .* line 1 column 2:\n    \{\*+\n     \^"):
        from_connection(SimpleNamespace(conn_id="c", password=None, description="", extra="{" + SECRET))


@pytest.fixture(scope="module")
def params():
    import copy

    from airflow.dag_processing.dagbag import DagBag

    from conftest import REPO

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["simulation_postprocess"]

    def resolve(**conf):
        resolved = copy.deepcopy(dag.params)  # the DAG's Param objects are shared; never mutate them
        resolved.update({"simulation_id": "s", "results_dir": "d", "storage_backend": "b", **conf})
        return resolved.validate()
    return resolve


def test_new_params_default_as_ops_did(params):
    resolved = params()
    assert (resolved["callback_events"], resolved["graphs"], resolved["resources"], resolved["run_timeout"]) == (
        "final", "statistic", None, 43200)
    assert params(resources={"peak_sim_ram_bytes": 2e9, "sim_wall_seconds": 3600})["resources"]["sim_wall_seconds"] == 3600


@pytest.mark.parametrize("bad, param", [
    ({"resources": {"peak_ram": 1}}, "resources"),  # unknown key
    ({"resources": {"peak_disk_bytes": -1}}, "resources"),
    ({"resources": {"sim_wall_seconds": "an hour"}}, "resources"),
    ({"resources": [1, 2]}, "resources"),
    ({"callback_events": "some"}, "callback_events"),
    ({"graphs": "pdf"}, "graphs"),
    ({"run_timeout": 0}, "run_timeout"),
    ({"run_timeout": "12h"}, "run_timeout"),
])
def test_bad_values_of_the_new_params_are_refused_naming_them(params, bad, param):
    from airflow.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match=param):
        params(**bad)
