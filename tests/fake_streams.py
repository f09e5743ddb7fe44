"""A stand-in dynamodbstreams client with the response shapes botocore parses.

moto serves one shard forever; real streams split and close shards. This serves
any shard layout, pages describe_stream, and can be told to fail a call.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/items/stream/2026-11-26T23:10:05.056"
_SEQUENCE = itertools.count(300000000000000000001)


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} (fake)"}}, operation)


def stream_record(
    pk: str | bytes,
    v: int | None,
    *,
    event_name: str = "MODIFY",
    view: str = "NEW_IMAGE",
) -> dict[str, Any]:
    """A record as botocore parses GetRecords: binary as bytes, time as a datetime."""
    key_value = {"B": pk} if isinstance(pk, bytes) else {"S": pk}
    change: dict[str, Any] = {
        "ApproximateCreationDateTime": datetime.datetime(
            2026, 11, 26, 23, 10, 5, tzinfo=datetime.timezone.utc
        ),
        "Keys": {"pk": key_value},
        "SequenceNumber": str(next(_SEQUENCE)),
        "SizeBytes": 40,
        "StreamViewType": view,
    }
    if v is not None and event_name != "REMOVE" and view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
        change["NewImage"] = {"pk": key_value, "v": {"N": str(v)}}
    return {
        "eventID": change["SequenceNumber"][-8:],
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": change,
    }


@dataclass
class FakeShard:
    shard_id: str
    parent_id: str | None
    records: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False


class FakeStreams:
    def __init__(self, *, page_size: int = 100, status: str = "ENABLED") -> None:
        self.shards: dict[str, FakeShard] = {}
        self.page_size = page_size
        self.status = status
        self.calls: list[tuple[str, dict[str, Any]]] = []
        # operation -> a function of the call's kwargs returning an error to raise, or None
        self.failures: dict[str, Callable[[dict[str, Any]], Exception | None]] = {}

    # Arranging ------------------------------------------------------------------------

    def add_shard(self, shard_id: str, parent: str | None = None, *records: Any) -> FakeShard:
        shard = self.shards[shard_id] = FakeShard(shard_id, parent, list(records))
        return shard

    def put(self, shard_id: str, *records: dict[str, Any]) -> None:
        assert not self.shards[shard_id].closed
        self.shards[shard_id].records.extend(records)

    def close(self, shard_id: str) -> None:
        self.shards[shard_id].closed = True

    def calls_of(self, operation: str) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.calls if name == operation]

    # The API ----------------------------------------------------------------------------

    def _called(self, operation: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((operation, kwargs))
        fail = self.failures.get(operation)
        error = fail(kwargs) if fail else None
        if error is not None:
            raise error

    def list_streams(self, **kwargs: Any) -> dict[str, Any]:
        self._called("list_streams", kwargs)
        if kwargs.get("TableName") != "items":
            return {"Streams": []}
        return {"Streams": [{"StreamArn": ARN, "TableName": "items", "StreamLabel": ARN[-23:]}]}

    def describe_stream(self, **kwargs: Any) -> dict[str, Any]:
        self._called("describe_stream", kwargs)
        ids = list(self.shards)
        start = kwargs.get("ExclusiveStartShardId")
        begin = ids.index(start) + 1 if start else 0
        page = ids[begin : begin + self.page_size]
        shards = []
        for shard_id in page:
            shard = self.shards[shard_id]
            numbers = [r["dynamodb"]["SequenceNumber"] for r in shard.records] or ["0"]
            described: dict[str, Any] = {
                "ShardId": shard_id,
                "SequenceNumberRange": {"StartingSequenceNumber": numbers[0]},
            }
            if shard.closed:
                described["SequenceNumberRange"]["EndingSequenceNumber"] = numbers[-1]
            if shard.parent_id:
                described["ParentShardId"] = shard.parent_id
            shards.append(described)
        description: dict[str, Any] = {
            "StreamArn": ARN,
            "StreamStatus": self.status,
            "StreamViewType": "NEW_IMAGE",
            "TableName": "items",
            "Shards": shards,
        }
        if begin + self.page_size < len(ids):
            description["LastEvaluatedShardId"] = page[-1]
        return {"StreamDescription": description}

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        self._called("get_shard_iterator", kwargs)
        shard = self.shards[kwargs["ShardId"]]
        kind = kwargs["ShardIteratorType"]
        numbers = [r["dynamodb"]["SequenceNumber"] for r in shard.records]
        if kind == "TRIM_HORIZON":
            position = 0
        elif kind == "LATEST":
            position = len(shard.records)
        elif kind == "AFTER_SEQUENCE_NUMBER":
            position = numbers.index(kwargs["SequenceNumber"]) + 1
        else:
            position = numbers.index(kwargs["SequenceNumber"])
        return {"ShardIterator": f"{shard.shard_id}|{position}"}

    def get_records(self, **kwargs: Any) -> dict[str, Any]:
        self._called("get_records", kwargs)
        shard_id, position_text = kwargs["ShardIterator"].split("|")
        shard = self.shards[shard_id]
        position = int(position_text)
        records = shard.records[position : position + kwargs.get("Limit", 1000)]
        end = position + len(records)
        response: dict[str, Any] = {"Records": [dict(r) for r in records]}
        if not (shard.closed and end >= len(shard.records)):
            response["NextShardIterator"] = f"{shard_id}|{end}"
        return response
