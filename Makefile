# Varde: the everyday commands. `make help` lists them. `make run` and `make test` do everything on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi
HOST ?= 127.0.0.1
PORT ?= 5000
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: help messages run worker wrk test test-sqlite test-pg install install-dev browser translations vendor lint format bench clean

## run: install, migrate, build demo data, serve at http://127.0.0.1:5000 (with the worker) and print demo logins
run: install
	$(BIN)/flask db upgrade
	VARDE_DEMO=1 $(BIN)/flask demo
	@echo "Varde runs at http://$(HOST):$(PORT) with its background worker  (stop both with Ctrl+C)"
	@VARDE_DEMO=1 $(BIN)/huey_consumer app.tasks.huey --workers 2 --worker-type thread --delay 0.1 --max-delay 0.5 --quiet & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	VARDE_DEMO=1 $(BIN)/gunicorn --workers 1 --threads 8 --bind $(HOST):$(PORT) --access-logfile - wsgi:app

## worker: the background worker alone (timed release; push delivery later), on Redis when REDIS_URL is set
worker: install
	$(BIN)/huey_consumer app.tasks.huey --workers 2 --worker-type thread --delay 0.1 --max-delay 0.5

## test: install what the tests need and run the whole suite (SQLite, then PostgreSQL when reachable)
test: install-dev browser
	$(BIN)/ruff check app tests bench scripts
	$(BIN)/ruff format --check app tests bench scripts
	$(MAKE) --no-print-directory test-sqlite
	@if $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 2)" 2>/dev/null; then \
		$(MAKE) --no-print-directory test-pg; \
	elif [ -n "$$VARDE_REQUIRE_PG" ]; then \
		echo "PostgreSQL is required here (VARDE_REQUIRE_PG) but 127.0.0.1:5432 does not answer"; exit 1; \
	else \
		echo "PostgreSQL on 127.0.0.1:5432 does not answer: the PostgreSQL run is skipped (CI always runs it)"; \
	fi

test-sqlite: install-dev
	$(BIN)/pytest -q

test-pg: install-dev
	TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -q

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the pins change.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed translations
install-dev: $(VENV)/.installed-dev translations node_modules/.installed

# Test-only front-end package (axe-core), pinned in package-lock.json.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: accessibility checks will be skipped (install Node.js to enable them)"; fi

## browser: Debian's chromium for the browser tests (never a downloaded browser), and dbus-daemon,
## through which headless chromium shows notifications (the tests click them like a user)
browser:
	@if command -v chromium >/dev/null && command -v dbus-daemon >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -qq chromium dbus-daemon >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium dbus-daemon >/dev/null); \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
		sudo apt-get install -y -qq chromium dbus-daemon >/dev/null; \
	else \
		echo "chromium or dbus-daemon is missing and cannot be installed here: some browser tests will be skipped."; \
		echo "Enable them with: sudo apt-get install chromium dbus-daemon"; \
	fi

## translations: compile the message catalogues (bokmål is the source language; English is translated)
translations: $(BIN)/python $(VENV)/.installed
	@$(BIN)/pybabel compile -d app/translations 2>&1 | grep -v '^compiling' || true

## messages: extract strings and update the catalogues after changing text
messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k lazy_pgettext:1c,2 --no-location --sort-output -o app/translations/messages.pot app
	$(BIN)/pybabel update -i app/translations/messages.pot -d app/translations --no-fuzzy-matching

## vendor: refresh app/static/vendor from the pinned npm packages
vendor:
	./scripts/vendor.sh

lint: install-dev
	$(BIN)/ruff check app tests bench scripts
	$(BIN)/ruff format --check app tests bench scripts

format: install-dev
	$(BIN)/ruff format app tests bench scripts
	$(BIN)/ruff check --fix app tests bench scripts

## bench: page weight, throughput, record, push and appointments benchmarks against their baselines (see README, Benchmarks)
bench: install-dev browser wrk
	$(BIN)/python bench/run.py

# wrk (Debian's package) drives the throughput benchmarks.
wrk:
	@if command -v wrk >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -qq wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null); \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
		sudo apt-get install -y -qq wrk >/dev/null; \
	else \
		echo "wrk is missing and cannot be installed here: sudo apt-get install wrk"; exit 1; \
	fi

clean:
	rm -rf $(VENV) node_modules instance .pytest_cache

help:
	@grep -E '^## ' Makefile | sed 's/^## /  make /'
