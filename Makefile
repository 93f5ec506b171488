# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LOCALES := $(wildcard locales/*/LC_MESSAGES/kvisa.po)
CATALOGS := $(LOCALES:.po=.mo)

.PHONY: demo test lint catalogs messages check bench clean fmt

demo: $(VENV)/.installed $(CATALOGS)
	$(BIN)/kvisa chat

test: lint $(CATALOGS)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Style, layers and types: ruff (lint and format drift; `make fmt` fixes), import-linter, mypy.
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m mypy kvisa

# Validate flows/ (the same check the bot runs when it loads them).
check: $(VENV)/.installed $(CATALOGS)
	$(BIN)/kvisa flows check

$(VENV)/.python-ok:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "Python 3.11 or newer is needed (found: $$($(PYTHON) --version 2>&1)). Set PYTHON=/path/to/python3.11." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	touch $@

$(VENV)/.installed: $(VENV)/.python-ok pyproject.toml hatch_build.py
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.python-ok pyproject.toml hatch_build.py
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

catalogs: $(CATALOGS)

locales/%/LC_MESSAGES/kvisa.mo: locales/%/LC_MESSAGES/kvisa.po $(VENV)/.python-ok
	@test -x $(BIN)/pybabel || $(BIN)/pip install -q babel
	$(BIN)/pybabel compile -D kvisa -l $* -i $< -o $@

# Re-extract every message from kvisa/ and flows/ and merge into the catalogs.
messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k t -k N_ -k plural:1,2 --no-location --sort-output -w 100 -o locales/kvisa.pot .
	$(BIN)/pybabel update -D kvisa -d locales -i locales/kvisa.pot --no-fuzzy-matching --ignore-obsolete -w 100

bench: $(VENV)/.installed-test $(CATALOGS)
	@for b in $(filter-out bench/common.py,$(wildcard bench/*.py)); do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var build dist .pytest_cache .hypothesis locales/*/LC_MESSAGES/*.mo

# Format and fix what ruff can; `make test` fails on what is left.
fmt: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
