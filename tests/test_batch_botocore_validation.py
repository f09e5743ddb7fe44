"""An all-hit BatchGetItem is answered before botocore validates the request (the keys
are replaced by a placeholder): a key botocore itself would refuse must not be answered
from the cache, or the caller gets items instead of botocore's ParamValidationError."""

from __future__ import annotations

import pytest
from botocore.exceptions import ParamValidationError
from conftest import create_table, new_session

import momento_botocore
from momento_botocore import MemoryBackend


def test_a_memoryview_binary_key_gets_botocores_validation_error_even_when_cached(
    endpoint: str,
) -> None:
    plain = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(plain, "blobs", hash_key=("pk", "B"))
    plain.put_item(TableName="blobs", Item={"pk": {"B": b"k"}, "v": {"S": "x"}})
    session = new_session()
    momento_botocore.register(session, ttl=300, backend=MemoryBackend())
    client = session.client("dynamodb", endpoint_url=endpoint)
    request = {"blobs": {"Keys": [{"pk": {"B": memoryview(b"k")}}]}}
    with pytest.raises(ParamValidationError):
        plain.batch_get_item(RequestItems=request)  # what the caller gets without the cache
    client.batch_get_item(RequestItems={"blobs": {"Keys": [{"pk": {"B": b"k"}}]}})  # fills

    with pytest.raises(ParamValidationError):
        client.batch_get_item(RequestItems=request)
