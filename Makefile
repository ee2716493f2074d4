# Two commands for users: `make local` and `make test`. Each sets up its own .venv from pinned versions.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp
PORT ?= 3000
RUNTIME_PORT ?= 8080
STAGE ?= dev
# The model config `make local` serves (local/models.rollout.json: iris with a canary and a shadow version).
CONFIG ?= functions/models.json
# jsii prints a page-long end-of-life banner on Node 20 in every process that loads aws-cdk-lib.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

# Plain `make` installs both toolchains (the venv and the CDK CLI), as `make setup` does.
.DEFAULT_GOAL := setup

.PHONY: setup local test lint typecheck unit infra synth redrive bench load layers package-model model clean fuzz alarms

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,dlc]'
	touch $@

# The CDK CLI, pinned to the 2.x line in package-lock.json (3.x cannot read aws-cdk-lib 2 output).
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(STAMP) $(NODE_STAMP)

## Run the whole system on 127.0.0.1: local API on :$(PORT), local SageMaker runtime on :$(RUNTIME_PORT)
## (`make local PORT=3001 RUNTIME_PORT=8081` when either is taken; `CONFIG=local/models.rollout.json` for versions).
local: setup
	$(BIN)/python -m local --port $(PORT) --runtime-port $(RUNTIME_PORT) --config $(CONFIG)

## ruff, mypy and the whole pytest suite (with the arm64 onnxruntime layer built, so its tests run; BUILD_LAYERS=1
## also builds the same recipe for this machine and runs a model with it: ~40 MB of wheels from PyPI, cached).
test: setup lint typecheck layers
	BUILD_LAYERS=1 $(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/python -m pytest -q tests/unit

## The infra tests alone: assertions on both stages' templates, cdk-nag, cfn-lint, the CLI synth.
infra: setup layers
	$(BIN)/python -m pytest -q tests/infra

## Write cdk.out/ for STAGE (dev|prod) offline: no AWS credentials, no Docker, no context lookups. The default
## config runs digits inside the router, so the onnxruntime layer is built first (cached after the first time).
synth: setup layers
	npx --no-install cdk synth --quiet --no-notices -c stage=$(STAGE)

## Every alarm of each stage's synthesized templates evaluated as CloudWatch would against a day of simulated
## metrics per scenario (offline): the scenario x alarm table. `make alarms ARGS="--stage prod --json"`.
alarms: setup
	$(BIN)/python -m ops.alarm_simulator $(ARGS)

## Move dead letters back to the result queue: `make redrive ARGS=--dry-run`, `ARGS="--stack InferenceRouter-prod"`.
redrive: setup
	$(BIN)/python -m ops redrive $(ARGS)

## The worst bodies at the router's body limit (bench.hostile_bodies): time to refusal and peak RSS growth.
## Synth time and stack sizes for 1, 50 and 200 generated models (bench.synth_scale) close the run.
## The batching target (3x at concurrency 32, p99 <= 2x) is enforced on the 2048-wide MLP; the 512-wide one is
## HTTP-bound on 2 cores (the model is ~0.05 ms of a ~0.25 ms request), so its run only reports the verdict.
bench: setup
	$(BIN)/python -m bench.router_overhead
	$(BIN)/python -m bench.shadow_overhead
	$(BIN)/python -m bench.capture_overhead
	$(BIN)/python -m bench.output_contract
	$(BIN)/python -m bench.hostile_bodies
	BENCH_TARGET=report $(BIN)/python -m bench.batching
	BENCH_MODELS=mlp BENCH_MLP_WIDTH=2048 $(BIN)/python -m bench.batching
	$(BIN)/python -m bench.serving_server
	$(BIN)/python -m bench.in_lambda
	$(BIN)/python -m bench.binary_tensors
	$(BIN)/python -m bench.synth_scale
	$(BIN)/python -m bench.capacity_plan
	$(BIN)/python -m bench.simulator_vs_local

## Fixed-concurrency load on the local stack, healthy and with 10% faults + a throttle (default 32 clients x 60 s).
load: setup
	$(BIN)/python -m bench.load $(ARGS)

## The onnxruntime layer for the in-Lambda tier (arm64, Python 3.14), from PyPI wheels: no Docker.
layers: setup
	$(BIN)/python -m layers.onnxruntime.build

## Pack a model into the model.tar.gz SageMaker unpacks: `make package-model MODEL=iris` (build/models/).
package-model: setup
	$(BIN)/python -m infra.model_package $(MODEL)

## Rebuild the iris and digits ONNX models from scikit-learn's bundled data (the committed files are their output).
model: setup
	$(BIN)/python layers/models/iris/build_iris.py
	$(BIN)/python layers/models/digits/build_digits.py
	$(BIN)/python layers/models/mlp/build_mlp.py
	$(BIN)/python layers/models/build_baselines.py

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache cdk.out *.egg-info

## Fuzz the local API with schemathesis against docs/openapi.json: 10,000 cases, zero 5xx, all conforming
## (`make fuzz ARGS=--faults`: with endpoint faults injected, every 5xx documented and conforming).
fuzz: setup
	$(BIN)/python -m bench.fuzz --cases 10000 $(ARGS)
