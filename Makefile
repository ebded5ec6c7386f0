# The two commands of the README's quick start: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test check install install-test browser prometheus lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

# Installed again only when pyproject.toml changes (the code is an editable install): the
# inner loop does not wait for pip to find everything already there.
$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test,dev]"
	touch $@

install-test: $(VENV)/.test-installed

# Debian's chromium for the browser tests (Playwright drives it; it cannot download its own).
browser:
	@command -v chromium >/dev/null 2>&1 || scripts/install-chromium

# Debian's prometheus and promtool for the usage tests (a real Prometheus, history backfilled).
prometheus:
	@command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || scripts/install-prometheus

## Install and start the whole system on embedded defaults (SQLite, development mailbox).
run: install
	$(BIN)/flask --app registry dev --host $(HOST) --port $(PORT) $(DEV_ARGS)

# One pytest-xdist worker per core; a finished worker takes tests from a busy one's queue.
XDIST ?= -n auto --dist worksteal

## Install the test dependencies and run the tests (REGISTRY_TEST_DATABASE_URL for PostgreSQL).
test: install-test browser prometheus
	$(BIN)/pytest $(XDIST) --durations=20 $(PYTEST_ARGS)

## The inner loop: the tests that need only the app and the database (no browser, no processes).
check: install-test
	$(BIN)/pytest $(XDIST) -m "not browser and not processes" $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) instance/registry.sqlite* .pytest_cache
