# The two commands of the README, and a few more for developers.
#   make quickstart   set up a virtualenv, install orch, run jobs/quickstart.toml
#   make test         set up a virtualenv with the test extras, run the test suite
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: quickstart install install-test test test-fast test-slow lint format clean

quickstart: install
	$(BIN)/orch submit jobs/quickstart.toml

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

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

format: install-test
	$(BIN)/ruff format orchestrator tests benchmarks
	$(BIN)/ruff check --fix orchestrator tests benchmarks

clean:
	rm -rf .orch .pytest_cache build *.egg-info
