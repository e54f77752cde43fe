# The README's two commands are `make run` and `make test`; everything else is for contributors.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: run test install lint types audit bench bench-payments chaos soak lock clean

$(BIN)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "PixWave needs Python 3.11 or newer"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(BIN)/.installed

## Start PixWave on its embedded default (SQLite under ./var, in-process everything).
run: install
	$(BIN)/pixwave up --port $(PORT)

## Run the whole suite: lint, types (src and tests), then the tests (MariaDB and Redis on 127.0.0.1).
test: install lint types
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

types: install
	$(BIN)/mypy

## Known vulnerabilities in the locked dependencies (asks PyPI; STRICT=1 also fails on any
## dependency it could not look up, e.g. where PyPI's per-release JSON is not reachable).
audit: install
	$(BIN)/pip-audit -r requirements.lock --require-hashes --disable-pip --progress-spinner off $(if $(STRICT),--strict)

bench: install
	$(BIN)/python bench/transfers.py

## The payments engine: deposits, charges, webhooks, cached reads, failover (see bench/README.md).
bench-payments: install
	$(BIN)/python bench/payments.py

## The production shape under load and injected faults, judged by the history checker
## (docs/reliability.md). CI runs a short version as part of `make test`.
chaos: install
	$(BIN)/python -m tests.chaos run $(CHAOS_ARGS)

## 30 minutes at a steady rate: RSS, latency per minute, errors and the audit (docs/reliability.md).
soak: install
	$(BIN)/python -m tests.chaos soak $(SOAK_ARGS)

## Re-resolve the lockfile after changing dependencies in pyproject.toml.
lock:
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes --override overrides.txt -o requirements.lock

clean:
	rm -rf $(VENV) var/*.db .pytest_cache .mypy_cache .ruff_cache
