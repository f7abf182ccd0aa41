# mmlib in two commands:  `make repro` (environment, data, pipeline) and `make test`.
# Afterwards the tools live in .venv: `source .venv/bin/activate` puts dvc, mmlib and pytest on PATH.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?=
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test test-fast test-repro lint venv clean

## repro: create .venv, install mmlib, pull the versioned replays, run the pipeline (smoke profile)
# (the shared remote is named, not the default, so that nothing is ever pushed into it)
repro: venv
	dvc pull --remote shared data.dvc
ifeq ($(PROFILE),)
	dvc repro
else
	dvc exp run --set-param profile=$(PROFILE)
endif

## test: the whole test suite (what CI runs): test-fast, then the slow tests, the clean-clone repro among them; each part lists its slowest tests
test: venv
	pytest -m "not slow" --durations=10
	pytest -m slow --durations=20

## test-fast: the test suite without the slow tests (end-to-end runs, killed runs, sweeps over every replay)
test-fast: venv
	pytest -m "not slow"

## test-repro: the clean-clone check alone: git clone + dvc pull + dvc repro give the committed dvc.lock and reports
test-repro: venv
	pytest -m repro

## lint: ruff
lint: venv
	ruff check src tests benchmarks notebooks studies

## venv: the environment alone (.venv with mmlib in editable mode and the `mmlib` Jupyter kernel)
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name mmlib --display-name "Python (mmlib)"
	touch $@

## clean: remove the environment and pipeline outputs (not the DVC cache)
clean:
	rm -rf $(VENV) artifacts reports/*/*.ipynb
