"""storage_restore, as Airflow runs it (`airflow dags test`), on the archive tier of test_archive.py: a
restored copy comes back until its own keep days pass, a request for an archive with no copy left is
refused, two restores at once copy once. A file of its own so that it runs beside test_archive.py on
parallel workers (together they were the suite's longest file).
"""
from __future__ import annotations

import email
import hashlib
import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from aiosmtpd.controller import Controller
from emulators.fixtures import _seafile_server, seafile_emulator, settings_of  # noqa: F401  (fixtures)

from cluster import free_port
from helpers import dags_test
from results_check import validate_result
from simpost.catalog import Catalog
from storage_backends import open_backend
from test_archive import any_world, later, postprocess, states, world  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1800)]


def archive_one(env: dict, catalog: Catalog, simulation_id: str):
    postprocess(env, simulation_id)
    [archive] = catalog.archives(simulation_id=simulation_id)
    first = catalog.copy(archive.sha256, "hot")
    dags_test("storage_retention", {"reference_time": later(2)}, env)
    assert states(catalog, archive.sha256) == {"hot": "deleted", "cold": "archived"}
    return archive, first


class Inbox:
    """What the SMTP server received: (recipients, message text)."""

    def __init__(self):
        self.mails: list[tuple[list[str], str]] = []

    async def handle_DATA(self, server, session, envelope):
        self.mails.append((envelope.rcpt_tos, envelope.content.decode("utf-8", "replace")))
        return "250 OK"


class Simulator(BaseHTTPRequestHandler):
    bodies: list[tuple[str, dict]] = []

    def do_POST(self):
        Simulator.bodies.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def listeners():
    """A real SMTP server and a simulator's callback endpoint, as Airflow connections."""
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    simulator = ThreadingHTTPServer(("127.0.0.1", 0), Simulator)
    threading.Thread(target=simulator.serve_forever, daemon=True).start()
    Simulator.bodies = []
    try:
        yield inbox, Simulator.bodies, {
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps({
                "conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
                "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "simpost@test.local"}}),
            "AIRFLOW_CONN_SIMULATOR_API": json.dumps({"conn_type": "http", "host": "127.0.0.1", "schema": "http",
                                                      "port": simulator.server_address[1]})}
    finally:
        smtp.stop()
        simulator.shutdown()
        simulator.server_close()


def test_restore_brings_it_back_until_its_keep_days_pass(any_world, listeners):
    env, catalog, hot, cold, key = any_world
    inbox, callbacks, connections = listeners
    archive, first = archive_one(env, catalog, "restore-me")

    output = dags_test("storage_restore", {"simulation_id": "restore-me", "keep_days": 3, "callback_endpoint": "/done",
                                         "notification_email": "ana@lab.test"}, {**env, **connections})
    restored = catalog.copy(archive.sha256, "hot")
    assert restored.state == "present" and restored.link != first.link
    assert timedelta(days=2.9) < restored.expires - datetime.now(timezone.utc) < timedelta(days=3.1)
    assert hashlib.sha256(requests.get(restored.link, timeout=30).content).hexdigest() == archive.sha256
    assert f"restored on hot until {restored.expires.isoformat()}" in output
    [(path, body)] = callbacks
    assert path == "/done" and validate_result(body)["event"] == "restored"
    assert (body["link"], body["sha256"], body["backend"]) == (restored.link, archive.sha256, "hot")
    assert body["expires_at"] == restored.expires.isoformat()
    [(to, mail)] = inbox.mails
    message = email.message_from_string(mail)
    html = "".join(p.get_payload(decode=True).decode() for p in message.walk() if p.get_content_type() == "text/html")
    assert to == ["ana@lab.test"] and "archived results restored" in message["Subject"] and restored.link in html
    assert catalog.copy(archive.sha256, "cold").state == "archived"

    dags_test("storage_retention", {"reference_time": later(2)}, env)  # past hot's keep days, not its own
    assert states(catalog, archive.sha256) == {"hot": "present", "cold": "archived"}
    output = dags_test("storage_retention", {"reference_time": later(4)}, env)
    assert "would archive" not in output and "archived to cold" not in output
    assert states(catalog, archive.sha256) == {"hot": "deleted", "cold": "archived"}
    assert requests.get(restored.link, timeout=10).status_code == 404


def test_a_request_for_an_archive_with_no_copy_left_is_refused(world):
    env, catalog, hot, cold, key = world
    archive, _ = archive_one(env, catalog, "all-gone")
    catalog.record_copy(archive.sha256, "cold", "lost", last_error="gone")
    output = dags_test("storage_restore", {"sha256": archive.sha256}, env, ok=False)
    assert f"restore refused: archive {archive.sha256[:12]} of simulation all-gone has no copy left" in output
    assert states(catalog, archive.sha256) == {"hot": "deleted", "cold": "lost"}


def test_two_restores_at_once_copy_once(world, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from simpost.restore import restore
    env, catalog, hot, cold, key = world
    archive, _ = archive_one(env, catalog, "twice")
    backends = {b: open_backend(settings_of(b, json.loads(env[f"AIRFLOW_CONN_{b.upper()}"]))) for b in ("hot", "cold")}
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda n: restore(catalog, catalog.archive(archive.sha256), "hot", backends, 2,
                                                   tmp_path / f"w{n}", log=lambda m: None), range(2)))
    assert sorted(o.joined for o in outcomes) == [False, True]
    assert outcomes[0].copy.link == outcomes[1].copy.link
    assert [f.name for f in backends["hot"].list_uploads()] == [outcomes[0].copy.remote_name]
