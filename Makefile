# Every target bootstraps its own virtual environment in .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# aiobotocore pins an older botocore than users get: its tests run in a second, small
# environment, so that the main suite runs on the newest botocore.
AIO_VENV := .venv-aio
AIO_BIN := $(AIO_VENV)/bin
AIO_STAMP := $(AIO_VENV)/.installed

.PHONY: demo test test-aio lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# An older .venv may still have aiobotocore (and the botocore it pins): move both on.
	if $(BIN)/python -m pip show --quiet aiobotocore 2>/dev/null; then \
	  $(BIN)/python -m pip uninstall --quiet --yes aiobotocore; fi
	$(BIN)/python -m pip install --quiet --upgrade -e ".[test,demo,bench]" botocore boto3
	touch $(STAMP)

$(AIO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(AIO_VENV)
	$(AIO_BIN)/python -m pip install --quiet --upgrade pip
	$(AIO_BIN)/python -m pip install --quiet -e ".[test-aio]"
	touch $(AIO_STAMP)

demo: $(STAMP)
	$(BIN)/momento-botocore demo

test: $(STAMP) $(AIO_STAMP)
	$(BIN)/ruff check momento_botocore tests
	$(BIN)/ruff format --check momento_botocore tests
	$(BIN)/mypy
	$(BIN)/python -m pytest
	# The core read-path suite again, unchanged, with Momento (real SDK, local server).
	$(BIN)/python -m pytest tests/test_read_path.py --default-backend=momento -q
	# aiobotocore sessions, in their own environment (the main one has no aiobotocore).
	$(AIO_BIN)/python -m pytest tests/test_aiobotocore.py -q

test-aio: $(AIO_STAMP)
	$(AIO_BIN)/python -m pytest tests/test_aiobotocore.py -q

bench: $(STAMP)
	$(BIN)/momento-botocore bench

clean:
	rm -rf $(VENV) $(AIO_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
