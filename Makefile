# Two commands for users: `make local` and `make test`. Each sets up its own .venv from pinned versions.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 3000

.PHONY: setup local test lint typecheck unit bench model clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

setup: $(STAMP)

## Run the whole system on 127.0.0.1: local SageMaker runtime + local API on :$(PORT).
local: setup
	$(BIN)/python -m local --port $(PORT)

## ruff, mypy and the whole pytest suite.
test: setup lint typecheck
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/python -m pytest -q tests/unit

bench: setup
	$(BIN)/python -m bench.router_overhead

## Rebuild the iris ONNX model from scikit-learn's bundled data (the committed file is its output).
model: setup
	$(BIN)/python layers/models/iris/build_iris.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache cdk.out *.egg-info
