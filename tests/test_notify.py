"""The user's mail about a run's final event: key scalars, run figures, resources, all of it escaped."""
from __future__ import annotations

import html
import re
from datetime import datetime, timezone

from simpost.notify import KEY_SCALARS, mail, one_line
from simpost.result import Delivery, RunInfo

from results_check import validate_result

HOSTILE = '<script>alert("x")</script>'


def _final(items: list[dict], count: int | None = None, problems=(), title: str = "Bench <b>4</b>") -> dict:
    delivery = Delivery(
        link='http://127.0.0.1:9/s/a"b<c>', size=1_234_567, sha256="0f" * 32, expires_at="2026-12-01T00:00:00+00:00",
        scalar_stats={"preset": "ops", "count": count or len(items), "truncated": bool(count), "items": items},
        sim_runtime_stats={"events": 4671, "sim_time": 3600, "elapsed": None},
        resources={"peak_sim_ram_bytes": 1887449088.0, "postprocessing_peak_rss_bytes": 52_000_000,
                   "postprocessing_wall_seconds": 12.5},
        stage_seconds={"collect": 0.1, "parse": 1.25}, problems=list(problems))
    run = RunInfo("sim-9", "manual__9", title, datetime(2026, 11, 21, tzinfo=timezone.utc))
    return validate_result(run.succeeded(delivery).as_dict())


def _item(n: int, module: str = "OPSNetwork", title: str | None = None) -> dict:
    item = {"run": "r", "module": module, "name": f"stat{n}:last", "kind": "scalar", "value": n * 1000}
    return {**item, "title": title, "unit": "byte", "layer": "link", "type": "int"} if title else item


def _cells(body: str, caption: str) -> list[list[str]]:
    table = body.split(f"<h3>{caption}")[1].split("</table>")[0]
    return [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table) if "<td>" in row]


def test_mail_shows_the_key_scalars_and_figures_in_tables():
    subject, body = mail(_final([_item(i, title=f"Stat {i}") for i in range(3)]))
    assert subject == "[simpost] Bench <b>4</b> (sim-9): results ready"  # a subject is plain text
    assert _cells(body, "Key results")[0] == ["Stat 0", "OPSNetwork", "0", "byte"]
    assert _cells(body, "Key results")[2][2] == "2,000"
    assert ["peak sim ram bytes", "1,887,449,088 (1,800.0 MiB)"] in _cells(body, "Resources")
    assert ["elapsed", "not recorded"] in _cells(body, "Simulation run")
    assert ["parse", "1.25"] in _cells(body, "Stages (seconds)")


def test_mail_caps_the_scalar_table_and_says_where_the_rest_is():
    _, body = mail(_final([_item(i) for i in range(KEY_SCALARS)], count=5000))
    assert len(_cells(body, "Key results")) == KEY_SCALARS
    assert f"Key results ({KEY_SCALARS} of 5000; all of them in the archive)" in body


def test_everything_from_result_files_and_the_conf_is_escaped():
    _, body = mail(_final([_item(1, module=HOSTILE, title=HOSTILE)], problems=[f"a.vec: {HOSTILE}"],
                          title=HOSTILE))
    assert "<script>" not in body and "<b>" not in body
    assert body.count(html.escape(HOSTILE)) == 4  # lead, table title, table module, problem
    assert 'href="http://127.0.0.1:9/s/a&quot;b&lt;c&gt;"' in body


def test_a_title_cannot_add_mail_headers():
    subject, _ = mail(_final([], title="Run\r\nBcc: everyone@example.org\tnow"))
    assert subject == "[simpost] Run Bcc: everyone@example.org now (sim-9): results ready"


def test_failure_mail_names_the_stage_and_reason_escaped():
    run = RunInfo("sim-9", "manual__9", None, datetime(2026, 11, 21, tzinfo=timezone.utc))
    final = validate_result(run.failed("parse", one_line(ValueError(f"bad {HOSTILE}\nsecond line"))).as_dict())
    subject, body = mail(final)
    assert subject == "[simpost] sim-9: post-processing failed"
    assert _cells(body, "Why") == [["Stage", "parse"], ["Reason", f"ValueError: bad {html.escape(HOSTILE)}"]]
    assert "second line" not in body
