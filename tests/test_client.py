"""The simulator-side CLI's own logic: the stage bar, arguments refused before any call to Airflow.
(The REST calls run against a real Airflow in test_rest_e2e.py.)"""
from __future__ import annotations

import pytest
from simpost.result import RESULT_KEY
from simpost.stage import STAGES
from simpost_client import client
from simpost_client.__main__ import main

STAGE_LIST = list(STAGES)


def test_the_bar_counts_the_stages_done_and_names_the_current_one():
    assert client.progress_bar(STAGE_LIST, {}, width=12) == "[------------] 0/6 waiting"
    states = {"collect": "success", "parse": "success", "stats": "running", "cleanup": "scheduled"}
    assert client.progress_bar(STAGE_LIST, states, width=12) == "[####--------] 2/6 stats running"
    failed = {"collect": "failed", "parse": "upstream_failed"}
    assert client.progress_bar(STAGE_LIST, failed, width=12) == "[------------] 0/6 collect failed, parse upstream_failed"
    done = {s: "success" for s in STAGE_LIST}
    assert client.progress_bar(STAGE_LIST, done, width=12) == "[############] 6/6 done"


def test_the_client_reads_the_result_xcom_the_dag_writes():
    assert client.RESULT_KEY == RESULT_KEY  # the client cannot import the DAG's code (requests only)


@pytest.mark.parametrize("args, words", [
    (["--resources", "peak_ram=1"], "KEY=NUMBER with KEY one of peak_sim_ram_bytes"),
    (["--resources", "peak_disk_bytes=lots"], "'lots' is not a number"),
    (["--callback-events", "some"], "invalid choice"),
    (["--graphs", "pdf"], "invalid choice"),
])
def test_bad_run_options_are_refused_before_calling_airflow(args, words, capsys, monkeypatch):
    monkeypatch.setenv("SIMPOST_AIRFLOW_PASSWORD", "x")
    with pytest.raises(SystemExit) as exit_:
        main(["--airflow", "http://127.0.0.1:9", "run", "--simulation-id", "s", "--results-dir", "d",
              "--backend", "b", *args])
    assert exit_.value.code == 2 and words in capsys.readouterr().err


def test_export_since_takes_a_date_or_time_in_utc_unless_zoned(capsys, monkeypatch):
    from simpost_client.__main__ import _since

    assert _since("2026-11-21") == "2026-11-21T00:00:00+00:00"
    assert _since("2026-11-21T14:30+02:00") == "2026-11-21T14:30:00+02:00"
    monkeypatch.setenv("SIMPOST_AIRFLOW_PASSWORD", "x")
    with pytest.raises(SystemExit):
        main(["export-stats", "--since", "last week"])
    assert "is not a date like 2026-11-21" in capsys.readouterr().err


def test_restore_options_are_checked_before_calling_airflow(capsys, monkeypatch):
    monkeypatch.setenv("SIMPOST_AIRFLOW_PASSWORD", "x")
    with pytest.raises(SystemExit) as exit_:
        main(["--airflow", "http://127.0.0.1:9", "restore", "sim-1", "--keep-days", "many"])
    assert exit_.value.code == 2 and "invalid int value" in capsys.readouterr().err
