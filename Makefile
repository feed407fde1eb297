# `make help` lists the targets. Every target creates .venv when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
export WANDB_MODE ?= offline

.DEFAULT_GOAL := help
.PHONY: help install train evaluate test test-slow lint format bench clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	# torch is pinned to 2.13.* in pyproject: pip takes the local CPU wheel, not a CUDA build.
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## Create .venv and install audiorep with its dev tools

train: install ## Train the default experiment (atiam_beta_vae), evaluate it; ARGS="key=value ..." adds overrides
	$(PY) train.py $(ARGS)

evaluate: install ## Evaluate a run: make evaluate ARGS="run=outputs/train/..."
	$(PY) evaluate.py $(ARGS)

test: install ## Run the tests (not the slow ones)
	$(PY) -m pytest -m "not slow" -q $(ARGS)

test-slow: install ## Run the slow tests
	$(PY) -m pytest -m slow -q $(ARGS)

lint: install ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## ruff format and fix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install ## Run every benchmark in bench/ (each prints a JSON line last)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean: ## Remove caches (not data/ or outputs/)
	rm -rf .pytest_cache .ruff_cache src/*.egg-info
