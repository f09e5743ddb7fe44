"""Nothing of ours raises into a call: each helper our handlers call is made to raise
in turn, and every call still gets DynamoDB's answer, or DynamoDB's own error."""

from __future__ import annotations

import inspect
import sys
from collections import UserDict
from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from conftest import create_table, new_session

import momento_botocore
from momento_botocore import hooks
from momento_botocore.backends import MemoryBackend
from momento_botocore.core import engine as engine_module
from momento_botocore.core.engine import Engine
from momento_botocore.counters import Stats
from momento_botocore.drivers.aio import AsyncDriver
from momento_botocore.drivers.sync import SyncDriver
from momento_botocore.log import ErrorReporter

TABLE = "faults"
#: Known up front: the write that gets no answer cannot ask DescribeTable, and a write
#: whose key is unknown would fence the whole table (no scenario after it would hit).
SCHEMAS = {TABLE: ("pk",)}
SETTINGS: dict[str, Any] = {"key_schemas": SCHEMAS, "cache_queries": True, "cache_scans": True}
#: The driver methods botocore calls (registered in hooks.HANDLERS).
HANDLERS = frozenset(method for _, method, _, _ in hooks.HANDLERS)
_HANDLER_CODES = {
    getattr(driver, name).__code__: name
    for driver in (SyncDriver, AsyncDriver)
    for name in HANDLERS
}


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def item(pk: str, v: str) -> dict[str, Any]:
    return {**key(pk), "v": {"S": v}}


def answer(call: Callable[[], Any]) -> Any:
    """The call's answer without ResponseMetadata, or DynamoDB's error code."""
    try:
        response = dict(call())
    except ClientError as error:
        return ("error", error.response["Error"]["Code"])
    except EndpointConnectionError:
        return ("error", "no answer")
    response.pop("ResponseMetadata", None)
    response.pop("ConsumedCapacity", None)  # moto's batches add it unasked
    for items in response.get("Responses", {}).values():
        items.sort(key=lambda found: found["pk"]["S"])
    return response


def fill_table(client: Any) -> None:
    create_table(client, TABLE)
    for pk in "abcdh":
        client.put_item(TableName=TABLE, Item=item(pk, "v1"))


def warm(client: Any) -> None:
    client.get_item(TableName=TABLE, Key=key("a"))
    client.batch_get_item(RequestItems={TABLE: {"Keys": [key("b"), key("c")]}})
    for _ in range(2):  # the first starts the generations, the second fills the pages
        query(client, "h")
        client.scan(TableName=TABLE)
    query(client, "d")  # its generation is started: the scenarios fill its page


def query(client: Any, pk: str) -> Any:
    return client.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": pk}},
    )


def scenarios(session: Any, endpoint: str) -> list[Any]:
    """Hits, misses, absent items, errors, and every kind of write, in one order."""
    client = session.client("dynamodb", endpoint_url=endpoint)
    # Nothing listens there: a write that gets no answer at all.
    unanswered = session.client(
        "dynamodb", endpoint_url="http://127.0.0.1:1", config=Config(retries={"max_attempts": 0})
    )
    put = client.put_item
    return [
        answer(lambda: unanswered.put_item(TableName=TABLE, Item=item("a", "lost"))),
        answer(lambda: client.get_item(TableName=TABLE, Key=key("a"))),  # a hit
        answer(
            lambda: client.get_item(TableName=TABLE, Key=key("a"), ReturnConsumedCapacity="TOTAL")
        ),
        answer(lambda: client.get_item(TableName=TABLE, Key=key("d"))),  # a miss
        answer(lambda: client.get_item(TableName=TABLE, Key=key("zz"))),  # absent
        answer(lambda: client.get_item(TableName="no-such-table", Key=key("a"))),
        answer(lambda: query(client, "h")),  # a page hit
        answer(lambda: query(client, "a")),  # its generation is started
        answer(lambda: query(client, "d")),  # a page filled
        answer(lambda: client.scan(TableName=TABLE)),
        answer(lambda: client.batch_get_item(RequestItems={TABLE: {"Keys": [key("b"), key("c")]}})),
        answer(
            lambda: client.batch_get_item(
                RequestItems={TABLE: {"Keys": [key("b"), key("c")]}},
                ReturnConsumedCapacity="TOTAL",
            )
        ),
        answer(  # a hit, a miss, an absent item: DynamoDB answers the misses
            lambda: client.batch_get_item(
                RequestItems={TABLE: {"Keys": [key("a"), key("h"), key("yy")]}}
            )
        ),
        answer(lambda: put(TableName=TABLE, Item=item("a", "v2"), ReturnValues="ALL_OLD")),
        answer(
            lambda: put(
                TableName=TABLE,
                Item=item("b", "v2"),
                ConditionExpression="attribute_not_exists(pk)",
            )
        ),
        answer(
            lambda: client.update_item(
                TableName=TABLE,
                Key=key("c"),
                UpdateExpression="SET v = :v",
                ExpressionAttributeValues={":v": {"S": "v2"}},
                ReturnValues="ALL_NEW",
            )
        ),
        answer(lambda: client.delete_item(TableName=TABLE, Key=key("d"), ReturnValues="ALL_OLD")),
        answer(
            lambda: client.batch_write_item(
                RequestItems={
                    TABLE: [
                        {"PutRequest": {"Item": item("e", "v1")}},
                        {"DeleteRequest": {"Key": key("b")}},
                    ]
                }
            )
        ),
        answer(
            lambda: client.transact_write_items(
                TransactItems=[{"Put": {"TableName": TABLE, "Item": item("f", "v1")}}]
            )
        ),
        answer(
            lambda: client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": TABLE, "Item": item("g", "v1")}},
                    {
                        "ConditionCheck": {
                            "TableName": TABLE,
                            "Key": key("a"),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        ),
    ]


_EXPECTED: list[Any] = []
#: (object, attribute) -> the handlers in which its fault fired, as tests ran.
REACHED: dict[tuple[Any, str], set[str]] = {}


def expected(endpoint: str) -> list[Any]:
    """What an uncached client gets (computed once; the test resets moto after)."""
    if not _EXPECTED:
        plain = new_session().client("dynamodb", endpoint_url=endpoint)
        fill_table(plain)
        warm(plain)
        _EXPECTED.extend(scenarios(new_session(), endpoint))
        plain.delete_table(TableName=TABLE)
    return _EXPECTED


class _OursRaise(UserDict):  # type: ignore[type-arg]
    """A request's context (the same dict) in which our entries cannot be read."""

    def __init__(self, context: dict[str, Any], fault: Fault) -> None:
        self.data, self._fault = context, fault

    def get(self, key: str, default: Any = None) -> Any:
        if key.startswith("momento_botocore"):
            self._fault.raiser()
        return self.data.get(key, default)


def no_context(fault: Fault) -> property:
    """``AWSRequest.context`` that raises when our handlers read their entries."""

    def get(request: Any) -> Any:
        return _OursRaise(request.__dict__["_context"], fault)

    def put(request: Any, value: Any) -> None:
        request.__dict__["_context"] = value

    return property(get, put)


class Boom(Exception):
    """The injected fault."""


class Fault:
    """Replaces one attribute with a function that raises, and records which of our
    handlers was running each time it did."""

    def __init__(self) -> None:
        self.handlers: set[str] = set()

    def raiser(self, *args: Any, **kwargs: Any) -> Any:
        frame = sys._getframe(1)
        while frame is not None:
            name = _HANDLER_CODES.get(frame.f_code)
            if name is not None:
                self.handlers.add(name)
            frame = frame.f_back  # type: ignore[assignment]
        raise Boom("injected")


def _module_helpers(module: Any, skip: frozenset[str]) -> list[str]:
    names = []
    for name, value in vars(module).items():
        if name in skip or name.startswith("__"):
            continue
        if inspect.isfunction(value) and value.__module__.startswith("momento_botocore"):
            names.append(name)
    return sorted(names)


def _method_helpers(cls: type, skip: frozenset[str]) -> list[str]:
    return sorted(
        name
        for name, value in vars(cls).items()
        if inspect.isfunction(value) and name not in skip and name != "__init__"
    )


#: (object, attribute) pairs, each made to raise in one test: the functions the engine
#: and the event table call, the engine's and the driver's methods (but the handlers
#: themselves and ``failed``, the guard: test_failing_error_reporting... covers it),
#: the backend, the counters. (Not those that run only when register() builds them.)
TARGETS = [
    *(
        (engine_module, name)
        for name in _module_helpers(
            engine_module,
            frozenset({"identity_of", "cache_identity", "shared_pending", "fences_for_cache"}),
        )
    ),
    *(
        (hooks, name)
        for name in _module_helpers(
            hooks, frozenset({"install", "uninstall_any", "uninstall_planning"})
        )
    ),
    *((Engine, name) for name in _method_helpers(Engine, frozenset({"failed"}))),
    *(
        (driver, name)
        for driver in (SyncDriver, AsyncDriver)
        for name in _method_helpers(driver, HANDLERS | {"install"})
    ),
    *(
        (MemoryBackend, name)
        for name in ("get", "get_many", "add", "set", "add_many", "set_many", "incr_many")
    ),
    (Stats, "add"),
]
#: Helpers our own scenarios never reach (failure paths, other events): they are not
#: expected to fire, only to be harmless.
MAY_NOT_FIRE = {
    "add_missing_hits",
    "bare_batch_answer",
    "batch_lookup_failed",
    "lookup_failed",
    "page_lookup_failed",
    "page_skips_cache",
    "invalidation_failed",
    "_garbage",
    "_get_each",
    "_remember_tombstone",
    "_retry_tombstones",
    "tombstone_round",
    "skips_cache",
    "_skips_cache",
    "_unless_pending",
    "guard_horizon",
    "fill_window",
    "answered_as",
    "client_for",
    "_key_names",
    "key_names_of",
    "remember_client",
    "schemas_to_learn",  # asked by the async driver only
    # Own-write fences: an entry found for a fenced key (these scenarios tombstone first).
    "same_item",
    "_settle_fenced",
    "set",  # tombstones go out with set_many
    "add",  # fills go out with add_many
    # No GetItem hit in these scenarios (each key read is written first); a partial
    # batch with ReturnConsumedCapacity and a fully cached table neither.
    "get_item_answer",
    "consumed_capacity_of_hit",
    # Known key schemas: every write's key can be made.
    "_fence_table",
    # Asked only for a Query of an index: the scenarios' table has none.
    "_known_key_names",
}


Run = Callable[[Callable[[], None]], tuple[list[Any], list[Any]]]


@pytest.fixture
def faulty(endpoint: str) -> Run:
    """``run(inject)``: warms a cache through one registered client, calls ``inject()``,
    and runs the scenarios through a client registered after it, on the same cache.
    Gives what they got and what an uncached client gets."""
    want = expected(endpoint)

    def run(inject: Callable[[], None]) -> tuple[list[Any], list[Any]]:
        backend = MemoryBackend()
        session = new_session()
        momento_botocore.register(session, ttl=60, backend=backend, **SETTINGS)
        plain = new_session().client("dynamodb", endpoint_url=endpoint)
        fill_table(plain)
        try:
            warm(session.client("dynamodb", endpoint_url=endpoint))
            inject()
            session = new_session()
            momento_botocore.register(session, ttl=60, backend=backend, **SETTINGS)
            return scenarios(session, endpoint), want
        finally:
            plain.delete_table(TableName=TABLE)

    return run


@pytest.mark.parametrize(
    "target", TARGETS, ids=[f"{getattr(o, '__name__', o)}.{n}" for o, n in TARGETS]
)
def test_a_raising_helper_never_changes_an_answer(
    target: tuple[Any, str], faulty: Run, monkeypatch: pytest.MonkeyPatch, driver: str
) -> None:
    owner, name = target
    fault = Fault()
    got, want = faulty(lambda: monkeypatch.setattr(owner, name, fault.raiser))
    monkeypatch.undo()
    REACHED[target] = fault.handlers
    assert got == want
    other_driver = AsyncDriver if driver == "sync" else SyncDriver
    if name not in MAY_NOT_FIRE and owner is not other_driver:
        assert fault.handlers, f"{name} was never called: the test proves nothing"


def test_failing_error_reporting_never_changes_an_answer(
    faulty: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = Fault()

    def inject() -> None:
        for owner, name in ((MemoryBackend, "get"), (Stats, "add"), (ErrorReporter, "report")):
            monkeypatch.setattr(owner, name, fault.raiser)

    got, want = faulty(inject)
    monkeypatch.undo()
    assert got == want


def test_a_request_without_context_never_changes_an_answer(
    endpoint: str, faulty: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading our entries from a request's context fails (botocore 1.43.62's
    before-send request had no context at all)."""
    from botocore.awsrequest import AWSRequest

    fault = Fault()
    got, want = faulty(
        lambda: monkeypatch.setattr(AWSRequest, "context", no_context(fault), raising=False)
    )
    monkeypatch.undo()
    REACHED[AWSRequest, "context"] = fault.handlers
    assert got == want
    assert {"mark_sent", "count_send"} <= fault.handlers


def test_every_handler_was_made_to_fail(faulty: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """The faults above reach into every handler we register."""
    from botocore.awsrequest import AWSRequest

    reached: set[str] = set()
    for owner, name in [*TARGETS, (AWSRequest, "context")]:
        if (owner, name) not in REACHED:  # not run before in this session: run it now
            fault = Fault()
            value = no_context(fault) if owner is AWSRequest else fault.raiser
            with monkeypatch.context() as patch:
                faulty(lambda: patch.setattr(owner, name, value, raising=False))  # noqa: B023
            REACHED[owner, name] = fault.handlers
        reached |= REACHED[owner, name]
    assert reached == HANDLERS
