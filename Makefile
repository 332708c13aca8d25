# Every routine command of mailspine. `make help` lists them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# On machines whose default PyPI torch is a CUDA build, point this at a CPU wheel index, e.g.
# make setup TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
TORCH_INDEX_URL ?=
PIP_TORCH_FLAGS := $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL),)

.PHONY: help setup demo demo-headless test test-unit lint format typecheck bench clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, alone and pinned (CPU build); then everything in ONE resolver run so llm-guard's pins hold.
	$(BIN)/pip install --quiet $(PIP_TORCH_FLAGS) torch==2.13.0
	$(BIN)/pip install --quiet -c requirements/constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install mailspine with pinned dependencies

demo: setup ## Run the demo: embedded Postgres, CRM, worker, API, dashboard (Ctrl-C stops all)
	$(BIN)/mailspine demo

demo-headless: setup ## Process the demo mailbox without serving; prints one JSON summary line
	$(BIN)/mailspine demo --no-serve

test: setup ## Run the whole test suite against a real Postgres (embedded unless DATABASE_URL is set)
	$(BIN)/python -m pytest

test-unit: setup ## Unit tests only (no services)
	$(BIN)/python -m pytest tests/unit

lint: setup ## ruff (lint + format check) and mypy (strict on the core)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app agent tools gateway dashboard infra

format: setup ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

eval-gate: setup ## The eval gate: golden set, offline model, evals/baseline.json (exit 1 on regression)
	evals/ci_gate.sh

bench: setup ## Benchmarks; results are written to docs/benchmarks.md
	$(BIN)/python -m bench.run

clean: ## Remove var/ (embedded databases, logs); keeps .venv
	rm -rf var
