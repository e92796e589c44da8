# The two commands of the README's quick start, and their plumbing.
#   make serve   start the server on the embedded SQLite database (installs what it needs)
#   make test    run the whole test suite (installs what it needs)
#   make bench   run the benchmark suite, bench/run (ARGS=--quick for a short run)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ARGS   ?=

.PHONY: serve test bench clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

serve: $(VENV)/.installed
	$(PY) run_server.py $(ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest $(ARGS)

bench: $(VENV)/.installed
	$(PY) bench/run $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
