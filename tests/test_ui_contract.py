"""What the UI fixes rest on, below the browser: the local backend's fields, the Test button's request
rewriting, the retention DAG's forms and messages. The browser suite (test_ui_browser.py) shows the
same through Airflow's UI; these pin each piece down and run in seconds."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import httpx
import pytest
from emulators.fixtures import LOCAL_CLOUD_API_KEY, local_cloud_url  # noqa: F401  (fixture)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conftest import REPO
from helpers import dags_test
from storage_backends import open_backend
from storage_backends.airflow_plugin import TEST_PATH, ConnectionTestMiddleware, tested_connection_id
from storage_backends.provider import CONFIG_FIELD
from storage_backends.settings import LocalConfig, SettingsError, from_connection

KEY = "a-local-cloud-api-key-0f3c"
SCRIPTS = str(REPO / "scripts")


def local(config: dict | None, token: str | None = None, conn_id: str = "lc"):
    extra = {"storage_backend_id": "local"}
    if config is not None:
        extra[CONFIG_FIELD] = json.dumps(config)
    return SimpleNamespace(conn_id=conn_id, password=token, description=None, extra=json.dumps(extra))


@pytest.mark.parametrize("config, token", [
    ({"server": "127.0.0.1:8976"}, KEY),  # the form's way: address in the config, key in the masked token
    ({"server": "http://127.0.0.1:8976/", "api_key": KEY}, None),
])
def test_local_server_lives_in_the_config(config, token):
    settings = from_connection(local(config, token))
    assert settings.config == LocalConfig(server="http://127.0.0.1:8976", api_key=KEY)
    assert not settings.config.server_in_token
    assert settings.secrets == (KEY,)  # the address is not a secret, so log masking leaves links alone


def test_local_server_in_the_token_still_works():
    settings = from_connection(local({"api_key": KEY}, "127.0.0.1:8976"))
    assert settings.config == LocalConfig(server="http://127.0.0.1:8976", api_key=KEY)
    assert settings.config.server_in_token


@pytest.mark.parametrize("config, token, field", [
    ({"server": "127.0.0.1:8976"}, None, "Backend token (storage_backend_token)"),
    (None, KEY, "Backend config (storage_backend_config)"),
    ({"server": "not a url at all"}, KEY, "Backend config (storage_backend_config)"),
    ({"server": "127.0.0.1:8976", "apikey": KEY}, None, "Backend config (storage_backend_config)"),
])
def test_incomplete_local_definitions_name_the_field(config, token, field):
    with pytest.raises(SettingsError) as err:
        from_connection(local(config, token, conn_id="lc_bad"))
    assert "'lc_bad'" in str(err.value) and field in str(err.value) and KEY not in str(err.value)


def test_check_tells_an_earlier_local_definition_how_links_become_readable(local_cloud_url):  # noqa: F811
    earlier = from_connection(local({"api_key": LOCAL_CLOUD_API_KEY}, local_cloud_url))
    ok, message = open_backend(earlier).check()
    assert ok and "Move the server to Backend config" in message
    current = from_connection(local({"server": local_cloud_url}, LOCAL_CLOUD_API_KEY))
    ok, message = open_backend(current).check()
    assert ok and "Move" not in message and local_cloud_url in message


def test_check_backend_refuses_a_missing_or_switched_off_backend_by_name(monkeypatch, local_cloud_url):  # noqa: F811
    from storage_backends.hook import StorageBackendHook

    with pytest.raises(SettingsError, match=r"'no_such_box': the run's storage_backend: no such connection"):
        StorageBackendHook("no_such_box").upload_settings()
    extra = {"storage_backend_id": "local", CONFIG_FIELD: json.dumps({"server": local_cloud_url}),
             "storage_backend_active": False}
    monkeypatch.setenv("AIRFLOW_CONN_SWITCHED_OFF", json.dumps({"conn_type": "storage_backend", "password": KEY,
                                                                "extra": extra}))
    with pytest.raises(SettingsError, match=r"'switched_off': Backend active \(storage_backend_active\): off"):
        StorageBackendHook("switched_off").upload_settings()
    extra["storage_backend_active"] = True
    monkeypatch.setenv("AIRFLOW_CONN_SWITCHED_ON", json.dumps({"conn_type": "storage_backend", "password": KEY,
                                                               "extra": extra}))
    assert StorageBackendHook("switched_on").upload_settings().config.server == local_cloud_url


def test_test_button_warns_where_airflow_would_show_backend_config(monkeypatch, local_cloud_url):  # noqa: F811
    """This test process leaves [core] sensitive_var_conn_names unset, like a deployment that forgot it."""
    from storage_backends.hook import StorageBackendHook

    monkeypatch.setenv("AIRFLOW_CONN_LC_WARN", json.dumps({
        "conn_type": "storage_backend", "password": LOCAL_CLOUD_API_KEY,
        "extra": {"storage_backend_id": "local", CONFIG_FIELD: json.dumps({"server": local_cloud_url})}}))
    ok, message = StorageBackendHook("lc_warn").test_connection()
    assert ok and f"set [core] sensitive_var_conn_names = {CONFIG_FIELD}" in message


def _echo(request: Request, body: bytes):
    """Stands in for Airflow's test route: answers with the body it got and the id the hook would name."""
    return JSONResponse({"body": body.decode(), "tested": tested_connection_id.get()})


async def _route(request: Request):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_echo, request, await request.body())  # like Airflow's plain-def route


class _Client:
    """POSTs straight into the ASGI app (route behind the middleware), as the api-server would run it."""

    def __init__(self):
        app = Starlette(routes=[Route(TEST_PATH, _route, methods=["POST"]), Route("/other", _route, methods=["POST"])])
        app.add_middleware(ConnectionTestMiddleware)
        self.transport = httpx.ASGITransport(app=app)

    def post(self, path: str, **kwargs) -> httpx.Response:
        async def call():
            async with httpx.AsyncClient(transport=self.transport, base_url="http://airflow") as c:
                return await c.post(path, **kwargs)

        return asyncio.run(call())


@pytest.fixture(scope="module")
def client():
    return _Client()


def test_test_button_port_zero_is_dropped_and_the_real_id_kept(client):
    sent = {"connection_id": "lab_box", "conn_type": "storage_backend", "port": 0, "password": "***", "host": ""}
    answer = client.post(TEST_PATH, json=sent).json()
    assert json.loads(answer["body"]) == {k: v for k, v in sent.items() if k != "port"}
    assert answer["tested"] == "lab_box"


@pytest.mark.parametrize("path, sent", [
    (TEST_PATH, {"connection_id": "pg", "conn_type": "postgres", "port": 0}),  # other types: Airflow decides
    (TEST_PATH, {"connection_id": "lab_box", "conn_type": "storage_backend", "port": 8976}),  # a real port
    ("/other", {"connection_id": "lab_box", "conn_type": "storage_backend", "port": 0}),
])
def test_test_button_other_requests_pass_unchanged(client, path, sent):
    answer = client.post(path, json=sent).json()
    assert json.loads(answer["body"]) == sent
    assert answer["tested"] == (sent["connection_id"] if path == TEST_PATH and sent["conn_type"] == "storage_backend"
                                else None)


def test_test_button_body_that_is_not_json_passes_unchanged(client):
    answer = client.post(TEST_PATH, content=b"{not json", headers={"Content-Type": "application/json"}).json()
    assert answer == {"body": "{not json", "tested": None}


@pytest.mark.airflow
def test_retention_says_when_it_finds_no_backend_and_reports_a_failed_listing(airflow_db):
    nothing = dags_test("storage_retention", {"dry_run": None, "backends": None, "stale_work_dir_days": None}, {}, ok=None)
    assert "no storage backend found: there is no airflow_api connection" in nothing
    assert "the Variable storage_backends is not set" in nothing
    assert "retention: no backend, nothing cleaned" in nothing

    unknown = dags_test("storage_retention", {"backends": ["nope"]}, {"AIRFLOW_VAR_STORAGE_BACKENDS": json.dumps(["lab"])},
                        ok=None)
    assert "backends ['nope'] are not storage_backend connections (known: ['lab'])" in unknown
    assert "listing the backends failed (see list_backends); nothing was cleaned" in unknown
    assert "TypeError" not in unknown


def _scripts(code: str, **env: str) -> list:
    """Run `code` with scripts/ importable and only the given SIMPOST_* variables set; its JSON output."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIMPOST_")}
    done = subprocess.run([sys.executable, "-c", code], cwd=SCRIPTS, env={**clean, **env}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


ADDRESSES = ("import localenv as e, json; print(json.dumps([e.API_HOST, e.API_PORT, e.CLOUD_HOST, e.CLOUD_PORT,"
             " e.API_URL, e.CLOUD_URL, e.standalone_env('pw')['AIRFLOW__API__HOST']]))")


def test_make_airflow_listens_on_loopback_with_a_fixed_local_cloud_port():
    assert _scripts(ADDRESSES) == ["127.0.0.1", 8080, "127.0.0.1", 8976, "http://127.0.0.1:8080",
                                   "http://127.0.0.1:8976", "127.0.0.1"]
    assert _scripts(ADDRESSES, SIMPOST_AIRFLOW_HOST="0.0.0.0", SIMPOST_LOCAL_CLOUD_PORT="9100") == [
        "0.0.0.0", 8080, "127.0.0.1", 9100, "http://127.0.0.1:8080", "http://127.0.0.1:9100", "0.0.0.0"]


def test_make_airflow_environment_enables_test_button_masking_and_retention_listing():
    env = _scripts("import localenv as e, json; print(json.dumps(e.standalone_env('pw-1')))")
    assert env["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
    assert CONFIG_FIELD in env["AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES"].split(",")
    api = json.loads(env["AIRFLOW_CONN_AIRFLOW_API"])
    assert (api["host"], api["port"], api["login"], api["password"]) == ("127.0.0.1", 8080, "admin", "pw-1")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8080/execution/"


def test_admin_password_is_kept_and_shown_again(tmp_path):
    """After a crash the file exists: the same password must come back (Airflow would not print it)."""
    code = f"import localenv as e, json, pathlib; p = pathlib.Path({str(tmp_path / 'pw.json')!r}); " \
           "print(json.dumps([e.admin_password(p), e.admin_password(p)]))"
    first, again = _scripts(code)
    assert first == again and len(first) >= 12
    assert _scripts(code) == [first, first]
    assert json.loads((tmp_path / "pw.json").read_text()) == {"admin": first}


class _SlowHealth(BaseHTTPRequestHandler):
    """An api-server still booting: the first health check answers after the client gave up."""

    calls = 0

    def do_GET(self):
        type(self).calls += 1
        if self.calls == 1:
            time.sleep(1.5)  # longer than the client waits (answer_s), as a loaded api-server does
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_wait_for_api_survives_a_health_check_that_times_out():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHealth)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    standalone = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    sys.path.insert(0, SCRIPTS)
    try:
        from airflow_up import wait_for_api

        waited = wait_for_api(standalone, f"http://127.0.0.1:{server.server_address[1]}", deadline_s=60, answer_s=0.5)
        assert _SlowHealth.calls >= 2 and waited < 60
    finally:
        sys.path.remove(SCRIPTS)
        standalone.kill()
        standalone.wait()
        server.shutdown()
