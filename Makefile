# simpost: `make demo` and `make test` work on a fresh machine with only Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test airflow bench clean

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
	$(PY) -m pytest $(PYTEST_ARGS)

airflow: install
	$(PY) scripts/airflow_up.py

bench: install
	$(PY) benchmarks/bench_engine.py
	$(PY) benchmarks/bench_memory.py
	$(PY) benchmarks/bench_archive.py
	$(PY) benchmarks/bench_local_cloud.py

clean:
	rm -rf .airflow .demo
