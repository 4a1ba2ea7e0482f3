# Two commands on a fresh clone: `make run` and `make test`. Everything else is a step they take.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test test-sqlite test-postgres lint typecheck format check bench screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m web serve

# The whole suite on SQLite; again on PostgreSQL when TEST_DATABASE_URL names one (.ci/run always does).
test: install
	scripts/ensure-system-packages
	$(MAKE) --no-print-directory test-sqlite
	@if [ -n "$$TEST_DATABASE_URL" ]; then $(MAKE) --no-print-directory test-postgres; \
	else echo "TEST_DATABASE_URL is not set: skipped the PostgreSQL pass (.ci/run sets it)."; fi

test-sqlite: install
	env -u TEST_DATABASE_URL -u E2E_DATABASE_URL $(PY) -m pytest

test-postgres: install
	E2E_DATABASE_URL="$$TEST_DATABASE_URL" $(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

check: lint typecheck test

bench: install
	$(PY) bench/run.py $(if $(PROFILE),--profile)

# The picture gallery of docs/screenshots/ (README.md shows it), taken by a browser test.
screenshots: install
	SCREENSHOTS=1 $(PY) -m pytest tests/e2e/test_screenshots.py -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
