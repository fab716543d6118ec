# Set-up and everyday commands. `make demo` and `make test` are the README's quick start.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The first-party plugin packages' sources, for the import contracts (they are not installed).
PLUGIN_SOURCES := plugins/tuneboard-example/src:plugins/tuneboard-ray/src:plugins/tuneboard-slurm/src:plugins/tuneboard-contrastive/src

.PHONY: setup demo test lint bench

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	# Compiled now, since an editable install is not, and a Python run with
	# PYTHONDONTWRITEBYTECODE would compile tuneboard's modules again at every start (~0.1 s).
	$(BIN)/python -m compileall -q tuneboard
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	cd sample_projects/sentiment && ../../$(BIN)/tuneboard run multistep

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	PYTHONPATH=$(PLUGIN_SOURCES) $(BIN)/lint-imports

test: setup lint
	$(BIN)/python -m pytest -q

# Every benchmark at full size (~15 min on 2 cores; see BENCHMARKS.md), then BENCHMARKS.md.
bench: setup
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,bench]'
	$(BIN)/python -m benchmarks.run_all
