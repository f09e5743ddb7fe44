"""The FastAPI example of docs/async.md runs as written, so the page cannot rot.

The test reads the example out of docs/async.md and runs it: the app's lifespan
(an aioboto3 session registered, its DynamoDB resource opened) and its endpoint
function, awaited from ``asyncio.run`` against moto's server. FastAPI is not a
dependency: without it, a stand-in provides the two names the example imports
(``FastAPI`` keeps the lifespan and the routes; ``HTTPException`` is raised).
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
import types
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import REGION, create_table

import momento_botocore

PAGE = Path(__file__).resolve().parent.parent / "docs" / "async.md"
#: The comment in docs/async.md right above the example's code block.
MARKER = "<!-- tests/test_async_example.py runs this example -->"


def example_source() -> str:
    """The Python code block right after MARKER in docs/async.md."""
    text = PAGE.read_text(encoding="utf-8")
    assert text.count(MARKER) == 1, f"{PAGE} must mark its example once with {MARKER}"
    found = re.search(r"```python\n(.*?)```", text[text.index(MARKER) :], re.DOTALL)
    assert found is not None, f"no python code block after {MARKER} in {PAGE}"
    return found.group(1)


class _FastAPIStandIn:
    """What the example uses of ``fastapi.FastAPI``: ``lifespan=``, ``state``, ``get``."""

    def __init__(self, *, lifespan: Callable[[Any], Any]) -> None:
        self.lifespan = lifespan
        self.state = types.SimpleNamespace()
        self.routes: dict[str, Callable[..., Any]] = {}

    def get(self, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def route(endpoint: Callable[..., Any]) -> Callable[..., Any]:
            self.routes[path] = endpoint
            return endpoint

        return route


class _HTTPExceptionStandIn(Exception):
    def __init__(self, status_code: int, detail: Any = None) -> None:
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail


@pytest.fixture
def example(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The example's module namespace, its DynamoDB at moto's server (the example names
    no endpoint: AWS_ENDPOINT_URL_DYNAMODB, botocore's own setting, points it there),
    with an ``orders`` table holding order 42."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    create_table(client, "orders", hash_key=("id", "S"))
    client.put_item(TableName="orders", Item={"id": {"S": "42"}, "total": {"N": "9.5"}})
    if importlib.util.find_spec("fastapi") is None:
        fastapi = types.ModuleType("fastapi")
        fastapi.FastAPI = _FastAPIStandIn  # type: ignore[attr-defined]
        fastapi.HTTPException = _HTTPExceptionStandIn  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "fastapi", fastapi)
    namespace: dict[str, Any] = {"__name__": "async_example"}
    exec(compile(example_source(), str(PAGE), "exec"), namespace)
    return namespace


def serve(example: dict[str, Any], order_ids: list[str]) -> list[Any]:
    """Start the app (its lifespan), call the endpoint for each id, stop the app: what
    uvicorn does around requests. A 404 is returned as the HTTPException raised."""

    async def main() -> list[Any]:
        app = example["app"]
        answers: list[Any] = []
        async with example["lifespan"](app):
            for order_id in order_ids:
                try:
                    answers.append(await example["read_order"](order_id))
                except example["HTTPException"] as error:
                    answers.append(error)
        return answers

    return asyncio.run(main())


def test_the_example_serves_the_second_read_of_an_order_from_the_cache(
    example: dict[str, Any],
) -> None:
    first, second = serve(example, ["42", "42"])
    assert first == second == {"id": "42", "total": Decimal("9.5")}  # Python values
    counts = momento_botocore.stats()["orders"]
    assert (counts["misses"], counts["fills"], counts["hits"]) == (1, 1, 1)


def test_a_missing_order_is_a_404_and_its_absence_is_cached(example: dict[str, Any]) -> None:
    first, second = serve(example, ["7", "7"])
    assert isinstance(first, example["HTTPException"])
    assert first.status_code == 404
    assert isinstance(second, example["HTTPException"])
    assert second.status_code == 404
    assert momento_botocore.stats()["orders"]["hits"] == 1  # an ABSENT entry
