"""Test session setup: a private AIRFLOW_HOME, set before anything imports airflow."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_RESULTS = REPO.parent / "shared" / "omnetpp-results"
SHARED_LARGE = REPO.parent / "shared" / "omnetpp-results-large"

_HOME = Path(tempfile.mkdtemp(prefix="simpost-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["SIMPOST_RESULTS_ROOT"] = str(SHARED_RESULTS)
os.environ["SIMPOST_WORK_DIR"] = str(_HOME / "work")
# One folder for the whole session, whichever parallel worker asks (cluster.sqlite_template).
_TEMPLATES = Path(tempfile.gettempdir()) / f"simpost-test-{os.environ.get('PYTEST_XDIST_TESTRUNUID', os.getpid())}"
os.environ["SIMPOST_TEST_TEMPLATE_DIR"] = str(_TEMPLATES)

import resource  # noqa: E402
import sys  # noqa: E402
from collections import Counter  # noqa: E402

import pytest  # noqa: E402

AIRFLOW = str(Path(sys.executable).parent / "airflow")
POOLS = {"storage_uploads": 4, "results_parsing": 2}


@pytest.fixture(scope="session")
def shared_results() -> Path:
    """OMNeT++'s own result files, used in place (never copied into the repo)."""
    assert SHARED_RESULTS.is_dir(), f"missing {SHARED_RESULTS}: shared/ must sit beside the repo"
    return SHARED_RESULTS


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The session's AIRFLOW_HOME with a migrated SQLite DB and the pools the DAG uses."""
    from cluster import sqlite_template

    shutil.copyfile(sqlite_template(POOLS), _HOME / "airflow.db")
    return _HOME


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_HOME, ignore_errors=True)
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # the controller, or a serial run: the session is over
        shutil.rmtree(_TEMPLATES, ignore_errors=True)


def _drives_a_browser(item) -> bool:
    """The test, or a fixture it uses, starts Chromium (tests/browser.py)."""
    functions = [getattr(item, "function", None)] + [d.func for defs in item._fixtureinfo.name2fixturedefs.values()
                                                     for d in defs]
    return any("chromium" in getattr(getattr(f, "__code__", None), "co_names", ()) for f in functions)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Files that start Airflow deployments run first (the distributed one before all): on parallel
    workers (make test) the long files then overlap with the rest instead of running alone at the end.
    The sort is stable, so a file's tests keep their order. Tests that drive Chromium are marked
    `browser`, which make test-quick leaves out."""
    weight: dict = {}
    for item in items:
        if _drives_a_browser(item):
            item.add_marker(pytest.mark.browser)
        mark = 0 if item.get_closest_marker("distributed") else 1 if item.get_closest_marker("airflow") else 2
        weight[item.path] = min(weight.get(item.path, 2), mark)
    items.sort(key=lambda item: weight[item.path])


#: CPU seconds of long-lived children not reaped yet, as they report it (helpers.DagRunner)
CHILD_CPU = [0.0]


def _cpu_seconds() -> float:
    """This process's CPU plus that of the processes it started and reaped (Airflow's parts, servers)."""
    return CHILD_CPU[0] + sum(r.ru_utime + r.ru_stime
                              for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


_cpu_mark = [_cpu_seconds()]
_cpu_by_file: Counter = Counter()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report carries the CPU it cost (a module's deployment is paid by the test that
    starts or stops it), so the controller can say where the suite's cores went."""
    report = (yield).get_result()
    now = _cpu_seconds()
    report.user_properties.append(("cpu_s", now - _cpu_mark[0]))
    _cpu_mark[0] = now


def pytest_runtest_logreport(report):
    _cpu_by_file[report.nodeid.split("::")[0]] += dict(report.user_properties).get("cpu_s", 0.0)


def pytest_terminal_summary(terminalreporter):
    if _cpu_by_file:
        terminalreporter.write_sep("=", "CPU seconds per file (tests and the processes they started), top 15")
        for path, seconds in _cpu_by_file.most_common(15):
            terminalreporter.write_line(f"{seconds:8.1f}  {path}")
        terminalreporter.write_line(f"{sum(_cpu_by_file.values()):8.1f}  in all")
