# Two commands do all set-up on a fresh machine with Python 3.11+:
#   make run    create .venv from the requirements, migrate, serve on 127.0.0.1:8000
#   make test   the same bootstrap, then the whole test suite
# Developers: make test-fast (the suite without the slow crash, load and server trials),
# make lint, make format, make bench, make mutants, make mutants-mechanical. Production:
# make install (runtime packages only; docs/operations.md has the rest).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# Test processes (pytest-xdist); PYTEST_WORKERS=0 runs the suite in one process.
PYTEST_WORKERS ?= 2
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: install run test test-fast lint format migrate bench mutants mutants-mechanical clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

$(RUNTIME): requirements.txt | $(BIN)/python
	$(PIP) -r requirements.txt
	touch $(RUNTIME)

$(DEV): requirements.txt requirements-dev.txt | $(BIN)/python
	$(PIP) -r requirements-dev.txt
	touch $(RUNTIME) $(DEV)

install: $(RUNTIME)

migrate: $(DEV)
	@if [ -z "$${DJANGO_CONFIGURATION:-}" ] && [ -e /etc/portal/portal.env ]; then \
	  echo "make migrate is for development (the Dev SQLite database under var/), and this host" \
	    "has /etc/portal/portal.env: use deploy/bin/portal-manage migrate --no-input" >&2; \
	  exit 2; \
	fi
	$(BIN)/python manage.py migrate --no-input

run: migrate
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: $(DEV)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-fast: $(DEV)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not slow and not reliability" $(PYTEST_ARGS)

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEV)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(DEV)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

mutants: $(DEV)
	$(BIN)/python tests/mutants.py

# MUTANT_ARGS: e.g. --sample 200 --seed 7 --files 'portal/storage/*' --reuse
mutants-mechanical: $(DEV)
	$(BIN)/python tests/mechanical.py $(MUTANT_ARGS)

clean:
	rm -rf $(VENV) var
