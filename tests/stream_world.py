"""A table with a stream on moto's server, a registered reader, an unregistered writer,
and a tailer feeding the stream invalidator into the reader's cache."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.loaders
import botocore.session
from conftest import ACCOUNT, REGION, RequestCounter, create_table

import momento_botocore
from momento_botocore.backends.base import Backend
from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.config import CacheConfig
from momento_botocore.core.entries import Entry, decode
from momento_botocore.core.keys import cache_key
from momento_botocore.streams import make_handler
from momento_botocore.tailer import TRIM_HORIZON, StreamTailer

TABLE = "items"

# One model loader for every session here: botocore caches parsed JSON models per
# loader, and loading endpoints.json afresh for each session costs ~0.15 s.
_LOADER = botocore.loaders.create_loader()


def new_session() -> boto3.Session:
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name=REGION,
        botocore_session=core,
    )


class World:
    def __init__(
        self,
        endpoint: str,
        *,
        view: str = "NEW_IMAGE",
        backend: Backend | None = None,
        ttl: float = 300,
        config: CacheConfig | None = None,
        start: str = TRIM_HORIZON,
        **tailer_options: Any,
    ) -> None:
        self.backend = backend if backend is not None else MemoryBackend()
        reader_session = new_session()
        self.registration = momento_botocore.register(
            reader_session, config=config or CacheConfig(ttl=ttl), backend=self.backend
        )
        self.reader_session = reader_session
        self.reader = reader_session.client("dynamodb", endpoint_url=endpoint)
        self.sent = RequestCounter(self.reader, "GetItem")
        plain = new_session()  # not registered
        self.writer = plain.client("dynamodb", endpoint_url=endpoint)
        create_table(self.writer, TABLE, stream_view=view)
        self.invalidator = make_handler(self.registration.config, backend=self.backend)
        self.tailer = StreamTailer(
            self.invalidator,
            table=TABLE,
            client=plain.client("dynamodbstreams", endpoint_url=endpoint),
            start=start,
            **tailer_options,
        )

    def reader_client(self) -> Any:
        """Another client on the registered session (clients are made before threads start)."""
        return self.reader_session.client("dynamodb", endpoint_url=self.reader.meta.endpoint_url)

    def put(self, pk: str, v: int) -> None:
        self.writer.put_item(TableName=TABLE, Item={"pk": {"S": pk}, "v": {"N": str(v)}})

    def update(self, pk: str, v: int) -> None:
        self.writer.update_item(
            TableName=TABLE,
            Key={"pk": {"S": pk}},
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"N": str(v)}},
        )

    def delete(self, pk: str) -> None:
        self.writer.delete_item(TableName=TABLE, Key={"pk": {"S": pk}})

    def read(self, pk: str, client: Any = None) -> int | None:
        """The item's ``v`` as a registered client reads it, None when there is no item."""
        got = (client or self.reader).get_item(TableName=TABLE, Key={"pk": {"S": pk}})
        item = got.get("Item")
        return None if item is None else int(item["v"]["N"])

    def entry(self, pk: str) -> Entry | None:
        return decode(self.backend.get(cache_key(ACCOUNT, "us-east-1", TABLE, {"pk": {"S": pk}})))
