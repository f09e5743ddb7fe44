"""The stream side checks the same pinned key vectors as the read side (Contract 1)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from test_keys import VECTORS

from momento_botocore import CacheConfig
from momento_botocore.core.keys import parse_table
from momento_botocore.streams import MalformedRecordError, plan_record


def lambda_record(vector: dict[str, Any], *, binary_as_bytes: bool) -> dict[str, Any]:
    account, region, table = parse_table(
        vector["table"], vector["default_region"], vector["default_account"]
    )
    keys = {
        name: {"B": base64.b64decode(value["B"])} if binary_as_bytes and "B" in value else value
        for name, value in vector["key"].items()
    }
    return {
        "eventName": "REMOVE",
        "eventSourceARN": f"arn:aws:dynamodb:{region}:{account}:table/{table}/stream/2026-01-01",
        "dynamodb": {"Keys": keys, "SequenceNumber": "100"},
    }


@pytest.mark.parametrize("binary_as_bytes", [False, True], ids=["lambda-json", "streams-api"])
@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_stream_records_map_to_the_pinned_keys(
    vector: dict[str, Any], binary_as_bytes: bool
) -> None:
    config = CacheConfig(ttl=60, key_prefix=vector["prefix"])
    write = plan_record(lambda_record(vector, binary_as_bytes=binary_as_bytes), config)
    assert write is not None
    assert write.key == vector["expected"]


def test_a_record_without_an_arn_is_malformed() -> None:
    record = {
        "eventName": "REMOVE",
        "eventSourceARN": "items",
        "dynamodb": {"Keys": {"pk": {"S": "a"}}, "SequenceNumber": "100"},
    }
    with pytest.raises(MalformedRecordError):
        plan_record(record, CacheConfig(ttl=60))
