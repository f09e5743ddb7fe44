"""The Query and Scan cache against a reference history, over moto's server: random
interleavings of writes and queries never give a page older than the guarantee allows.

Each example is a fresh table (hash key ``pk``, range key ``sk``, a stream with new and
old images, a GSI ``by_g`` keyed by ``g``, an attribute writes move between ``x`` and
``y``) holding a random set of items, and a list of steps:

* writes (put, update, delete of one item) through the *registered* client, whose
  invalidation bumps the generations before the call returns;
* the same writes through a *plain* client (not registered): the cache learns of them
  only from the stream;
* drains of the stream: the tailer applies every record written so far (the invalidator
  of the registration's config, on the registration's backend);
* queries through the registered client of one partition, in every shape of
  ``QUERY_SHAPES``, or of one index partition (``g = x`` or ``y``, compared as a set
  of items: a GSI's order of items of equal keys is not DynamoDB's to promise), or
  scans in every shape of ``SCAN_SHAPES``, each asked twice in a row (the first may
  fill, the second may hit). The shapes come in pairs that differ in one parameter
  (``Limit``, ``ScanIndexForward``, ``ExclusiveStartKey``, the projection, the filter,
  a value), so a page key that forgot one would serve one shape's page for the other.

The oracle. Every query has a *scope*: the partition it reads, or the whole table for a
scan. After every write, the plain client asks DynamoDB each shape of the scopes the
write touched (its partition, every index partition, and the table), and appends
those true answers to the scope's history. Each scope also has a *floor*: the position
in its history of the last write to it that the cache must know of, that is, one
acknowledged through the registered client, or one made before the last drain of the
stream. A cached answer
must equal (Items, Count, ScannedCount, LastEvaluatedKey) the true answer at some
position from the floor to the end of the history (now): it may miss plain writes the
stream has not applied yet (staleness bounded by the stream's lag), and nothing else.
With no undrained plain write in a scope, that is exactly DynamoDB's answer now.

Why the floor is per scope and not global: a page of partition ``a`` filled before an
undrained plain write to ``a`` may still be served after a registered write to partition
``b``: that write neither changes ``a``'s answer nor bumps ``a``'s generation (the
guarantee is GetItem's, per thing read, not a snapshot of the whole table). A scan's
scope is the table, so every write the cache knows of moves its floor.

Checked too, over all examples: the cache did hit, and did serve answers that were
stale within the allowance (so both sides of the oracle were exercised). Explicit
examples, run first every time, hold the plainest case of each guarantee.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import ACCOUNT, new_session
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from stream_world import new_session as plain_session

import momento_botocore
from momento_botocore.backends import Backend
from momento_botocore.config import CacheConfig
from momento_botocore.streams import describe_with_boto3, make_handler
from momento_botocore.tailer import TRIM_HORIZON, StreamTailer

PKS = ("a", "b")
SKS = ("1", "2", "3")
GS = ("x", "y")  # the values of ``g``, the GSI's key; scope "g:x" is its partition x
#: How long a write's "written lately" markers keep pages of its generations unfilled.
TOMBSTONE_TTL = 0.2
ASKS = 2  # each query step asks twice: the first may fill, the second may hit
_FIRST = {"KeyConditionExpression": "#k = :p", "ExpressionAttributeNames": {"#k": "pk"}}
_FROM = {"KeyConditionExpression": "pk = :p AND sk >= :s"}

#: The shapes of a query of partition ``:p``. Shapes come in pairs that differ in one
#: parameter: a page key that forgot it would serve one's page for the other.
QUERY_SHAPES: dict[str, dict[str, Any]] = {
    "all": {"KeyConditionExpression": "pk = :p"},
    "backward": {"KeyConditionExpression": "pk = :p", "ScanIndexForward": False},
    "backward-two": {"KeyConditionExpression": "pk = :p", "ScanIndexForward": False, "Limit": 2},
    "first": {**_FIRST, "Limit": 1},
    "after-1": {**_FIRST, "Limit": 1, "ExclusiveStartKey": {"sk": {"S": "1"}}},
    "from-2": {**_FROM, "ExpressionAttributeValues": {":s": {"S": "2"}}},
    "from-3": {**_FROM, "ExpressionAttributeValues": {":s": {"S": "3"}}},
    "from-2-projected": {
        **_FROM,
        "ExpressionAttributeValues": {":s": {"S": "2"}},
        "ProjectionExpression": "sk, v",
    },
}
SCAN_SHAPES: dict[str, dict[str, Any]] = {
    "all": {},
    "three": {"Limit": 3},
    "seeded": {"FilterExpression": "attribute_exists(seed)"},  # the initial items, unchanged
    "v-at-least-5": {
        "FilterExpression": "v >= :n",
        "ExpressionAttributeValues": {":n": {"N": "5"}},
    },
    "v-at-least-9": {
        "FilterExpression": "v >= :n",
        "ExpressionAttributeValues": {":n": {"N": "9"}},
    },
}


def query_params(table: str, pk: str, shape: str) -> dict[str, Any]:
    params = {"TableName": table, **QUERY_SHAPES[shape]}
    params["ExpressionAttributeValues"] = {
        ":p": {"S": pk},
        **params.get("ExpressionAttributeValues", {}),
    }
    if "ExclusiveStartKey" in params:
        params["ExclusiveStartKey"] = {"pk": {"S": pk}, **params["ExclusiveStartKey"]}
    return params


def index_params(table: str, g: str) -> dict[str, Any]:
    return {
        "TableName": table,
        "IndexName": "by_g",
        "KeyConditionExpression": "g = :g",
        "ExpressionAttributeValues": {":g": {"S": g}},
    }


def g_of(number: int) -> dict[str, str]:
    return {"S": GS[number % len(GS)]}


def scan_params(table: str, shape: str) -> dict[str, Any]:
    return {"TableName": table, **SCAN_SHAPES[shape]}


def strip(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def as_set(answer: dict[str, Any]) -> dict[str, Any]:
    """An index partition's answer with its items in one order (see the docstring)."""
    items = sorted(answer.get("Items", []), key=lambda item: repr(sorted(item.items())))
    return {**strip(answer), "Items": items}


# Steps ----------------------------------------------------------------------------

pks = st.sampled_from(PKS)
sks = st.sampled_from(SKS)
via = st.sampled_from(["registered", "plain"])
write = st.tuples(st.sampled_from(["put", "update", "delete"]), via, pks, sks)
query = st.tuples(st.just("query"), pks)
index_query = st.tuples(st.just("index"), st.sampled_from(GS))
scan = st.just(("scan",))
drain = st.just(("drain",))
step = st.one_of(write, write, query, query, index_query, scan, drain)
steps_strategy = st.lists(step, min_size=4, max_size=30)
#: The items there before the first step (written by the plain client, before the cache
#: has anything of the table): each one of PKS x SKS, or not.
initial_strategy = st.lists(
    st.booleans(), min_size=len(PKS) * len(SKS), max_size=len(PKS) * len(SKS)
)


# The world and the oracle ---------------------------------------------------------


@dataclass
class Scope:
    """The true answers of one scope's shapes after each write to it, and the floor."""

    history: list[dict[str, dict[str, Any]]] = field(default_factory=list)
    floor: int = 0

    def record(self, answers: dict[str, dict[str, Any]], *, known: bool) -> None:
        self.history.append(answers)
        if known:
            self.floor = len(self.history) - 1

    def allowed(self, shape: str) -> list[dict[str, Any]]:
        return [answers[shape] for answers in self.history[self.floor :]]


class QueryWorld:
    """One registered client (the driver under test), a plain client and a tailer."""

    def __init__(self, endpoint: str, backend: Backend) -> None:
        self.endpoint = endpoint
        self.backend = backend
        session = new_session()  # botocore, or aiobotocore with --driver=async
        config = CacheConfig(
            ttl=300,
            tombstone_ttl=TOMBSTONE_TTL,
            cache_queries=True,
            cache_scans=True,
            account_id=ACCOUNT,
        )
        self.registration = momento_botocore.register(session, config=config, backend=backend)
        self.cached = session.client("dynamodb", endpoint_url=endpoint)
        plain = plain_session()
        self.plain = plain.client("dynamodb", endpoint_url=endpoint)
        self.streams = plain.client("dynamodbstreams", endpoint_url=endpoint)
        # DescribeTable tells it the GSI's key: it bumps the index partitions of both images.
        describe = describe_with_boto3(
            endpoint, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        self.invalidator = make_handler(
            self.registration.config, backend=backend, describe_table=describe
        )
        self.tables = itertools.count()
        self.tally: Counter[str] = Counter()

    def run(self, initial: list[bool], steps: list[tuple[Any, ...]]) -> None:
        table, tailer, scopes = self.start(initial)
        for number, (kind, *args) in enumerate(steps):
            where = f"step {number} {(kind, *args)} of {steps}"
            if kind == "pause":  # (explicit examples only) the markers expire
                time.sleep(TOMBSTONE_TTL + 0.05)
            elif kind == "drain":
                tailer.drain()  # every write so far is applied: the floors are now
                for scope in scopes.values():
                    scope.floor = len(scope.history) - 1
            elif kind in ("query", "index", "scan"):
                self.read(table, scopes, kind, args, where)
            else:
                by, pk, sk = args
                self.write(table, kind, by, pk, sk, number)
                for name in (pk, "", *(f"g:{g}" for g in GS)):
                    scopes[name].record(self.truth(table, name), known=by == "registered")

    def read(
        self, table: str, scopes: dict[str, Scope], kind: str, args: list[Any], where: str
    ) -> None:
        """A query of a partition or of an index partition, or a scan, checked."""
        if kind == "query":
            (pk,) = args
            for shape in QUERY_SHAPES:
                self.check(scopes[pk], shape, query_params(table, pk, shape), where)
        elif kind == "index":
            (g,) = args
            self.check(scopes[f"g:{g}"], "all", index_params(table, g), where, index=True)
        else:
            for shape in SCAN_SHAPES:
                self.check(scopes[""], shape, scan_params(table, shape), where, scan=True)

    def start(self, initial: list[bool]) -> tuple[str, StreamTailer, dict[str, Scope]]:
        """A new table holding the ``initial`` items, its tailer, and its scopes."""
        table = f"qprop{next(self.tables)}"
        self.plain.create_table(
            TableName=table,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "g")
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_g",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            BillingMode="PAY_PER_REQUEST",
        )
        items = itertools.product(PKS, SKS)
        for number, ((pk, sk), there) in enumerate(zip(items, initial, strict=True)):
            if there:
                item = {
                    "pk": {"S": pk},
                    "sk": {"S": sk},
                    "v": {"N": str(number)},
                    "g": g_of(number),
                }
                self.plain.put_item(TableName=table, Item={**item, "seed": {"BOOL": True}})
        tailer = StreamTailer(
            self.invalidator, table=table, client=self.streams, start=TRIM_HORIZON
        )
        # The cache has nothing of this table yet: the floors are now.
        # "": the table (scans); "g:x": the GSI's partition x.
        scopes = {name: Scope() for name in (*PKS, "", *(f"g:{g}" for g in GS))}
        for name, scope in scopes.items():
            scope.record(self.truth(table, name), known=True)
        return table, tailer, scopes

    def write(self, table: str, kind: str, by: str, pk: str, sk: str, number: int) -> None:
        """A put, update or delete of item (pk, sk), setting ``v`` to ``number`` and ``g``
        to x or y by its parity (a put drops ``seed``, an update keeps it)."""
        client = self.cached if by == "registered" else self.plain
        key = {"pk": {"S": pk}, "sk": {"S": sk}}
        if kind == "delete":
            client.delete_item(TableName=table, Key=key)
            return
        value = {"N": str(number)}
        if kind == "put":
            client.put_item(TableName=table, Item={**key, "v": value, "g": g_of(number)})
            return
        client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET v = :v, g = :g",
            ExpressionAttributeValues={":v": value, ":g": g_of(number)},
        )

    def truth(self, table: str, scope: str) -> dict[str, dict[str, Any]]:
        """DynamoDB's answers now to every shape of ``scope`` (a partition, an index
        partition, or "" for scans)."""
        if scope.startswith("g:"):
            return {"all": as_set(self.plain.query(**index_params(table, scope[2:])))}
        if scope:
            return {
                shape: strip(self.plain.query(**query_params(table, scope, shape)))
                for shape in QUERY_SHAPES
            }
        return {shape: strip(self.plain.scan(**scan_params(table, shape))) for shape in SCAN_SHAPES}

    def check(
        self,
        scope: Scope,
        shape: str,
        params: dict[str, Any],
        where: str,
        *,
        scan: bool = False,
        index: bool = False,
    ) -> None:
        allowed = scope.allowed(shape)
        for ask in range(ASKS):
            answer = (self.cached.scan if scan else self.cached.query)(**params)
            got = as_set(answer) if index else strip(answer)
            assert got in allowed, (
                f"{where}, ask {ask}: the answer {got} is none of DynamoDB's answers since "
                f"the floor {allowed}"
            )
            header = answer["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache")
            self.tally[f"{header}"] += 1
            if index:
                self.tally[f"index {header}"] += 1
            if got != allowed[-1]:
                self.tally["stale-allowed"] += 1


# Always run, before the random examples: the plainest cases of each guarantee, so that a
# mutation that breaks one is caught every time (the random ones find the rest).
#: Pages filled and hit; the cache's own writes (a put, an update, a delete) make them fresh.
FRESH_AFTER_OWN_WRITES = [
    ("query", "a"),
    ("scan",),
    ("update", "registered", "a", "1"),
    ("query", "a"),
    ("scan",),
    ("delete", "registered", "a", "2"),
    ("query", "a"),
    ("put", "registered", "b", "3"),
    ("query", "a"),  # after another partition's write
    ("scan",),
]
#: Pages filled and hit; writes of a plain client, once drained, make them fresh.
FRESH_AFTER_THE_STREAM = [
    ("query", "b"),
    ("scan",),
    ("put", "plain", "b", "1"),
    ("update", "plain", "a", "1"),
    ("drain",),
    ("query", "b"),
    ("scan",),
    ("delete", "plain", "b", "1"),
    ("drain",),
    ("query", "b"),
    ("scan",),
]
#: A plain write not drained yet: the hits are stale within the allowance (the coverage
#: check at the end counts on it); then drained.
STALE_WITHIN_THE_LAG = [
    ("query", "a"),
    ("scan",),
    ("put", "plain", "a", "2"),
    ("query", "a"),
    ("scan",),
    ("put", "registered", "b", "1"),
    ("query", "a"),
    ("drain",),
    ("query", "a"),
    ("scan",),
]

#: An item moved between the GSI's partitions, by a plain write (seen on the stream:
#: both images' partitions bumped) and by a registered one (every index page bumped).
#: ``g`` follows the step's number: item a/1 starts in x, moves to y at step 5 and
#: back to x at step 12. The seed is drained first, and its markers left to expire.
INDEX_MOVES = [
    ("drain",),
    ("pause",),
    ("index", "x"),
    ("index", "y"),
    ("index", "x"),
    ("update", "plain", "a", "1"),
    ("drain",),
    ("index", "x"),
    ("index", "y"),
    ("pause",),
    ("index", "y"),
    ("index", "y"),
    ("update", "registered", "a", "1"),
    ("index", "x"),
    ("index", "y"),
]

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_no_query_or_scan_answer_is_older_than_the_writes_the_cache_was_told_of(
    endpoint: str, default_backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    world = QueryWorld(endpoint, default_backend)

    @PROPERTY
    @given(initial=initial_strategy, steps=steps_strategy)
    @example(initial=[True] * 6, steps=FRESH_AFTER_OWN_WRITES)
    @example(initial=[True] * 6, steps=FRESH_AFTER_THE_STREAM)
    @example(initial=[True] * 6, steps=STALE_WITHIN_THE_LAG)
    @example(initial=[True] * 6, steps=INDEX_MOVES)
    def interleavings(initial: list[bool], steps: list[tuple[Any, ...]]) -> None:
        world.run(initial, steps)

    interleavings()
    with capsys.disabled():
        print(f"\nquery cache property: {dict(world.tally)}")
    assert world.tally["hit"] > 0, world.tally
    assert world.tally["index hit"] > 0, world.tally
    assert world.tally["stale-allowed"] > 0, world.tally
