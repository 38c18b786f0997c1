# Tributary: `make run` starts the platform, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The run command serves with DEBUG off; `DEBUG=1 make run` is the development switch.
DEBUG ?= 0
PORT ?= 8000
export DEBUG PORT

.PHONY: run serve test install lint benchmark lock

$(STAMP): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	$(PY) -m config.run

# Only start web, worker and beat (honcho, Procfile); Ctrl-C stops them cleanly.
serve:
	$(PY) -m config.run

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

benchmark: install
	$(PY) manage.py benchmark

# Re-pin after editing pyproject.toml (needs network to PyPI).
lock:
	$(PY) -m pip install --quiet uv && $(VENV)/bin/uv pip compile pyproject.toml --extra test --generate-hashes --python-version 3.11 -o requirements.lock
