# Two commands on a fresh clone: `make run` and `make test`. Everything else is a step they take.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test test-sqlite test-postgres lint typecheck format check bench screenshots clean translations catalogs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Translations: the .po catalogs are committed; their .mo files are built here (and ignored by git).
PO := $(wildcard locales/*/LC_MESSAGES/messages.po)
MO := $(PO:.po=.mo)

%.mo: %.po $(STAMP)
	$(VENV)/bin/pybabel compile --statistics -i $< -o $@

catalogs: $(MO)

# After changing a message: extract every marked string (babel.cfg) and merge it into each catalog,
# then translate the new entries in de and ar (tests/test_i18n.py fails while one is missing).
translations: install
	$(VENV)/bin/pybabel extract -F babel.cfg -k N_ --no-location --sort-output -o locales/messages.pot .
	$(VENV)/bin/pybabel update -i locales/messages.pot -d locales --no-fuzzy-matching --ignore-obsolete --width 0
	$(MAKE) --no-print-directory catalogs

run: install catalogs
	$(PY) -m web serve

# The whole suite on SQLite; again on PostgreSQL when TEST_DATABASE_URL names one (.ci/run always does).
test: install catalogs
	scripts/ensure-system-packages
	$(MAKE) --no-print-directory test-sqlite
	@if [ -n "$$TEST_DATABASE_URL" ]; then $(MAKE) --no-print-directory test-postgres; \
	else echo "TEST_DATABASE_URL is not set: skipped the PostgreSQL pass (.ci/run sets it)."; fi

test-sqlite: install catalogs
	env -u TEST_DATABASE_URL -u E2E_DATABASE_URL $(PY) -m pytest

test-postgres: install catalogs
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
screenshots: install catalogs
	SCREENSHOTS=1 $(PY) -m pytest tests/e2e/test_screenshots.py tests/e2e/test_screenshots_ar.py -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
