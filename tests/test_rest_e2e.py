"""simulation_postprocess as users meet it: api-server, scheduler and dag-processor running for real,
triggered through the REST API by the simulator client, mailing a real SMTP server, calling back a
real HTTP server and uploading to a real local_cloud."""
from __future__ import annotations

import email
import json
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from aiosmtpd.controller import Controller
from local_cloud.client import LocalCloudClient
from local_cloud.testing import LocalCloudServer
from simpost_client.client import Simpost, SimpostError

from cluster import AirflowCluster, _deadline_loop, free_port
from conftest import POOLS, REPO
from helpers import ARCHIVE_LAYOUT, local_backend_conn, verified_archive

pytestmark = pytest.mark.airflow
DAG = "simulation_postprocess"


class Mailbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self):
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[email.message.Message]:
        return [m for m in self.messages if m["To"] == address]


def body_of(message: email.message.Message) -> str:
    return "".join(part.get_payload(decode=True).decode() for part in message.walk()
                   if part.get_content_type() == "text/html")


class Callbacks(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Callbacks.received.append((self.path, json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def world(tmp_path_factory, shared_results):
    tmp = tmp_path_factory.mktemp("rest-e2e")
    key = secrets.token_urlsafe(24)
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    callbacks = ThreadingHTTPServer(("127.0.0.1", 0), Callbacks)
    threading.Thread(target=callbacks.serve_forever, daemon=True).start()
    cloud = LocalCloudServer(tmp / "cloud", key)
    cloud.start()
    env = {
        "SIMPOST_RESULTS_ROOT": str(shared_results),
        "SIMPOST_WORK_DIR": str(tmp / "work"),
        "SIMPOST_RETRY_DELAY": "2",
        "AIRFLOW_CONN_LOCAL_E2E": local_backend_conn(cloud.url, key),
        "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "simpost@test.local"}}),
        "AIRFLOW_CONN_SIMULATOR_API": json.dumps({
            "conn_type": "http", "host": "127.0.0.1", "port": callbacks.server_address[1], "schema": "http"}),
    }
    cluster = AirflowCluster(tmp / "airflow", dags_folder=REPO / "dags", plugins_folder=REPO / "plugins",
                             env_overrides=env, pools=POOLS, parallelism=8)
    try:
        cluster.start(wait_for_dags=[DAG])
        client = Simpost(cluster.base_url, cluster.username, cluster.password)
        yield cluster, client, mailbox, cloud, LocalCloudClient(cloud.url, key), tmp
    finally:
        cluster.stop()
        cloud.stop()
        smtp.stop()
        callbacks.shutdown()


def conf(simulation_id: str, results_dir: str = "aloha-PureAloha1", **more) -> dict:
    return {"simulation_id": simulation_id, "title": "REST run", "results_dir": results_dir,
            "storage_backend": "local_e2e", "summarizing_precision": 60,
            "notification_email": f"{simulation_id}@lab.test", "callback_endpoint": f"/done/{simulation_id}",
            **more}


def uploads_of(cloud_client, simulation_id: str) -> list[dict]:
    return [f for f in cloud_client.list() if f"_{simulation_id}_" in f["name"]]


def callbacks_for(simulation_id: str) -> list[dict]:
    return [body for path, body in Callbacks.received if path == f"/done/{simulation_id}"]


def test_triggered_run_uploads_mails_and_calls_back(world):
    cluster, client, mailbox, _, cloud_client, _ = world
    run_id = client.trigger(conf("rest-ok"))
    seen = []
    assert client.wait(run_id, timeout=300, poll=1, progress=seen.append)["state"] == "success", cluster.tails()
    assert "upload: success" in seen
    uploaded = client.upload(run_id)
    assert [f["link"] for f in uploads_of(cloud_client, "rest-ok")] == [uploaded["link"]]
    assert ARCHIVE_LAYOUT <= verified_archive(requests.get(uploaded["link"], timeout=30).content)

    mails = mailbox.to("rest-ok@lab.test")
    assert len(mails) == 1 and "results ready" in mails[0]["Subject"] and "REST run" in mails[0]["Subject"]
    assert uploaded["link"] in body_of(mails[0])
    [callback] = callbacks_for("rest-ok")
    assert callback["state"] == "success" and callback["link"] == uploaded["link"]
    assert callback["sha256"] == uploaded["sha256"] and callback["size"] == uploaded["size"]
    assert callback["simrun"]["events"] == 38516  # the final status block of run0.stdout.log

    links = requests.get(f"{cluster.base_url}/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/upload/links",
                         headers={"Authorization": f"Bearer {cluster.token()}"}, timeout=10).json()
    assert links.get("extra_links", links).get("Share link") == uploaded["link"]
    work = world[5] / "work"
    assert not work.exists() or list(work.iterdir()) == []  # cleanup left nothing behind


@pytest.mark.parametrize("bad, param", [({"simulation_id": "no spaces allowed"}, "simulation_id"),
                                        ({"summarizing_precision": -1}, "summarizing_precision")])
def test_bad_conf_is_refused_with_400_naming_the_param(world, bad, param):
    _, client, *_ = world
    with pytest.raises(SimpostError, match=rf"HTTP 400.*{param}"):
        client.trigger({**conf("rest-bad"), **bad})


@pytest.mark.parametrize("simulation_id, results_dir, reason", [
    ("rest-outside", "../../../etc", "'..'"),
    ("rest-empty", "routing-Net60StoreAndForward-all-LOG-ONLY", "result"),
])
def test_collect_failure_notifies_and_uploads_nothing(world, simulation_id, results_dir, reason):
    cluster, client, mailbox, _, cloud_client, _ = world
    run_id = client.trigger(conf(simulation_id, results_dir))
    assert client.wait(run_id, timeout=300, poll=1)["state"] == "failed"
    states = {ti["task_id"]: ti["state"] for ti in client.task_instances(run_id)}
    assert states["collect"] == "failed" and states["upload"] == "upstream_failed"
    assert states["cleanup"] == "success"
    assert reason in cluster.task_log(DAG, run_id, "collect")
    assert uploads_of(cloud_client, simulation_id) == []
    [mail] = mailbox.to(f"{simulation_id}@lab.test")
    assert "failed" in mail["Subject"] and "collect" in body_of(mail)
    [callback] = callbacks_for(simulation_id)
    assert callback["state"] == "failed" and callback["failed_task"] == "collect" and reason in callback["reason"]


def test_upload_failing_once_succeeds_on_retry_with_one_remote_file(world):
    cluster, client, _, cloud, cloud_client, _ = world
    cloud.stop()
    try:
        run_id = client.trigger(conf("rest-retry"))
        for _ in _deadline_loop(300, interval=0.5):
            if any(t["state"] in ("up_for_retry", "failed") for t in cluster.task_tries(DAG, run_id, "upload")):
                break
        else:
            raise AssertionError(f"the upload never failed while local_cloud was down\n{cluster.tails()}")
    finally:
        cloud.start()
    assert client.wait(run_id, timeout=300, poll=1)["state"] == "success", cluster.tails()
    assert len(cluster.task_tries(DAG, run_id, "upload")) >= 2
    assert len(uploads_of(cloud_client, "rest-retry")) == 1


def test_five_simultaneous_runs_all_succeed_with_distinct_archives(world):
    _, client, _, _, cloud_client, _ = world
    ids = [f"rest-many-{i}" for i in range(5)]
    dirs = ["aloha-PureAloha1", "aloha-SlottedAloha2", "routing-Net10", "routing-Net5SaturatedQueue",
            "aloha-PureAloha2-sqlite"]
    run_ids = [client.trigger(conf(i, d)) for i, d in zip(ids, dirs)]
    with ThreadPoolExecutor(5) as pool:
        states = list(pool.map(lambda r: client.wait(r, timeout=600, poll=2)["state"], run_ids))
    assert states == ["success"] * 5
    uploaded = [client.upload(r) for r in run_ids]
    assert len({u["sha256"] for u in uploaded}) == 5 and len({u["link"] for u in uploaded}) == 5
    assert all(len(uploads_of(cloud_client, i)) == 1 for i in ids)

