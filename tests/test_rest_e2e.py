"""simulation_postprocess as users meet it: api-server, scheduler and dag-processor running for real,
triggered through the REST API by the simulator client, mailing a real SMTP server, calling back a
real HTTP server and uploading to a real local_cloud."""
from __future__ import annotations

import contextlib
import email
import io
import json
import os
import re
import secrets
import shutil
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
import requests
from aiosmtpd.controller import Controller
from local_cloud.client import LocalCloudClient
from local_cloud.testing import LocalCloudServer
from omnetpp_results.selection import load_ops
from simpost.stage import STAGES
from simpost_client.__main__ import main as simpost_cli
from simpost_client.client import Simpost, SimpostError

from cluster import AirflowCluster, _deadline_loop, free_port
from conftest import POOLS, REPO
from helpers import ARCHIVE_LAYOUT, local_backend_conn, verified_archive
from ops_network import NETWORK, write_ops_results
from results_check import sca_scalars, validate_result

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
    held: dict[str, threading.Event] = {}  # path -> released: its "start" callback waits for it

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Callbacks.received.append((self.path, body))
        if self.path in Callbacks.held and body.get("event") == "start":
            Callbacks.held[self.path].wait(timeout=300)  # a slow simulator: the stage waits on its answer
        try:
            self.send_response(204)
            self.end_headers()
        except OSError:  # the caller is gone (its task was killed meanwhile)
            pass

    def log_message(self, *args):
        pass


USED = ["aloha-PureAloha1", "aloha-SlottedAloha2", "routing-Net10", "routing-Net5SaturatedQueue",
        "aloha-PureAloha2-sqlite", "routing-Net60StoreAndForward-all-LOG-ONLY"]
OPS_DIR = "ops-Benchmark-04"
#: a public set whose .vec was committed mid-write (cut at 4096 bytes): a run that ends with a warning
CUT_SET = "EDGE__giacomoni__ndp__truncated-4096"


def _link_or_copy(src: str, dst: str) -> str:
    """Hard links keep the files' mtimes, which the .vci fingerprints need; a copy keeps them too."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def results_root(root: Path, shared_results: Path) -> Path:
    """The results root of these runs: the shared OMNeT++ sets (linked, never copied into the repo) and
    a generated OPS network run."""
    for name in USED:
        shutil.copytree(shared_results / name, root / name, copy_function=_link_or_copy)
    shutil.copytree(shared_results.parent / "omnetpp-results-public" / CUT_SET, root / CUT_SET,
                    copy_function=_link_or_copy, ignore=shutil.ignore_patterns("expected"))
    write_ops_results(root / OPS_DIR, seed=15)
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory, shared_results):
    tmp = tmp_path_factory.mktemp("rest-e2e")
    root = results_root(tmp / "results", shared_results)
    key = secrets.token_urlsafe(24)
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    callbacks = ThreadingHTTPServer(("127.0.0.1", 0), Callbacks)
    threading.Thread(target=callbacks.serve_forever, daemon=True).start()
    cloud = LocalCloudServer(tmp / "cloud", key)
    cloud.start()
    api_port, password = free_port(), secrets.token_urlsafe(12)
    env = {
        "SIMPOST_RESULTS_ROOT": str(root),
        "AIRFLOW_CONN_AIRFLOW_API": json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": api_port,
                                                "schema": "http", "login": "admin", "password": password}),
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
                             env_overrides=env, pools=POOLS, parallelism=8, api_port=api_port, password=password)
    try:
        cluster.start(wait_for_dags=[DAG])
        client = Simpost(cluster.base_url, cluster.username, cluster.password)
        yield cluster, client, mailbox, cloud, LocalCloudClient(cloud.url, key), tmp
    finally:
        for held in Callbacks.held.values():
            held.set()
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


def callbacks_for(simulation_id: str, endpoint: str = "/done") -> list[dict]:
    """What the simulator heard about a run, in arrival order, each body checked against the schema."""
    return [validate_result(body) for path, body in Callbacks.received if path == f"{endpoint}/{simulation_id}"]


def xcom_result(client: Simpost, run_id: str) -> dict:
    return validate_result(client.result(run_id))


def archive_member(link: str, name: str) -> str:
    with zipfile.ZipFile(io.BytesIO(requests.get(link, timeout=30).content)) as z:
        return z.read(name).decode()


def test_triggered_run_uploads_mails_and_calls_back(world):
    cluster, client, mailbox, _, cloud_client, _ = world
    run_id = client.trigger(conf("rest-ok"))
    seen = []
    assert client.wait(run_id, timeout=300, poll=1, on_change=seen.append)["state"] == "success", cluster.tails()
    assert seen[-1]["upload"] == "success"
    uploaded = client.upload(run_id)
    assert [f["link"] for f in uploads_of(cloud_client, "rest-ok")] == [uploaded["link"]]
    assert ARCHIVE_LAYOUT <= verified_archive(requests.get(uploaded["link"], timeout=30).content)

    mails = mailbox.to("rest-ok@lab.test")
    assert len(mails) == 1 and "results ready" in mails[0]["Subject"] and "REST run" in mails[0]["Subject"]
    assert uploaded["link"] in body_of(mails[0])
    [callback] = callbacks_for("rest-ok")  # callback_events "final" (the default): the final event only
    assert callback["state"] == "success" and callback["link"] == uploaded["link"]
    assert callback["sha256"] == uploaded["sha256"] and callback["size"] == uploaded["size"]
    assert callback["sim_runtime_stats"]["events"] == 38516  # the final status block of run0.stdout.log
    assert callback == xcom_result(client, run_id)

    links = requests.get(f"{cluster.base_url}/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/copies/links",
                         headers={"Authorization": f"Bearer {cluster.token()}"}, timeout=10).json()
    assert links.get("extra_links", links).get("Share link") == uploaded["link"]
    work = world[5] / "work"
    assert not work.exists() or list(work.iterdir()) == []  # cleanup left nothing behind


def test_a_cut_off_vec_ends_the_run_with_a_warning_everyone_sees(world):
    """Issue 14: a .vec cut mid-line is exported up to its last complete line; the run succeeds in
    Airflow, its page's note, the callback, the XCom and the mail say what was left out."""
    cluster, client, mailbox, *_ = world
    run_id = client.trigger(conf("rest-cut", CUT_SET))
    assert client.wait(run_id, timeout=300, poll=1)["state"] == "success", cluster.tails()
    [callback] = callbacks_for("rest-cut")
    assert callback["state"] == "warning" and callback["link"]
    [problem] = callback["problems"]
    assert problem.startswith("General-#0.vec: the file ends in the middle of a line") and "bytes ignored" in problem
    assert callback == xcom_result(client, run_id)
    [mail] = mailbox.to("rest-cut@lab.test")
    assert mail["Subject"].endswith("results ready, with warnings (damaged input left out)")
    assert "General-#0.vec: the file ends in the middle of a line" in body_of(mail)
    note = cluster.api("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}").json()["note"]
    first = note.splitlines()[0]
    assert callback["link"] in first and "**Warning: 1 input problem(s)**" in first
    assert "General-#0.vec" in archive_member(callback["link"], "INFO.txt")


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
    assert callback["state"] == "failed" and callback["stage"] == "collect" and reason in callback["reason"]
    assert callback == xcom_result(client, run_id)


def test_upload_failing_once_succeeds_on_retry_with_one_remote_file(world):
    cluster, client, _, cloud, cloud_client, _ = world
    cloud.stop()
    try:
        run_id = client.trigger(conf("rest-retry"))
        for _ in _deadline_loop(300, interval=0.5):
            if any(t["state"] in ("up_for_retry", "failed") for t in cluster.task_tries(DAG, run_id, "upload", 0)):
                break
        else:
            raise AssertionError(f"the upload never failed while local_cloud was down\n{cluster.tails()}")
    finally:
        cloud.start()
    assert client.wait(run_id, timeout=300, poll=1)["state"] == "success", cluster.tails()
    assert len(cluster.task_tries(DAG, run_id, "upload", 0)) >= 2
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



def _cli(cluster, monkeypatch, *args: str) -> int:
    monkeypatch.setenv("SIMPOST_AIRFLOW_PASSWORD", cluster.password)
    return simpost_cli(["--airflow", cluster.base_url, "--user", cluster.username, *args])


def _states(client: Simpost, run_id: str) -> dict[str, str]:
    return {ti["task_id"]: ti["state"] for ti in client.task_instances(run_id)}


def _ti(client: Simpost, run_id: str, task_id: str) -> dict:
    return next(ti for ti in client.task_instances(run_id) if ti["task_id"] == task_id)


def _cmdlines(cluster: AirflowCluster) -> list[str]:
    """Command lines of every process of the deployment (a task process shows its task instance id)."""
    out = []
    for component in cluster.components.values():
        for process in component.processes():
            with contextlib.suppress(psutil.Error):
                out.append(" ".join(process.cmdline()))
    return out


def test_ops_run_delivers_every_preset_statistic_with_the_sca_values_and_its_progress(world):
    cluster, client, mailbox, *_ = world
    run_id = client.trigger(conf("rest-ops", OPS_DIR, statistics="ops", runconfig="Config Benchmark-04",
                                 callback_events="all"))
    assert client.wait(run_id, timeout=300, poll=1)["state"] == "success", cluster.tails()
    heard = callbacks_for("rest-ops")
    assert [(b["event"], b.get("stage")) for b in heard] == (
        [("start", None)] + [("stage", s) for s in STAGES[:-1]] + [("final", None)])
    assert [b["percent"] for b in heard] == [0, 16.7, 33.3, 50.0, 66.7, 83.3, 100]
    assert [b["seconds"] for b in heard] == sorted(b["seconds"] for b in heard)
    final = heard[-1]
    assert final == xcom_result(client, run_id) and final["state"] == "success"
    assert set(final["stage_seconds"]) == set(STAGES[:-1])

    written = sca_scalars(Path(world[5]) / "results" / OPS_DIR / "results" / "Benchmark-04-#0.sca", NETWORK)
    stats = final["scalar_stats"]
    assert stats["preset"] == "ops" and stats["count"] == len(load_ops()) and not stats["truncated"]
    for item, row in zip(stats["items"], load_ops(), strict=True):
        assert (item["title"], item["layer"], item["unit"], item["type"]) == (row.name, row.layer, row.unit, row.type)
        text = written.get(item["name"])
        expected = None if text is None else "nan" if "nan" in text else int(text) if row.type == "int" else float(text)
        assert item["value"] == expected, item
    [mail] = mailbox.to("rest-ops@lab.test")
    first = stats["items"][0]
    assert f"<td>{first['title']}</td><td>{NETWORK}</td><td>{first['value']:,}</td>" in body_of(mail)


def _shows(text: str, number: float) -> bool:
    """The number as a CSV or a page may print it: 12824576, 12,824,576, 0.04."""
    forms = {repr(number), str(number)}
    if float(number).is_integer():
        forms |= {str(int(number)), f"{int(number):,}"}
    return any(re.search(rf"(?<![\d.]){re.escape(f)}(?![\d])", text) for f in forms)


def test_resources_and_a_time_file_are_reported_in_all_four_places(world, monkeypatch, capsys):
    cluster, client, mailbox, *_ = world
    code = _cli(cluster, monkeypatch, "run", "--simulation-id", "rest-resources", "--results-dir", "aloha-PureAloha1",
                "--backend", "local_e2e", "--email", "rest-resources@lab.test", "--callback", "/done/rest-resources",
                "--resources", "peak_disk_bytes=5e9", "--graphs", "none", "--wait", "--timeout", "300")
    out, err = capsys.readouterr()
    assert code == 0, err + cluster.tails()
    bars = [line for line in err.splitlines() if line.startswith("[")]  # --wait: a bar per change of the stages
    counts = [tuple(map(int, re.search(r"\] (\d+)/(\d+) ", bar).groups())) for bar in bars]
    done, stages = [d for d, _ in counts], {n for _, n in counts}
    assert stages == {len(client.stages())} and "check_backend" in client.stages(), err
    assert done == sorted(done) and len(set(done)) >= 3 and bars[-1].endswith(f"{done[-1]}/{done[-1]} done"), err
    link = out.strip().splitlines()[-1]
    [final] = callbacks_for("rest-resources")
    res = final["resources"]
    assert res["peak_disk_bytes"] == 5e9  # the simulator's own figure (resources Param)
    assert res["postprocessing_peak_rss_bytes"] > 20 * 2**20  # every task's peak, the largest
    assert res["postprocessing_wall_seconds"] >= sum(final["stage_seconds"].values())
    mail = body_of(mailbox.to("rest-resources@lab.test")[0])
    assert "<td>peak disk bytes</td><td>5,000,000,000 (4,768.4 MiB)</td>" in mail
    # run0.time.txt (GNU time -v of the simulation: 12524 kB, 0:00.04) comes in through the engine's
    # stats step, which merges it with the Param (the engine side of issue 15's contract)
    ram, wall = 12524 * 1024, 0.04
    assert (res.get("peak_sim_ram_bytes"), res.get("sim_wall_seconds")) == (ram, wall), res
    assert "<td>peak sim ram bytes</td><td>12,824,576 (12.2 MiB)</td>" in mail
    csv_text = archive_member(link, "simrun/simrun-stats.csv")
    assert all(_shows(csv_text, n) for n in (5e9, ram, wall))
    report = archive_member(link, "report.html")  # for people: bytes in MiB, with where each came from
    for shown in (f"{5e9 / 2**20:.1f} MiB (from param)", f"{ram / 2**20:.1f} MiB (from run0.time.txt)",
                  f"{wall} s (from run0.time.txt)"):
        assert shown in report, shown


def test_run_timeout_fails_the_run_with_one_failure_mail_and_callback(world):
    cluster, client, mailbox, _, cloud_client, _ = world
    pool = "/api/v2/pools/results_parsing"
    kept = cluster.api("GET", pool).json()
    body = {"pool": kept["name"], "slots": kept["slots"], "description": kept["description"],
            "include_deferred": kept["include_deferred"]}
    cluster.api("PATCH", pool, json={**body, "slots": 0})  # parse waits for a slot until the run's time is up
    try:
        run_id = client.trigger(conf("rest-timeout", run_timeout=15))
        for _ in _deadline_loop(120, 0.5):
            run = client.run(run_id)
            if run["start_date"] and (datetime.now(datetime.fromisoformat(run["start_date"]).tzinfo)
                                      - datetime.fromisoformat(run["start_date"])).total_seconds() > 16:
                break
        else:
            raise AssertionError(f"run {run_id} never started\n{cluster.tails()}")
    finally:
        cluster.api("PATCH", pool, json=body)
    assert client.wait(run_id, timeout=300, poll=1)["state"] == "failed", cluster.tails()
    states = _states(client, run_id)
    [stage] = [s for s in STAGES if states[s] == "failed"]  # parse, or collect on a machine slower than 15 s
    assert states["cleanup"] == "success" and stage in ("collect", "parse")
    [final] = callbacks_for("rest-timeout")
    assert final["stage"] == stage and "run timeout" in final["reason"] and "run_timeout of 15 s" in final["reason"]
    [mail] = mailbox.to("rest-timeout@lab.test")
    assert "failed" in mail["Subject"] and "run timeout" in body_of(mail)
    assert uploads_of(cloud_client, "rest-timeout") == []
    assert len(cluster.task_tries(DAG, run_id, stage)) == 1  # a used-up run is not retried


def test_cancel_stops_the_run_and_user_and_simulator_hear_of_it_once(world, monkeypatch, capsys):
    cluster, client, mailbox, _, cloud_client, tmp = world
    Callbacks.held["/hold/rest-cancel"] = release = threading.Event()
    try:
        run_id = client.trigger(conf("rest-cancel", callback_endpoint="/hold/rest-cancel", callback_events="all"))
        for _ in _deadline_loop(120, 0.25):
            if callbacks_for("rest-cancel", "/hold"):
                break  # the start event is in: collect is running, waiting on the simulator's answer
        else:
            raise AssertionError(f"no start callback\n{cluster.tails()}")
        assert _cli(cluster, monkeypatch, "cancel", run_id) == 0, capsys.readouterr().err
        assert client.wait(run_id, timeout=180, poll=1)["state"] == "failed", cluster.tails()
    finally:
        release.set()
    # Airflow kills the cancelled stage at its next heartbeat (seconds); released earlier, it ends on its own
    title = f"airflow worker -- {_ti(client, run_id, 'collect')['id']}"
    for _ in _deadline_loop(60, 0.25):
        if not any(title in line for line in _cmdlines(cluster)):
            break
    else:
        raise AssertionError(f"the cancelled collect never ended\n{cluster.tails()}")
    states = _states(client, run_id)
    assert states["collect"] == "failed" and {states[s] for s in STAGES[1:]} == {"skipped"}
    assert states["cleanup"] == "failed"  # it told them, and it makes the run end failed
    heard = callbacks_for("rest-cancel", "/hold")
    assert [b["event"] for b in heard] == ["start", "final"]
    final = heard[-1]
    assert final["state"] == "failed" and final["stage"] == "collect" and final["reason"].startswith("cancelled")
    assert final == xcom_result(client, run_id)
    [mail] = mailbox.to("rest-cancel@lab.test")
    assert "failed" in mail["Subject"] and "cancelled" in body_of(mail)
    assert uploads_of(cloud_client, "rest-cancel") == []
    assert not any((tmp / "work").glob(f"*{run_id.split('__')[-1]}*"))  # cleanup ran
    capsys.readouterr()
    assert _cli(cluster, monkeypatch, "cancel", run_id) == 2
    assert "already finished (failed)" in capsys.readouterr().err
    assert len(mailbox.to("rest-cancel@lab.test")) == 1 and len(callbacks_for("rest-cancel", "/hold")) == 2


def test_export_stats_gives_one_valid_line_per_finished_run(world, monkeypatch, capsys, tmp_path):
    cluster, client, *_ = world
    run_id = client.trigger(conf("rest-export"))
    assert client.wait(run_id, timeout=300, poll=1)["state"] == "success", cluster.tails()
    out = tmp_path / "stats.jsonl"
    assert _cli(cluster, monkeypatch, "export-stats", "--out", str(out)) == 0
    lines = [validate_result(json.loads(line)) for line in out.read_text().splitlines()]
    finished = list(client.finished_runs())
    assert sorted(line["run_id"] for line in lines) == sorted(r["dag_run_id"] for r in finished)
    assert {line["event"] for line in lines} == {"final"}
    by_run = {line["run_id"]: line for line in lines}
    # a run that left damaged input out succeeded in Airflow and reports "warning"
    airflow_state = {"success": "success", "warning": "success", "failed": "failed"}
    assert all(airflow_state[by_run[r["dag_run_id"]]["state"]] == r["state"] for r in finished)
    assert any(line["state"] == "success" for line in lines)
    assert by_run[run_id]["link"] == client.upload(run_id)["link"]
    since = max(r["end_date"] for r in finished)
    capsys.readouterr()
    assert _cli(cluster, monkeypatch, "export-stats", "--since", since) == 0
    recent = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["run_id"] for line in recent] == [r["dag_run_id"] for r in finished if r["end_date"] == since]
