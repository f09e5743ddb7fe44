"""The AWS CLI (v1, with the botocore it bundles) under zero-code activation, with the
momento backend on a local Momento-protocol server in another process and moto's
server for DynamoDB: reads come from the cache, byte for byte as DynamoDB's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from momento_botocore.testing import DEFAULT_CACHE
from tests.conftest import create_table, new_session
from tests.lossy_proxy import LossyProxy, lossy_proxy

KEY = '{"pk": {"S": "a"}}'
ITEM = {
    "pk": {"S": "a"},
    "v": {"S": "one"},
    "n": {"N": "12.50"},
    "b": {"B": b"\x00\xff"},
    "m": {"M": {"l": {"L": [{"BOOL": True}, {"NULL": True}, {"SS": ["x", "y"]}]}}},
}
#: The aws command of the environment running the tests (awscli is in the test extra).
AWS = Path(sys.executable).with_name("aws")


@pytest.fixture
def momento_process(tmp_path: Path) -> Iterator[str]:
    """``python -m momento_botocore.testing`` in its own process; yields HOST:PORT."""
    process = subprocess.Popen(
        [sys.executable, "-m", "momento_botocore.testing", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on "), f"the local Momento server said {line!r}"
        yield line.split()[-1]
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def proxy(endpoint: str) -> Iterator[LossyProxy]:
    """moto behind a proxy that records every request it forwards."""
    with lossy_proxy(endpoint) as proxy:
        yield proxy


def aws(tmp_path: Path, momento: str, endpoint: str, *args: str, cached: bool = True) -> str:
    """Run ``aws dynamodb ...``; its stdout. Fails on a non-zero exit or any stderr."""
    assert AWS.exists(), f"no aws command beside {sys.executable}: pip install awscli"
    environ = {
        **os.environ,
        "MOMENTO_BOTOCORE_ENABLED": "1" if cached else "0",
        "MOMENTO_BOTOCORE_TTL_SECONDS": "60",
        "MOMENTO_BOTOCORE_BACKEND": "momento",
        "MOMENTO_CACHE_NAME": DEFAULT_CACHE,
        "MOMENTO_ENDPOINT": f"http://{momento}",
        "MOMENTO_BOTOCORE_MOMENTO_REQUEST_TIMEOUT_SECONDS": "5",
        # moto's dummy credentials are this account; STS, if asked, is moto too.
        "AWS_ACCOUNT_ID": "123456789012",
        "AWS_ENDPOINT_URL_STS": endpoint,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }
    environ.pop("MOMENTO_API_KEY", None)
    done = subprocess.run(
        [str(AWS), "dynamodb", *args, "--output", "json"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return done.stdout


def dynamodb_calls(proxy: LossyProxy, operation: str) -> int:
    return sum(target.endswith(f".{operation}") for target in proxy.targets)


def test_aws_cli_reads_are_served_from_the_cache_exactly_as_dynamodb_answers(
    tmp_path: Path, endpoint: str, proxy: LossyProxy, momento_process: str
) -> None:
    writer = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(writer, "cli")
    writer.put_item(TableName="cli", Item=ITEM)

    def get_item(*, cached: bool = True) -> str:
        return aws(
            tmp_path,
            momento_process,
            endpoint,
            "get-item",
            "--table-name",
            "cli",
            "--key",
            KEY,
            "--endpoint-url",
            proxy.url,
            cached=cached,
        )

    uncached = get_item(cached=False)
    assert json.loads(uncached)["Item"]["v"] == {"S": "one"}
    assert get_item() == uncached  # a miss: DynamoDB answers, the cache is filled
    sent = dynamodb_calls(proxy, "GetItem")
    assert sent == 2
    assert get_item() == uncached  # a hit: byte-identical, and nothing reached moto
    assert dynamodb_calls(proxy, "GetItem") == sent

    new_item = json.dumps({**json.loads(KEY), "v": {"S": "two"}})
    aws(
        tmp_path,
        momento_process,
        endpoint,
        "put-item",
        "--table-name",
        "cli",
        "--item",
        new_item,
        "--endpoint-url",
        proxy.url,
    )
    after_write = get_item()
    assert json.loads(after_write)["Item"] == json.loads(new_item)
    assert after_write == get_item(cached=False)
