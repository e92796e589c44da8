# The two commands of the README's quick start, and their plumbing.
#   make serve   start the server on the embedded SQLite database (installs what it needs)
#   make test    run the whole test suite (installs what it needs)
#   make bench   run the benchmark suite, bench/run (ARGS=--quick for a short run)
# Each installs only what it needs into .venv, once (again after setup.py changes): serving
# needs the runtime packages alone; the tests add the `test` extra (pytest, Playwright,
# schemathesis, RQ, Celery...: ~300 MB), the benchmarks the `bench` extra (RQ, Celery).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ARGS   ?=

.PHONY: serve test bench clean

$(VENV)/.runtime: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.test: $(VENV)/.runtime
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.bench: $(VENV)/.runtime
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $@

serve: $(VENV)/.runtime
	$(PY) run_server.py $(ARGS)

test: $(VENV)/.test
	$(PY) -m pytest $(ARGS)

bench: $(VENV)/.bench
	$(PY) bench/run $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
