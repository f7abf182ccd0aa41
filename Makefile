# mmlib in two commands:  `make repro` (environment, data, pipeline) and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?=
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test test-fast lint venv clean

## repro: create .venv, install mmlib, pull the versioned replays, run the pipeline (smoke profile)
repro: venv
	dvc pull data.dvc
ifeq ($(PROFILE),)
	dvc repro
else
	dvc exp run --set-param profile=$(PROFILE)
endif

## test: the whole test suite, slow end-to-end tests included (what CI runs)
test: venv
	pytest

## test-fast: the test suite without the slow end-to-end tests
test-fast: venv
	pytest -m "not slow"

## lint: ruff
lint: venv
	ruff check src tests benchmarks notebooks

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
