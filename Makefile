# FinanceHub task platform. `make run` brings the whole system up; `make test` runs the suite;
# bin/manage runs a management command (it installs .venv first when needed).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test chaos check lint format install install-dev prepare bench clean

# Create the virtualenv (once) and install runtime requirements when they change.
$(VENV)/.base: requirements/base.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/base.txt
	touch $@

# Test and lint tools on top of the runtime set.
$(VENV)/.dev: $(VENV)/.base requirements/dev.txt
	$(PY) -m pip install -q -r requirements/dev.txt
	touch $@

install: $(VENV)/.base
install-dev: $(VENV)/.dev

# Migrate, load demo assets, sync schedules, create local credentials.
prepare: install
	$(PY) backend/manage.py prepare_stack

# Start web (admin), worker, beat and Flower together; Ctrl-C stops them all.
run: prepare
	FLOWER_BASIC_AUTH="$$(cat $${FINANCEHUB_VAR_DIR:-var}/flower_credentials)" exec $(BIN)/honcho -e /dev/null -f Procfile start

# The test suite (integration tests start real worker subprocesses), the same run here and in CI:
# bin/services.py finds or starts PostgreSQL and Redis (or keeps DATABASE_URL/REDIS_URL as set);
# a service it cannot provide skips the tests that need it, or fails under FINANCEHUB_REQUIRE_SERVICES=1.
test: install-dev
	@services="$$($(PY) bin/services.py)" && eval "$$services" && set -x && \
	FINANCEHUB_VAR_DIR=$${FINANCEHUB_VAR_DIR:-var/test} $(PY) -m pytest $(PYTEST_ARGS)

# The whole chaos suite (docs/RELIABILITY.md): private Redis/PostgreSQL, real worker and beat, faults
# injected on purpose. `make test` runs only its short scenarios.
chaos: install-dev
	FINANCEHUB_CHAOS=1 FINANCEHUB_VAR_DIR=$${FINANCEHUB_VAR_DIR:-var/test} $(PY) -m pytest tests/chaos $(PYTEST_ARGS)

# Lint and formatting, as CI runs them.
check: install-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

# Format the tree in place.
format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var/broker var/*.sqlite3
