# simpost: `make demo` and `make test` work on a fresh machine with only Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# The suite runs its files in parallel (pytest-xdist, one file per worker at a time: a file's
# fixtures, e.g. an Airflow deployment, are shared by its tests). Most of its time is spent waiting on
# Airflow's schedulers and on servers, so more workers than cores pays. TEST_WORKERS=0 runs serially.
# --no-loadscope-reorder keeps conftest.py's order (the long Airflow files first); xdist's default
# hands out the files with the most tests first, which left the longest files for the end.
TEST_WORKERS ?= 4
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

.PHONY: install demo test test-quick airflow bench clean

install: $(STAMP)

# Reinstall only when the pins or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

demo: install
	$(PY) scripts/demo.py

test: install
	deploy/ensure-docker-compose.sh
	deploy/ensure-chromium.sh
	$(PY) -m pytest $(XDIST) --durations=15 $(PYTEST_ARGS)

# The edit-run loop: no Airflow deployment, no browser, none of the slowest engine and server tests.
test-quick: install
	$(PY) -m pytest $(XDIST) -m "not airflow and not distributed and not browser and not slow" --durations=15 $(PYTEST_ARGS)

airflow: install
	$(PY) scripts/airflow_up.py

bench: install
	$(PY) benchmarks/bench_engine.py
	$(PY) benchmarks/bench_memory.py
	$(PY) benchmarks/bench_archive.py
	$(PY) benchmarks/bench_local_cloud.py
	$(PY) benchmarks/bench_verify.py
	$(PY) benchmarks/bench_s3.py

clean:
	rm -rf .airflow .demo
