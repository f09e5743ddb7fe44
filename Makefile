# Every target bootstraps its own virtual environment in .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,demo,bench]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/momento-botocore demo

test: $(STAMP)
	$(BIN)/ruff check momento_botocore tests
	$(BIN)/ruff format --check momento_botocore tests
	$(BIN)/mypy
	$(BIN)/python -m pytest
	# The core read-path suite again, unchanged, with Momento (real SDK, local server).
	$(BIN)/python -m pytest tests/test_read_path.py --default-backend=momento -q

bench: $(STAMP)
	$(BIN)/momento-botocore bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
