# Tributary: `make run` starts the platform, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install lint benchmark lock

$(STAMP): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	$(VENV)/bin/honcho start -f Procfile

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
