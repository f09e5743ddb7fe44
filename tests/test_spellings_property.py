"""Writes and reads of one item through different spellings of its key, against moto's
server: whatever spelling wrote it, a cached read in any other spelling is as fresh
as an uncached one.

Number spellings are those DynamoDB accepts for one number (``100``, ``+100``,
``100.``, ``1E+2``...) plus one the codec refuses and moto accepts (``1_00``: its
write fences the table). Strings: a non-BMP character and its surrogate pair, which
botocore sends as the same bytes.
"""

from __future__ import annotations

from typing import Any

from conftest import create_table, new_session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import momento_botocore
from momento_botocore import CacheConfig, MemoryBackend
from momento_botocore.pending import forget_shared

NUMBER_SPELLINGS = {
    "100": ["100", "+100", "100.", "100.0", "0100", "1E+2", "+1e2", ".1e3", "1_00"],
    "0.5": ["0.5", ".5", "+.5", "5e-1", "+0.50", "5.E-1"],
}
STRING_SPELLINGS = {"x\U0001f600": ["x\U0001f600", "x\ud83d\ude00"]}

operation = st.sampled_from(["put", "update", "delete", "get", "batch_get"])


def spelled(spellings: dict[str, list[str]]) -> st.SearchStrategy[tuple[str, str]]:
    return st.sampled_from(sorted(spellings)).flatmap(
        lambda value: st.tuples(st.just(value), st.sampled_from(spellings[value]))
    )


def run(endpoint: str, table: str, tag: str, steps: list[tuple[str, tuple[str, str], str]]) -> None:
    uncached = new_session().client("dynamodb", endpoint_url=endpoint)
    spellings = NUMBER_SPELLINGS if tag == "N" else STRING_SPELLINGS
    for value in spellings:  # a known start: every item present
        uncached.put_item(TableName=table, Item={"pk": {tag: value}, "v": {"S": "start"}})
    session = new_session()
    momento_botocore.register(session, backend=MemoryBackend(), config=CacheConfig(ttl=300))
    cached = session.client("dynamodb", endpoint_url=endpoint)
    try:
        for number, (kind, (value, spelling), read_spelling) in enumerate(steps):
            key = {"pk": {tag: spelling}}
            if kind == "put":
                cached.put_item(TableName=table, Item={**key, "v": {"S": f"put {number}"}})
            elif kind == "update":
                cached.update_item(
                    TableName=table,
                    Key=key,
                    UpdateExpression="SET v = :v",
                    ExpressionAttributeValues={":v": {"S": f"update {number}"}},
                )
            elif kind == "delete":
                cached.delete_item(TableName=table, Key=key)
            elif kind == "get":
                cached.get_item(TableName=table, Key=key)
            else:
                cached.batch_get_item(RequestItems={table: {"Keys": [key]}})
            truth = uncached.get_item(TableName=table, Key={"pk": {tag: value}}).get("Item")
            read_key = {"pk": {tag: read_spelling}}
            for _ in range(2):  # the first read may fill, the second may hit
                got = cached.get_item(TableName=table, Key=read_key).get("Item")
                assert got == truth, f"step {number}: GetItem {read_spelling!r}"
            answer = cached.batch_get_item(RequestItems={table: {"Keys": [read_key]}})
            assert answer["Responses"][table] == ([truth] if truth else []), (
                f"step {number}: BatchGetItem {read_spelling!r}"
            )
    finally:
        momento_botocore.unregister_all()
        forget_shared()


def steps_of(spellings: dict[str, list[str]]) -> st.SearchStrategy[Any]:
    def step(pair: tuple[str, str]) -> st.SearchStrategy[Any]:
        return st.tuples(operation, st.just(pair), st.sampled_from(spellings[pair[0]]))

    return st.lists(spelled(spellings).flatmap(step), min_size=1, max_size=6)


PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(steps=steps_of(NUMBER_SPELLINGS))
def test_number_key_written_in_one_spelling_reads_fresh_in_any_other(
    moto_endpoint: str, steps: list[Any]
) -> None:
    client = new_session().client("dynamodb", endpoint_url=moto_endpoint)
    if "spell_n" not in client.list_tables()["TableNames"]:
        create_table(client, "spell_n", hash_key=("pk", "N"))
    run(moto_endpoint, "spell_n", "N", steps)


@PROPERTY
@given(steps=steps_of(STRING_SPELLINGS))
def test_string_key_written_in_one_spelling_reads_fresh_in_any_other(
    moto_endpoint: str, steps: list[Any]
) -> None:
    client = new_session().client("dynamodb", endpoint_url=moto_endpoint)
    if "spell_s" not in client.list_tables()["TableNames"]:
        create_table(client, "spell_s", hash_key=("pk", "S"))
    run(moto_endpoint, "spell_s", "S", steps)
