"""local_cloud with two faces: the API (with the key) on one address, the public pages on another.

A real server process on loopback (local_cloud.testing) with `--public-port`; the routes are
enumerated from the app itself, so a route added later is covered without editing this file.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import zipfile
from urllib.parse import urlsplit

import pytest
import requests
from fastapi.routing import APIRoute
from pydantic import ValidationError

from local_cloud.api.deps import require_key
from local_cloud.app import create_app
from local_cloud.client import LocalCloudClient
from local_cloud.settings import ServerSettings
from local_cloud.testing import LocalCloudServer
from storage_backends import open_backend, remote_name

from emulators.fixtures import settings_of

KEY = "faces-key-" + secrets.token_hex(16)
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SHA = "ab" * 32


def _archive(tmp_path, title: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("report.html", f"<html><head><title>{title}</title></head><body>run</body></html>")
        z.writestr("csv/scalars.csv", "run,module,name,value\n" + secrets.token_hex(2000))
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = LocalCloudServer(tmp_path_factory.mktemp("faces") / "store", KEY, public_port=0)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def stored(server, tmp_path_factory):
    """One archive uploaded through the API address."""
    path = tmp_path_factory.mktemp("up") / "results.zip"
    path.write_bytes(_archive(path.parent, "Faces run"))
    record = LocalCloudClient(server.url, KEY).upload(str(path), "faces-run.zip", keep_days=1)
    return path, record


def _app_routes(app) -> dict[tuple[str, str], APIRoute]:
    return {(r.path, m): r for r in app.routes if isinstance(r, APIRoute) for m in r.methods}


def _needs_key(route: APIRoute) -> bool:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if dep.call is require_key:
            return True
        stack.extend(dep.dependencies)
    return False


def api_routes(tmp_path) -> list[tuple[str, str]]:
    """(method, path template) of every route the public face lacks, from the apps themselves."""
    settings = ServerSettings(folder=tmp_path, api_key=KEY)
    faces = create_app(settings, bound=[("127.0.0.1", 1), ("127.0.0.1", 2)])
    public = _app_routes(faces.public)
    full = _app_routes(faces.api)
    assert set(_app_routes(create_app(settings))) == set(full), "one face serves what two faces' API serves"
    out = []
    for (path, method), route in sorted(full.items(), key=lambda t: t[0]):
        if (path, method) in public:
            assert not _needs_key(route), f"{method} {path} needs the key but is on the public face"
            continue
        assert _needs_key(route), f"{method} {path} is neither public nor behind the key"
        out.append((method, path))
    return out


def _fill(template: str, values: dict) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values[m.group(1)], template)


def _answer(resp: requests.Response) -> tuple:
    drop = {"date", "content-length"}
    return resp.status_code, resp.content, {k: v for k, v in resp.headers.items() if k.lower() not in drop}


def test_every_api_route_is_404_on_the_public_address_as_an_unknown_one(server, stored, tmp_path):
    _, record = stored
    # an open session, so that {sid} names something real
    session = requests.post(server.url + "/api/uploads", json={"name": "open.zip", "size": 10},
                            headers={"Authorization": f"Bearer {KEY}"}).json()
    values = {"file_id": record["id"], "name": "faces-run.zip", "sid": session["upload_id"]}
    routes = api_routes(tmp_path)
    assert {m for m, _ in routes} >= {"GET", "PUT", "POST", "DELETE"} and len(routes) >= 8, routes
    unknown_path = "/no-such-route-" + secrets.token_hex(4)
    for method, template in routes:
        path = _fill(template, values)
        for headers in ({}, {"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}):
            got = requests.request(method, server.public_base + path, headers=headers, data=b"0123456789")
            unknown = requests.request(method, server.public_base + unknown_path, headers=headers, data=b"0123456789")
            assert got.status_code == 404, (method, path, got.status_code, got.text)
            assert _answer(got) == _answer(unknown), (method, path)
        # the same route exists on the API address (answers something other than "no such route")
        on_api = requests.request(method, server.url + _fill(template, {**values, "file_id": "0" * 32, "sid": "x"}),
                                  headers={"Authorization": f"Bearer {KEY}"})
        assert on_api.content != unknown.content, (method, path, on_api.status_code)
    # nothing sent to the public address changed anything: the file and the session are still there
    client = LocalCloudClient(server.url, KEY)
    assert client.get(record["id"])["sha256"] == record["sha256"]
    assert requests.get(f"{server.url}/api/uploads/{session['upload_id']}",
                        headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert KEY not in server.log_text()


def test_upload_through_the_api_gives_a_public_link_with_the_same_bytes(server, stored):
    path, record = stored
    link = urlsplit(record["link"])
    assert f"{link.scheme}://{link.netloc}" == server.public_base != server.url
    got = requests.get(record["link"])
    assert got.status_code == 200 and got.content == path.read_bytes()
    assert hashlib.sha256(got.content).hexdigest() == record["sha256"] == got.headers["x-checksum-sha256"]
    assert requests.get(server.public_base + "/health").json()["status"] == "ok"


@pytest.mark.parametrize("face", ["public_base", "url"])
def test_share_page_and_report_work_on_both_addresses(server, stored, face):
    _, record = stored
    base = getattr(server, face) + urlsplit(record["link"]).path
    page = requests.get(base, headers=BROWSER)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "Faces run" in page.text and "faces-run.zip" in page.text
    report = requests.get(base + "/report.html")
    assert report.status_code == 200 and "<title>Faces run</title>" in report.text
    assert requests.get(base + "/download").content == stored[0].read_bytes()


def test_local_backend_names_the_api_address_and_hands_out_public_links(server, tmp_path):
    conn = {"password": KEY, "extra": {"storage_backend": "Local cloud", "storage_backend_id": "local",
                                       "storage_backend_config": json.dumps({"server": server.url})}}
    backend = open_backend(settings_of("faces", conn))
    archive = tmp_path / "a.zip"
    archive.write_bytes(_archive(tmp_path, "Backend run"))
    upload = backend.upload(str(archive), remote_name("faces", "lc-faces", SHA), 1)
    assert upload.link.startswith(server.public_base + "/f/")
    assert requests.get(upload.link).content == archive.read_bytes()
    backend.delete(upload.remote_id)
    assert requests.get(upload.link).status_code == 404


def test_public_url_option_wins_for_links(tmp_path):
    with LocalCloudServer(tmp_path / "s", KEY, public_port=0, public_url="https://files.lab.example/") as srv:
        archive = tmp_path / "a.zip"
        archive.write_bytes(b"x" * 100)
        record = LocalCloudClient(srv.url, KEY).upload(str(archive), "a.zip")
        assert record["link"] == f"https://files.lab.example/f/{record['id']}"


def test_faces_come_from_settings_and_the_environment(tmp_path, monkeypatch):
    one = ServerSettings(folder=tmp_path, api_key=KEY)
    assert one.api_address == ("127.0.0.1", 8600) and one.public_address is None
    monkeypatch.setenv("LOCAL_CLOUD_API_HOST", "10.0.0.5")
    monkeypatch.setenv("LOCAL_CLOUD_PUBLIC_HOST", "0.0.0.0")
    monkeypatch.setenv("LOCAL_CLOUD_PUBLIC_PORT", "8601")
    two = ServerSettings(folder=tmp_path, api_key=KEY)
    assert two.api_address == ("10.0.0.5", 8600) and two.public_address == ("0.0.0.0", 8601)
    with pytest.raises(ValidationError, match="must differ"):
        ServerSettings(folder=tmp_path, api_key=KEY, api_host="0.0.0.0", api_port=8601)
    monkeypatch.delenv("LOCAL_CLOUD_PUBLIC_PORT")
    with pytest.raises(ValidationError, match="public_host needs public_port"):
        ServerSettings(folder=tmp_path, api_key=KEY)
