# Every target bootstraps its own virtual environment in .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# aiobotocore pins an older botocore than users get: the async driver's runs are in a
# second environment (aiobotocore, aioboto3), so that the main suite runs on the newest
# botocore.
AIO_VENV := .venv-aio
AIO_BIN := $(AIO_VENV)/bin
AIO_STAMP := $(AIO_VENV)/.installed
# The read, write, batch and stream suites again on older botocore, each in its own
# environment: the declared floor (botocore 1.34.0), and the botocore that AWS CLI v1
# bundles (awscli 1.46: 1.43.62), with the CLI itself for the smoke test.
FLOOR_VENV := .venv-floor
FLOOR_STAMP := $(FLOOR_VENV)/.installed
FLOOR_PINS := botocore==1.34.0 boto3==1.34.0
CLI_VENV := .venv-cli
CLI_STAMP := $(CLI_VENV)/.installed
CLI_PINS := awscli==1.46.3 botocore==1.43.62 boto3==1.43.62
COMPAT_TESTS := tests/test_read_path.py tests/test_writes.py tests/test_batch_get.py \
	tests/test_stream_end_to_end.py tests/test_stream_handler.py tests/test_handler_faults.py \
	tests/test_momento_endpoint.py tests/test_activation.py tests/test_accounts.py \
	tests/test_own_writes_win.py tests/test_unkeyable_writes.py tests/test_integrity.py

# The behavioural suites, run again unchanged through the async driver (aiobotocore
# sessions: tests/aio_facade.py), on the memory backend and, for the read, batch and
# write paths, on Momento.
ASYNC_TESTS := tests/test_read_path.py tests/test_batch_get.py tests/test_writes.py \
	tests/test_own_writes_win.py tests/test_accounts.py tests/test_integrity.py \
	tests/test_unkeyable_writes.py tests/test_handler_faults.py \
	tests/test_unwritten_tombstones.py tests/test_fault_fallbacks.py \
	tests/test_pending_across_registrations.py tests/test_momento_read_path.py \
	tests/test_momento_faults.py tests/test_passthrough.py tests/test_fill_races.py \
	tests/test_query_cache.py tests/test_query_cache_property.py \
	tests/test_query_cache_fidelity.py
MOMENTO_TESTS := tests/test_read_path.py tests/test_batch_get.py tests/test_writes.py \
	tests/test_query_cache.py

.PHONY: demo test test-aio test-compat lint typecheck bench clean

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

$(FLOOR_STAMP): pyproject.toml
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FLOOR_VENV)/bin/python -m pip install --quiet -e ".[test]" $(FLOOR_PINS)
	touch $(FLOOR_STAMP)

$(CLI_STAMP): pyproject.toml
	$(PYTHON) -m venv $(CLI_VENV)
	$(CLI_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CLI_VENV)/bin/python -m pip install --quiet -e ".[test]" $(CLI_PINS)
	touch $(CLI_STAMP)

demo: $(STAMP)
	$(BIN)/momento-botocore demo

test: $(STAMP) $(AIO_STAMP) $(FLOOR_STAMP) $(CLI_STAMP)
	$(BIN)/ruff check momento_botocore tests benchmarks
	$(BIN)/ruff format --check momento_botocore tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest
	# The read, batch and write suites again, unchanged, with Momento (real SDK, local server).
	$(BIN)/python -m pytest -q --default-backend=momento $(MOMENTO_TESTS)
	# And with a near cache in front of Momento in every backend (docs/near-cache.md).
	$(BIN)/python -m pytest -q --default-backend=momento --near-cache $(MOMENTO_TESTS)
	$(MAKE) --no-print-directory test-aio test-compat

# The core suites on the floor botocore, then on the AWS CLI's (with the CLI smoke test).
test-compat: $(FLOOR_STAMP) $(CLI_STAMP)
	$(FLOOR_VENV)/bin/python -m pytest -q $(COMPAT_TESTS)
	$(CLI_VENV)/bin/python -m pytest -q $(COMPAT_TESTS) tests/test_aws_cli.py

# The async driver: its own tests, then the behavioural suites through it (asyncio debug
# mode: a callback of ours that blocks the loop fails the test).
test-aio: $(AIO_STAMP)
	$(AIO_BIN)/python -m pytest -q tests/test_aiobotocore.py tests/test_async_example.py \
	  tests/test_near_cache_aio.py
	$(AIO_BIN)/python -m pytest -q --driver=async $(ASYNC_TESTS)
	$(AIO_BIN)/python -m pytest -q --driver=async --default-backend=momento $(MOMENTO_TESTS)
	$(AIO_BIN)/python -m pytest -q --driver=async --default-backend=momento --near-cache \
	  $(MOMENTO_TESTS)

# The benchmarks live outside the package (benchmarks/); pass options with
# BENCH_ARGS, e.g. make bench BENCH_ARGS="--quick --only hit".
bench: $(STAMP) $(AIO_STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)
	# The async driver's hit against aiobotocore's floor (and the sync one beside it).
	$(AIO_BIN)/python -m benchmarks.async_hit $(filter --quick,$(BENCH_ARGS))
	# A Query hit (issue 13) against botocore's floor, with GetItem's beside it.
	$(BIN)/python -m benchmarks.query_hit $(filter --quick,$(BENCH_ARGS))

clean:
	rm -rf $(VENV) $(AIO_VENV) $(FLOOR_VENV) $(CLI_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
