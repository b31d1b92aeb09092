"""The catalog's routes in a real api-server (the simpost plugin under /simpost), and the client's
`simpost where` and `simpost catalog export|import` through them.

Two deployments, each an `airflow api-server` of its own (own home, metadata DB, JWT secret, port):
`a` reads the default catalog (a SQLite file in its home), `b` the one its `simpost_catalog`
connection names. Catalog `a` is filled through the catalog package, as the upload task fills it.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
import requests
from simpost.catalog import Catalog
from simpost_client.__main__ import main as simpost_cli

from cluster import AirflowCluster, _deadline_loop
from conftest import REPO

pytestmark = pytest.mark.airflow
ROUTES = [("GET", "/simpost/api/archives"), ("GET", "/simpost/results"), ("GET", "/simpost/api/catalog/export"),
          ("POST", "/simpost/api/catalog/import"), ("POST", f"/simpost/api/archives/{'a1' * 32}/restore"),
          ("GET", f"/simpost/api/archives/{'a1' * 32}/restore"),
          ("GET", f"/simpost/api/archives/{'a1' * 32}/copies/local_cloud/link")]
READER = "reader"
HOSTILE_TITLE = '<img src=x onerror="alert(1)"> Aloha & "friends"'


@dataclass
class Deployment:
    cluster: AirflowCluster
    catalog: Catalog


def _api_server(home: Path, env: dict | None = None) -> AirflowCluster:
    """Only what the routes need: a migrated metadata DB and the api-server. Users: `admin` and
    `reader`, whose role is viewer (same password)."""
    env = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,{READER}:viewer", **(env or {})}
    cluster = AirflowCluster(home, dags_folder=REPO / "dags", plugins_folder=REPO / "plugins", env_overrides=env)
    cluster.airflow("db", "migrate")
    (cluster.home / "simple_auth_manager_passwords.json.generated").write_text(
        json.dumps({cluster.username: cluster.password, READER: cluster.password}))
    cluster._spawn("api-server", ["api-server", "--port", str(cluster.api_port), "--host", "127.0.0.1"])
    for _ in _deadline_loop(180, 0.5):
        cluster._check_alive()
        if (cluster.health() or {}).get("metadatabase", {}).get("status") == "healthy":
            return cluster
    cluster.stop()
    raise RuntimeError(f"api-server did not answer\n{cluster.tails()}")


def _fill(catalog: Catalog) -> None:
    """Three archives of two simulations, their copies in the states a person meets."""
    first, second, other = "a1" * 32, "b2" * 32, "c3" * 32
    catalog.record_archive(first, 12_345_678, "sim-a", title="PureAloha1", run_id="sim__sim-a__1", copies_wanted=2)
    catalog.record_copy(first, "local_cloud", "present", link="http://127.0.0.1:9/f/first", remote_id="first")
    catalog.verified(first, "local_cloud")
    catalog.record_copy(first, "dropbox", "failed", last_error="HTTP 503 from api.dropboxapi.com")
    catalog.record_archive(second, 2_000, "sim-a", title="PureAloha2", run_id="sim__sim-a__2")
    catalog.record_copy(second, "seafile", "lost", link="https://seafile.example/f/second/",
                        last_error="gone from the library")
    catalog.record_archive(other, 99, "sim-b", title=HOSTILE_TITLE)
    catalog.record_copy(other, "local_cloud", "present", link="javascript:alert(1)")


@pytest.fixture(scope="module")
def a(tmp_path_factory):
    cluster = _api_server(tmp_path_factory.mktemp("deployment-a"))
    catalog = Catalog.open(f"sqlite:///{cluster.home / 'simpost-catalog.db'}")  # the default place
    _fill(catalog)
    yield Deployment(cluster, catalog)
    cluster.stop()
    catalog.close()


@pytest.fixture(scope="module")
def b(tmp_path_factory):
    path = tmp_path_factory.mktemp("catalog-b") / "catalog.db"
    cluster = _api_server(tmp_path_factory.mktemp("deployment-b"),
                          {"AIRFLOW_CONN_SIMPOST_CATALOG": json.dumps({"conn_type": "sqlite", "host": str(path)})})
    catalog = Catalog.open(f"sqlite:///{path}")
    yield Deployment(cluster, catalog)
    cluster.stop()
    catalog.close()


def _cli(deployment: Deployment, monkeypatch, *args: str) -> int:
    monkeypatch.setenv("SIMPOST_AIRFLOW_PASSWORD", deployment.cluster.password)
    return simpost_cli(["--airflow", deployment.cluster.base_url, "--user", deployment.cluster.username, *args])


def _snapshot(catalog: Catalog) -> dict:
    """Everything the catalog holds, comparable across deployments."""
    return {a.sha256: ((a.size, a.simulation_id, a.title, a.run_id, a.created, a.copies_wanted),
                       sorted((c.backend, c.state, c.link, c.last_verified, c.last_error, c.updated_at) for c in a.copies))
            for a in catalog.archives(limit=10_000)}


def _tokens(cluster: AirflowCluster) -> dict[str, str]:
    """Tokens an attacker or a careless user may send: garbage, signed with another key, expired."""
    claims = jwt.decode(cluster.token(), options={"verify_signature": False})
    secret, algorithm = cluster.env["AIRFLOW__API_AUTH__JWT_SECRET"], jwt.get_unverified_header(cluster.token())["alg"]
    expired = {**claims, "iat": int(time.time()) - 7200, "nbf": int(time.time()) - 7200, "exp": int(time.time()) - 3600}
    return {"garbage": "not-a-jwt", "other key": jwt.encode(claims, "another-secret-of-at-least-64-bytes-" * 2, algorithm),
            "expired": jwt.encode(expired, secret, algorithm)}


@pytest.mark.parametrize("method, path", ROUTES)
def test_every_route_refuses_a_request_without_a_valid_airflow_token(a, method, path):
    before = _snapshot(a.catalog)
    body = "".join(line + "\n" for line in a.catalog.export_lines())
    attempts = {"no token": {}} | {kind: {"Authorization": f"Bearer {token}"} for kind, token in _tokens(a.cluster).items()}
    attempts |= {f"cookie {kind}": {"Cookie": f"_token={token}"} for kind, token in _tokens(a.cluster).items()}
    for kind, headers in attempts.items():
        r = requests.request(method, a.cluster.base_url + path, headers=headers, data=body if method == "POST" else None,
                             timeout=30)
        assert r.status_code in (401, 403), f"{kind}: HTTP {r.status_code}"
        for sha in before:
            assert sha[:12] not in r.text, f"{kind}: catalog data in the refusal"
        assert "sim-a" not in r.text
    assert _snapshot(a.catalog) == before


def test_the_ui_login_cookie_reads_but_never_writes(a):
    """The UI sends its `_token` cookie when it opens the view; that reads, but an import wants the
    Authorization header (a cross-site form can send the cookie, never the header)."""
    cookie = {"Cookie": f"_token={a.cluster.token()}"}
    page = requests.get(a.cluster.base_url + "/simpost/results", headers=cookie, timeout=30)
    assert page.status_code == 200 and "sim-a" in page.text
    export = "".join(line + "\n" for line in a.catalog.export_lines())
    r = requests.post(a.cluster.base_url + "/simpost/api/catalog/import", headers=cookie, data=export, timeout=30)
    assert r.status_code == 401 and "Authorization: Bearer" in r.json()["detail"]


def test_a_viewer_reads_the_catalog_but_may_not_import(a):
    token = requests.post(a.cluster.base_url + "/auth/token", json={"username": READER, "password": a.cluster.password},
                          timeout=30).json()["access_token"]
    viewer = {"Authorization": f"Bearer {token}"}
    r = requests.get(a.cluster.base_url + "/simpost/api/archives", headers=viewer, timeout=30)
    assert r.status_code == 200 and r.json()["archives"]
    before = _snapshot(a.catalog)
    lines = [next(a.catalog.export_lines()), *_new_archive_lines("f6" * 32)]
    r = requests.post(a.cluster.base_url + "/simpost/api/catalog/import", headers=viewer, data="\n".join(lines),
                      timeout=30)
    assert r.status_code == 403 and "'reader' may not change the simpost catalog" in r.json()["detail"]
    assert _snapshot(a.catalog) == before


def test_archives_are_searched_by_simulation_id_with_their_copies(a):
    found = a.cluster.api("GET", "/simpost/api/archives", params={"simulation_id": "sim-a"}).json()
    assert [x["title"] for x in found["archives"]] == ["PureAloha2", "PureAloha1"] and not found["more"]
    first = found["archives"][1]
    copies = {c["backend"]: c for c in first["copies"]}
    assert copies["local_cloud"]["state"] == "present" and copies["local_cloud"]["link"] == "http://127.0.0.1:9/f/first"
    assert copies["local_cloud"]["last_verified"] is not None and copies["dropbox"]["state"] == "failed"
    assert copies["dropbox"]["last_error"] == "HTTP 503 from api.dropboxapi.com"
    assert a.cluster.api("GET", "/simpost/api/archives", params={"simulation_id": "sim"}).json()["archives"] == []
    partial = a.cluster.api("GET", "/simpost/api/archives", params={"q": "SIM-B"}).json()["archives"]
    assert [x["simulation_id"] for x in partial] == ["sim-b"]
    paged = a.cluster.api("GET", "/simpost/api/archives", params={"limit": 2, "offset": 1}).json()
    assert len(paged["archives"]) == 2 and not paged["more"]
    assert a.cluster.api("GET", "/simpost/api/archives", params={"limit": 2}).json()["more"]
    assert a.cluster.api("GET", "/simpost/api/archives", params={"limit": 0}, check=False).status_code == 422

    page = a.cluster.api("GET", "/simpost/results", params={"q": "sim-a"}).text
    assert set(re.findall(r'data-sha256="(\w+)"', page)) == {"a1" * 32, "b2" * 32}


def test_the_page_escapes_what_the_catalog_holds_and_loads_nothing(a):
    r = a.cluster.api("GET", "/simpost/results", params={"simulation_id": "sim-b"})
    page = r.text
    assert "<img" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; Aloha &amp; &quot;friends&quot;" in page
    assert 'href="javascript' not in page and "<code>javascript:alert(1)</code>" in page  # shown, not a link
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "'unsafe-inline'" not in csp
    assert not re.search(r'(src|href)="(https?:)?//', page)  # no resource from anywhere


def test_where_lists_each_archive_and_its_copies(a, monkeypatch, capsys):
    assert _cli(a, monkeypatch, "where", "sim-a") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"archive {'b2' * 6} \"PureAloha2\"  2000 bytes  created ")
    assert re.match(r"  lost +seafile +https://seafile.example/f/second/  verified never  \(gone from the library\)$", out[1])
    assert "(1 of 2 wanted copies present)" in out[2]
    present = next(line for line in out if "local_cloud" in line)
    assert re.match(r"  present +local_cloud +http://127.0.0.1:9/f/first  verified \d{4}-\d\d-\d\d \d\d:\d\d UTC$", present)
    assert any(re.match(r"  failed +dropbox +-  verified never  \(HTTP 503", line) for line in out)
    assert _cli(a, monkeypatch, "where", "sim-unknown") == 1
    assert "no archive of simulation 'sim-unknown'" in capsys.readouterr().err


def test_export_from_one_deployment_imports_into_another_and_twice_changes_nothing(a, b, monkeypatch, capsys,
                                                                                  tmp_path):
    exported = tmp_path / "catalog.jsonl"
    assert _cli(a, monkeypatch, "catalog", "export", "--out", str(exported)) == 0
    assert json.loads(exported.read_text().splitlines()[0])["format"] == "simpost-catalog"
    assert _cli(b, monkeypatch, "catalog", "import", str(exported)) == 0
    assert "archives added 3" in capsys.readouterr().out
    assert _snapshot(b.catalog) == _snapshot(a.catalog)  # b's api-server wrote the file its connection names
    assert _cli(b, monkeypatch, "catalog", "import", str(exported)) == 0
    assert "(nothing changed)" in capsys.readouterr().out
    assert _snapshot(b.catalog) == _snapshot(a.catalog)
    assert _cli(b, monkeypatch, "where", "sim-a") == 0 and "PureAloha1" in capsys.readouterr().out

    later = tmp_path / "later.jsonl"
    assert _cli(a, monkeypatch, "catalog", "export", "--since", "2999-01-01", "--out", str(later)) == 0
    assert len(later.read_text().splitlines()) == 1  # the header alone


def _new_archive_lines(new: str) -> list[str]:
    return [json.dumps({"type": "archive", "sha256": new, "size": 1, "simulation_id": "sim-new", "title": None,
                        "run_id": None, "created": "2026-12-01T10:00:00+00:00", "copies_wanted": 1}),
            json.dumps({"type": "copy", "archive": new, "backend": "local_cloud", "state": "present", "remote_id": "n",
                        "remote_name": None, "link": None, "checksum": None, "uploaded": None, "expires": None,
                        "last_verified": None, "attempts": 1, "last_error": None,
                        "updated_at": "2026-12-01T10:00:00+00:00"})]


@pytest.mark.parametrize("kind, words", [("missing keys", "line 4: archive line lacks"),
                                         ("not utf-8", "line 4: not UTF-8"),
                                         ("unknown state", "line 4: state must be one of")])
def test_a_bad_line_is_refused_by_number_and_nothing_is_imported(a, b, monkeypatch, capsys, tmp_path, kind, words):
    new = "d4" * 32
    header, archive, copy = next(a.catalog.export_lines()), *_new_archive_lines(new)
    bad = {"missing keys": json.dumps({"type": "archive", "sha256": "e5" * 32, "size": 1}).encode(),
           "not utf-8": b'{"type": "copy", "backend": "\xff"}',
           "unknown state": copy.replace('"present"', '"vanished"').encode()}[kind]
    file = tmp_path / "bad.jsonl"
    file.write_bytes("\n".join([header, archive, copy]).encode() + b"\n" + bad + b"\n")
    before = _snapshot(b.catalog)
    assert _cli(b, monkeypatch, "catalog", "import", str(file)) == 2
    err = capsys.readouterr().err
    assert "HTTP 400" in err and words in err and "nothing was imported" in err
    assert _snapshot(b.catalog) == before and b.catalog.archive(new) is None
    r = b.cluster.api("POST", "/simpost/api/catalog/import", data=file.read_bytes(), check=False)
    assert r.status_code == 400 and r.json()["line"] == 4


def test_a_restore_is_started_as_the_user_so_airflow_decides_who_may(a):
    """The Restore action triggers storage_restore with the caller's own token: Airflow refuses a
    viewer (no leave to start runs), and the refusal is Airflow's own, relayed."""
    a.cluster.airflow("dags", "reserialize")  # storage_restore known to this api-server (no scheduler runs it)
    sha256 = "e7" * 32
    a.catalog.record_archive(sha256, 10, "sim-archived", title="Old study")
    a.catalog.record_copy(sha256, "cold", "archived", remote_id="old", link="http://127.0.0.1:9/f/old")
    token = requests.post(a.cluster.base_url + "/auth/token", json={"username": READER, "password": a.cluster.password},
                          timeout=30).json()["access_token"]
    viewer = {"Authorization": f"Bearer {token}"}
    page = requests.get(a.cluster.base_url + "/simpost/results", params={"simulation_id": "sim-archived"},
                        headers=viewer, timeout=30)
    assert page.status_code == 200 and "data-restore>Restore</button>" in page.text  # offered; Airflow decides
    r = requests.post(a.cluster.base_url + f"/simpost/api/archives/{sha256}/restore", headers=viewer, timeout=30)
    assert r.status_code == 403 and r.json()["detail"].startswith("Airflow answered: ")
    assert [c.state for c in a.catalog.archive(sha256).copies] == ["archived"]
    missing = a.cluster.api("POST", f"/simpost/api/archives/{'f0' * 32}/restore", check=False)
    assert missing.status_code == 404 and "no archive with sha256 f0f0f0f0f0f0" in missing.json()["detail"]
