# nsx-l2gw-lab. Every target that touches the network needs root.
#   sudo make run     set up (idempotent), then run the default lab job
#   sudo make test    set up, then unit + integration tests
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup run test unit integration bench clean-lab

setup:
	@bash scripts/setup.sh

run: setup
	$(PY) run.py

test: setup
	$(PY) -m pytest -q -p no:cacheprovider --durations=30 tests/unit tests/integration

unit:
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

integration: setup
	$(PY) -m pytest -q -p no:cacheprovider tests/integration

bench: setup
	$(PY) run.py bench boot

clean-lab:
	$(PY) run.py clean
