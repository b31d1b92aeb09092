"""The user's mail about a run's final event, as it arrives: sent through Airflow's SmtpHook to a real
SMTP server on loopback (aiosmtpd), read back as multipart/alternative; its HTML part rendered in
Chromium at 640 px (tests/screenshots/mail-success.png)."""
from __future__ import annotations

import html
import json
import re
import types
from datetime import datetime, timedelta, timezone

import pytest
from aiosmtpd.controller import Controller
from emulators.fixtures import settings_of, write_file
from emulators.s3 import s3_bucket, s3_server  # noqa: F401  (fixtures)
from simpost.catalog import Catalog
from simpost.copies import Copies, upload_copy
from simpost.mailbody import html_part, text_part
from simpost.notify import ADVICE, DEFAULT_ADVICE, KEY_SCALARS, content, one_line
from simpost.result import Delivery, RunInfo
from simpost_airflow.run import _mail, run_page
from storage_backends import open_backend, remote_name
from storage_backends.base import file_sha256

from browser import SCREENSHOTS, chromium
from cluster import free_port
from results_check import validate_result
from test_rest_e2e import Mailbox

HOSTILE = '<script>alert("x")</script>'
CONTROL = "\x1b[31mred\x1b[0m\nBcc: x@y"  # a terminal escape and a line break, as a result file may hold
#: what the callback calls its figures; a person reads words
FIELD_NAMES = ("ev_per_sec", "simsec_per_sec", "ev_per_simsec", "sim_time", "messages_created", "messages_present",
               "peak_sim_ram_bytes", "peak_disk_bytes", "sim_wall_seconds", "postprocessing_peak_rss_bytes",
               "postprocessing_wall_seconds", "expires_at", "stage_seconds", "scalar_stats", "sim_runtime_stats")
NOW = datetime.now(timezone.utc)
EXPIRES = (NOW + timedelta(days=7, hours=2)).replace(microsecond=0)
LINK = "http://127.0.0.1:9/f/Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg"


def _item(n: int, module: str = "OPSNetwork.host[3].app[0]", title: str | None = "Data received") -> dict:
    item = {"run": "r", "module": module, "name": f"stat{n}:last", "kind": "scalar", "value": n * 123_456}
    return {**item, "title": f"{title} {n}", "unit": "byte", "layer": "app", "type": "int"} if title else item


def _final(items: list[dict] | None = None, count: int | None = None, problems=(), title: str = "Aloha study",
           link: str = LINK, expires_at: str | None = EXPIRES.isoformat()) -> dict:
    items = [_item(i) for i in range(5)] if items is None else items
    delivery = Delivery(
        link=link, size=1_234_567, sha256="0f" * 32, expires_at=expires_at,
        scalar_stats={"preset": "ops", "count": count or len(items), "truncated": bool(count), "items": items},
        sim_runtime_stats={"events": 6_412_345, "sim_time": 3600, "elapsed": 3.6, "ev_per_sec": 1_781_234.5,
                           "simsec_per_sec": 1000.0, "ev_per_simsec": 1781.2, "messages_created": 123_456,
                           "messages_present": 42},
        resources={"peak_sim_ram_bytes": 13_107_200, "sim_wall_seconds": 3.7,
                   "postprocessing_peak_rss_bytes": 52_000_000, "postprocessing_wall_seconds": 12.5},
        stage_seconds={"collect": 0.1, "parse": 1.25, "stats": 3.5, "zip": 0.4, "upload": 0.9},
        problems=list(problems))
    run = RunInfo("sim-42", "manual__2026-12-06T20:25:55+00:00", title, datetime(2026, 12, 6, tzinfo=timezone.utc))
    return validate_result(run.succeeded(delivery).as_dict())


def _failed(reason: str, stage: str = "collect") -> dict:
    run = RunInfo("sim-42", "manual__9", None, datetime(2026, 12, 6, tzinfo=timezone.utc))
    return validate_result(run.failed(stage, reason, {"collect": 0.2}).as_dict())


@pytest.fixture
def mailbox(monkeypatch):
    """A real SMTP server on loopback, as the smtp_default connection."""
    box = Mailbox()
    smtp = Controller(box, hostname="127.0.0.1", port=free_port())
    smtp.start()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
        "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "simpost@test.local"}}))
    yield box
    smtp.stop()


def _received(mailbox: Mailbox, final: dict, page: str | None = None) -> tuple[str, str, str]:
    """(subject, plain part, HTML part) of the one mail sent about `final`."""
    _mail("user@lab.test", final, page)
    [message] = mailbox.to("user@lab.test")
    assert message.get_content_type() == "multipart/alternative"
    parts = [p for p in message.walk() if not p.is_multipart()]
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]  # the richer part last
    plain, page_html = (p.get_payload(decode=True).decode(p.get_content_charset()) for p in parts)
    return message["Subject"], plain.replace("\r\n", "\n"), page_html  # CRLF on the wire


def mail_parts(mail) -> tuple[str, str]:
    return text_part(mail), html_part(mail)


def _fits(plain: str) -> None:
    """Wrapped at 72; only a line holding a link may run past it (a URL is never cut)."""
    for line in plain.splitlines():
        assert len(line) <= 72 or "http" in line, line


@pytest.mark.parametrize("final", [_final(), _final(problems=["General-#0.vec: the file ends in the middle of a "
                                                             "line (line 1234) (4096 bytes ignored)"]),
                                   _failed("AirflowFailException: no OMNeT++ result files (.vec or .sca)")],
                         ids=["success", "warning", "failure"])
def test_every_mail_has_a_plain_and_an_html_part_in_words_not_field_names(mailbox, final):
    subject, plain, page = _received(mailbox, final)
    for name in FIELD_NAMES:
        assert name not in plain and name not in page, name
    _fits(plain)
    assert final["simulation_id"] in plain and final["simulation_id"] in page
    if final["state"] == "warning":
        assert subject.endswith("results ready, with warnings (damaged input left out)")
        for part in (" ".join(plain.split()), page):  # the plain part wraps it
            assert "General-#0.vec: the file ends in the middle of a line (line 1234) (4096 bytes ignored)" in part
            assert "Some input was damaged; these results leave the damaged parts out." in part  # the report's words
    if final["state"] == "failed":
        assert subject == "[simpost] sim-42: post-processing failed"
        assert re.search(r"Stage\s+collect", plain) and "Check the results folder" in plain
        assert "AirflowFailException" not in plain and "Check the results folder" in page


def test_plain_part_holds_the_link_the_archive_and_every_figure_with_its_unit(mailbox):
    _, plain, page = _received(mailbox, _final())
    assert plain.index(LINK) < plain.index("Archive")  # the link first
    expected = [r"Name\s+aloha-study_sim-42_0f0f0f0f0f0f\.zip", r"Size\s+1\.2 MiB \(1,234,567 bytes\)",
                r"SHA-256\s+" + "0f" * 32,
                rf"Expires\s+{EXPIRES.day} {EXPIRES:%b} {EXPIRES.year} \(in 7 days\)",
                r"Simulated time\s+3,600 s", r"Events\s+6,412,345", r"Wall time \(Cmdenv\)\s+3\.6 s",
                r"Speed\s+1\.78 M events/s, 1 k simsec/s, 1\.78 k\s+events/simsec",
                r"Messages created\s+123,456", r"Messages present at the end\s+42",
                r"Simulator peak RAM\s+12\.5 MiB", r"Simulator wall time\s+3\.7 s",
                r"Post-processing time\s+12\.5 s", r"Post-processing peak memory\s+49\.6 MiB",
                r"collect\s+0\.1 s", r"parse\s+1\.25 s", r"upload\s+0\.9 s",
                r"Data received 2\s+OPSNetwork\.host\[3\]\.app\[0\]\s+246,912 byte"]
    for pattern in expected:
        assert re.search(pattern, plain), pattern
    assert re.search(r"(?m)^  Result\s+Module\s+Value$", plain)  # the key results as aligned columns
    assert 'href="' + LINK + '"' in page and ">Download the results</a>" in page
    assert "1.78 M events/s" in page and f"{EXPIRES.day} {EXPIRES:%b} {EXPIRES.year} (in 7 days)" in page


def test_html_part_is_made_for_mail_clients(mailbox):
    _, _, page = _received(mailbox, _final(problems=["a.vec: cut"]))
    assert not re.search(r"<script|<style|<link|<img|\sclass=|javascript:", page, re.I)
    widths = [int(w) for w in re.findall(r'\swidth="(\d+)"', page)] + \
             [int(w) for w in re.findall(r"max-width:(\d+)px", page)]
    assert widths and max(widths) <= 640
    assert re.findall(r"(?:src|href)=\"([^\"]+)", page) and all(
        u.startswith("http") for u in re.findall(r"(?:src|href)=\"([^\"]+)", page))


def test_copies_are_listed_with_their_backend_state_and_link():
    final = {**_final(), "copies": [{"backend": "local_cloud", "state": "present", "link": LINK},
                                    {"backend": "seafile-lab", "state": "pending", "link": None}]}
    mail = content(final, now=NOW)
    plain, page = mail_parts(mail)
    assert re.search(rf"local_cloud\s+present\s+{re.escape(LINK)}", plain)
    assert re.search(r"seafile-lab\s+pending\s+–", plain)
    assert f'<a href="{LINK}"' in page and "seafile-lab" in page


def test_key_results_are_capped_and_say_where_the_rest_is():
    plain, page = mail_parts(content(_final([_item(i) for i in range(KEY_SCALARS + 5)], count=5000), now=NOW))
    assert f"The first {KEY_SCALARS} of 5,000; all of them are in the archive's csv/ folder." in plain
    assert f"Data received {KEY_SCALARS - 1}" in plain and f"Data received {KEY_SCALARS}" not in plain
    assert page.count("<tr>") >= KEY_SCALARS


def test_everything_from_result_files_and_the_conf_is_escaped(mailbox):
    final = _final([_item(1, module=HOSTILE + CONTROL, title=HOSTILE)], problems=[f"a.vec: {HOSTILE}{CONTROL}"],
                   title=HOSTILE, link='http://127.0.0.1:9/s/a"b<c>')
    final["copies"] = [{"backend": "evil", "state": "present", "link": "javascript:alert(1)"}]
    subject, plain, page = _received(mailbox, final)
    assert "<script>" not in page and 'href="http://127.0.0.1:9/s/a&quot;b&lt;c&gt;"' in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert 'href="javascript' not in page and ">javascript:alert(1)</td>" in page  # shown, never a link
    for part in (plain, page):
        assert "\x1b" not in part and "\\x1b[31mred\\x1b[0m\\x0aBcc: x@y" in part  # as the report writes it
    assert not re.search(r"(?m)^Bcc:", plain)
    assert subject == f"[simpost] {HOSTILE} (sim-42): results ready, with warnings (damaged input left out)"


def test_a_title_cannot_add_mail_headers(mailbox):
    subject, _, _ = _received(mailbox, _final([], title="Run\r\nBcc: everyone@example.org\tnow"))
    assert subject == "[simpost] Run Bcc: everyone@example.org now (sim-42): results ready"
    assert [m["Bcc"] for m in mailbox.messages] == [None]


@pytest.mark.parametrize("reason, advice", [
    ("AirflowFailException: results_dir 'x' is not a folder under the results root /data", "Check the results folder"),
    ("AirflowFailException: no OMNeT++ result files (.vec or .sca) in this folder", "Check the results folder"),
    ("BackendError: local_cloud 'lab': upload at http://x failed: HTTP 401 Unauthorized (wrong api_key?)",
     "the backend's token was refused: ask the admin"),
    ("BackendError: seafile 'x': Seafile upload link refused: HTTP 403 Forbidden (wrong or expired token?)",
     "the backend's token was refused: ask the admin"),
    ("AirflowFailException: connection 'ui_locla': the run's storage_backend: no such connection; add it",
     "No storage backend of that name exists"),
    ("AirflowFailException: run timeout: the run took longer than its run_timeout of 15 s", "larger run_timeout"),
    ("cancelled: the run was marked failed (simpost cancel, the REST API or the UI)", "The run was cancelled"),
    ("MemoryError: out of memory", DEFAULT_ADVICE),
])
def test_failure_mail_says_what_the_person_can_do(reason, advice):
    plain, page = mail_parts(content(_failed(reason)))
    assert advice.lower() in " ".join(plain.lower().split()) and advice.lower() in html.unescape(page).lower()
    assert len({text for _, text in ADVICE}) == len(ADVICE)  # each kind its own advice


def test_the_run_page_is_linked_when_the_deployment_knows_its_base_url(mailbox, monkeypatch):
    context = {"dag_run": types.SimpleNamespace(dag_id="simulation_postprocess"),
               "run_id": "manual__2026-12-06T20:25:55+00:00"}
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    assert run_page(context) is None
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.lab.test/")
    page_url = run_page(context)
    assert page_url == ("https://airflow.lab.test/dags/simulation_postprocess/runs/"
                        "manual__2026-12-06T20%3A25%3A55%2B00%3A00")
    for final in (_final(), _failed("AirflowFailException: results_dir 'x' is empty")):
        mailbox.messages.clear()
        _, plain, page = _received(mailbox, final, page_url)
        assert page_url in plain and f'href="{page_url}"' in page
    assert ">Open the run in Airflow</a>" in page  # the failure's action: where the logs are


@pytest.mark.parametrize("keep_days", [30, 3])
def test_the_run_mail_says_when_an_s3_link_is_cut_to_seven_days(mailbox, s3_bucket, tmp_path, keep_days):
    """Issue 22: a copy kept 30 days on S3 has a presigned link that lasts 7 (SigV4's limit): the
    mail's Expires row gives the link's end and says why, once; a 3-day copy's link lasts 3 days,
    no word of it. The copy itself is kept for its keep days."""
    backend = open_backend(settings_of("s3_lab", s3_bucket.conn_json(keep_days=keep_days)))
    path = write_file(tmp_path / "results.zip", 5000)
    sha = file_sha256(str(path))
    with Catalog.open(f"sqlite:///{tmp_path / 'catalog.db'}") as catalog:
        catalog.record_archive(sha, 5000, "sim-42")
        result = upload_copy(catalog, backend, "s3_lab", str(path), sha, remote_name("Aloha study", "sim-42", sha),
                             keep_days, last_try=True, log=lambda m: None)
        copy = catalog.copy(sha, "s3_lab")
    delivered = Copies([result.as_dict()], 1).delivery()
    link_end, link_days = datetime.fromisoformat(delivered["expires_at"]), min(keep_days, 7)
    assert link_end == copy.link_until and link_end - copy.uploaded == timedelta(days=link_days)
    assert copy.expires - copy.uploaded == timedelta(days=keep_days), "kept for its keep days"

    _, plain, page = _received(mailbox, _final(link=delivered["link"], expires_at=delivered["expires_at"]))
    words = " ".join(plain.split())
    assert f"Expires {link_end.day} {link_end:%b} {link_end.year} (in {link_days} days)" in words
    note = "the link lasts 7 days, the longest an S3 signed link may"
    assert (words.count(note), page.count(note)) == ((1, 1) if keep_days > 7 else (0, 0))


def test_failure_reason_is_one_line_and_escaped():
    final = _failed(one_line(ValueError(f"bad {HOSTILE}\nsecond line")), stage="parse")
    plain, page = mail_parts(content(final))
    assert "second line" not in plain + page
    assert re.search(r"Reason\s+ValueError: bad <script>", plain)
    assert "ValueError: bad &lt;script&gt;" in page


def test_success_mail_renders_within_640_px_in_chromium():
    """What a webmail shows: the HTML part in Chromium at 640 px, screenshot for a person to look at."""
    page_html = html_part(content(_final(problems=[]), "https://airflow.lab.test/dags/simulation_postprocess/runs/"
                                                       "manual__2026-12-06T20%3A25%3A55%2B00%3A00", now=NOW))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        tab = browser.new_page(viewport={"width": 640, "height": 900})
        tab.set_content(page_html)
        assert tab.evaluate("document.documentElement.scrollWidth") <= 640  # nothing runs off to the side
        button = tab.get_by_role("link", name="Download the results")
        assert button.is_visible() and button.get_attribute("href") == LINK
        box = button.bounding_box()
        assert box["height"] >= 36 and box["width"] >= 150  # a button to press, not a bare link
        tab.screenshot(path=str(SCREENSHOTS / "mail-success.png"), full_page=True)
        tab.close()
