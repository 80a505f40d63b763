# The two commands of the README, and a few more for developers.
#   make quickstart   set up a virtualenv, install orch, run jobs/quickstart.toml
#   make test         set up a virtualenv with the test extras, run the test suite
# orch runs on Python 3.11 or 3.12 (pyproject's requires-python): take the first of
# python3.11, python3.12, python3 that is one of them, or name one: `make PY=/path/python`.
ifeq ($(origin PY),undefined)
PY := $(shell for p in python3.11 python3.12 python3; do \
	v=$$($$p -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue; \
	if [ "$$v" = 3.11 ] || [ "$$v" = 3.12 ]; then echo $$p; break; fi; done)
endif
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: quickstart install install-test test test-fast test-slow lint format clean

quickstart: install
	$(BIN)/orch submit jobs/quickstart.toml

$(BIN)/python:
	@test -n "$(PY)" || { echo "make: orch needs Python 3.11 or 3.12, and none of" \
	  "python3.11, python3.12, python3 on PATH is one. Install one (e.g. apt install" \
	  "python3.12-venv) or name it: make PY=/path/to/python3.12" >&2; exit 2; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Stamps: pip runs again only when pyproject.toml changed (lint, test and test-slow in
# one CI run would otherwise each spend a minute re-resolving every dependency).
install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# The whole suite but the tests marked slow (long trainings, heavy models): every
# integration path runs at least once here. `make test-slow` runs the rest.
test: install-test
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

test-fast: install-test
	$(BIN)/pytest tests/unit -m "not slow" $(PYTEST_ARGS)

test-slow: install-test
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check orchestrator tests benchmarks
	$(BIN)/ruff format --check orchestrator tests benchmarks
	$(BIN)/mypy

format: install-test
	$(BIN)/ruff format orchestrator tests benchmarks
	$(BIN)/ruff check --fix orchestrator tests benchmarks

clean:
	rm -rf .orch .pytest_cache build *.egg-info
