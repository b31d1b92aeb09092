"""scalar_stats and the result events built from real engine output: OPS's per-simulation values, in
the one schema the simulator hears."""
from __future__ import annotations

import csv
import math
from datetime import datetime, timedelta, timezone

import pytest
from omnetpp_results import parse, stats
from omnetpp_results.selection import load_ops
from simpost.result import Delivery, RunInfo, problem_lines, resources, sim_runtime_stats, stage_seconds
from simpost.scalar_stats import STATISTIC_FIELDS, scalar_stats, value_of
from simpost.stage import STAGES

from ops_network import NETWORK, write_ops_results
from results_check import sca_scalars, validate_result

START = datetime(2026, 11, 21, 10, 0, tzinfo=timezone.utc)


def _engine(source, tmp_path, statistics="all", runconfig=None):
    parse(source, tmp_path / "parsed", runconfig=runconfig, statistics=statistics)
    return stats(tmp_path / "parsed", tmp_path / "archive", statistics=statistics, graphs=False)


def test_ops_preset_gives_every_preset_row_with_the_sca_value(tmp_path):
    sca = write_ops_results(tmp_path / "ops", seed=7)
    summary = _engine(tmp_path / "ops", tmp_path, "ops", runconfig="Benchmark-04")
    found = scalar_stats(tmp_path / "archive", "ops", summary["runs"]).as_dict()
    written = sca_scalars(sca, NETWORK)
    preset = load_ops()
    assert found["preset"] == "ops" and found["count"] == len(preset) and not found["truncated"]
    assert [i["title"] for i in found["items"]] == [s.name for s in preset]
    for item, row in zip(found["items"], preset):
        assert (item["layer"], item["unit"], item["type"]) == (row.layer, row.unit, row.type)
        text = written.get(item["name"])
        if text is None:
            assert item["value"] is None and item["module"] is None  # not recorded in this run
        elif "nan" in text:
            assert item["value"] == "nan"
        else:
            assert item["module"] == NETWORK and item["value"] == (int(text) if row.type == "int" else float(text))
            assert isinstance(item["value"], int if row.type == "int" else float)
    assert sum(i["value"] is None for i in found["items"]) == 1  # the host copies of the names are not taken


def test_other_presets_give_every_scalar_and_statistic_field_as_in_the_archive(shared_results, tmp_path):
    summary = _engine(shared_results / "routing-Net10", tmp_path)
    found = scalar_stats(tmp_path / "archive", "all", summary["runs"]).as_dict()
    scalars = list(csv.DictReader(open(tmp_path / "archive" / "csv" / "scalars.csv")))
    statistics = list(csv.DictReader(open(tmp_path / "archive" / "csv" / "statistics.csv")))
    assert found["count"] == len(scalars) + len(STATISTIC_FIELDS) * len(statistics) == len(found["items"])
    assert not found["truncated"] and found["preset"] == "all"
    for item, row in zip(found["items"], scalars):
        assert (item["module"], item["name"], item["kind"]) == (row["module"], row["name"], "scalar")
        expected = float(row["value"])
        assert item["value"] == "nan" if math.isnan(expected) else item["value"] == expected
    stat = found["items"][len(scalars)]
    assert stat["kind"] == "statistic" and stat["field"] == "count" and stat["value"] == int(statistics[0]["count"])


def test_many_values_are_capped_with_the_count_and_a_truncated_flag(shared_results, tmp_path):
    summary = _engine(shared_results / "routing-Net60CutThrough", tmp_path)
    found = scalar_stats(tmp_path / "archive", "all", summary["runs"]).as_dict()
    assert found["count"] == 1800 + 6 * 381 and found["truncated"] and len(found["items"]) == 1000
    small = scalar_stats(tmp_path / "archive", ["*:count"], summary["runs"], limit=5).as_dict()
    assert small["preset"] == "patterns" and len(small["items"]) == 5 and small["truncated"]


@pytest.mark.parametrize("text, type_, value", [
    ("12", None, 12), ("-3", "float", -3), ("1e+06", "int", 1000000), ("1e+06", None, 1e6),
    ("2.5", "int", 2.5), ("-nan", None, "nan"), ("inf", None, "inf"), ("-inf", "int", "-inf"),
    ("1.#INF", None, None), ("", None, None), ("123456789012345678901", None, 123456789012345678901),
])
def test_values_become_json_without_losing_precision(text, type_, value):
    assert value_of(text, type_) == value and type(value_of(text, type_)) is type(value)


def test_success_event_of_a_real_run_matches_the_schema(shared_results, tmp_path):
    summary = _engine(shared_results / "aloha-PureAloha1", tmp_path)
    found = scalar_stats(tmp_path / "archive", "all", summary["runs"])
    figures = [{"stage": s, "seconds": 0.5 * i, "peak_rss_bytes": 1000 * i} for i, s in enumerate(STAGES[:5], 1)]
    delivery = Delivery(link="http://127.0.0.1:1/s/abc", size=1234, sha256="ab" * 32, expires_at=None,
                        scalar_stats=found.as_dict(), sim_runtime_stats=sim_runtime_stats(summary["simrun"]),
                        resources=resources({"peak_disk_bytes": 5e9}, 5000, 42.0),
                        stage_seconds=stage_seconds(figures), problems=[])
    run = RunInfo("sim-1", "manual__1", "", START)
    body = validate_result(run.succeeded(delivery, now=START + timedelta(seconds=42.5)).as_dict())
    assert body["sim_runtime_stats"]["events"] == 38516 and body["seconds"] == 42.5 and body["title"] is None
    assert body["resources"] == {"peak_disk_bytes": 5e9, "postprocessing_peak_rss_bytes": 5000,
                                 "postprocessing_wall_seconds": 42.0}
    assert body["stage_seconds"] == {"collect": 0.5, "parse": 1.0, "stats": 1.5, "zip": 2.0, "upload": 2.5}


def test_a_delivery_with_problems_is_a_warning_and_the_schema_ties_the_two():
    base = dict(link="http://127.0.0.1:1/s/abc", size=1, sha256="ab" * 32, expires_at=None,
                scalar_stats={"preset": "all", "count": 0, "truncated": False, "items": []},
                sim_runtime_stats=sim_runtime_stats(None), resources=resources({}, 1, 1.0), stage_seconds={})
    run = RunInfo("sim-1", "manual__1", None, START)
    warned = validate_result(run.succeeded(Delivery(**base, problems=["a.vec: cut (7 bytes ignored)"])).as_dict())
    assert warned["state"] == "warning"
    assert validate_result(run.succeeded(Delivery(**base)).as_dict())["state"] == "success"
    with pytest.raises(AssertionError, match="problems"):
        validate_result({**warned, "problems": []})  # a warning names its problems
    with pytest.raises(AssertionError, match="problems"):
        validate_result({**warned, "state": "success"})  # and a success has none


def test_progress_and_failure_events_match_the_schema():
    run = RunInfo("sim-1", "manual__1", "A title", START)
    events = [run.start(now=START)] + [run.stage_ended(s, now=START + timedelta(seconds=i))
                                       for i, s in enumerate(STAGES[:-1], 1)]
    bodies = [validate_result(e.as_dict()) for e in events]
    assert [b["event"] for b in bodies] == ["start"] + ["stage"] * 5
    assert [b["percent"] for b in bodies] == [0, 16.7, 33.3, 50.0, 66.7, 83.3]
    failed = validate_result(run.failed("parse", "ResultsError: truncated", {"collect": 0.2}).as_dict())
    assert failed["state"] == "failed" and failed["link"] is None and failed["stage"] == "parse"
    with pytest.raises(AssertionError, match="stage"):
        validate_result({**failed, "stage": "elsewhere"})


def test_resources_keep_the_simulators_figures_and_add_the_postprocessings():
    merged = resources({"peak_sim_ram_bytes": 4.0, "peak_disk_bytes": None, "sim_wall_seconds": 5.0,
                        "source": {"peak_sim_ram_bytes": "param"}}, 6, 7.0)
    assert merged == {"peak_sim_ram_bytes": 4.0, "sim_wall_seconds": 5.0,
                      "postprocessing_peak_rss_bytes": 6, "postprocessing_wall_seconds": 7.0}


def test_problems_become_short_lines_capped():
    cut = {"path": "/w/in/results/a.vec", "line": None, "message": "cut off mid-line", "bytes_ignored": 12,
           "skipped": False}
    bad = {"path": "b.sca", "line": 7, "message": "not a number", "bytes_ignored": 0, "skipped": True}
    long = {"path": "c.vec", "line": None, "message": "x" * 400, "bytes_ignored": 0, "skipped": True}
    lines = problem_lines([cut, bad] + [long] * 60)
    assert lines[:2] == ["a.vec: cut off mid-line (12 bytes ignored)", "b.sca: not a number (line 7)"]
    assert len(lines) == 50 and lines[-1] == "... and 13 more" and len(lines[2]) == 300
