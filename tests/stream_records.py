"""Stream records shaped like the ones AWS Lambda delivers (JSON: binary as base64 text)."""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

ACCOUNT = "123456789012"
STREAM_LABEL = "2026-11-26T23:10:05.056"
_SEQUENCE = itertools.count(4421584500000000017450439091)


def stream_arn(table: str = "items", region: str = "us-east-1") -> str:
    return f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}/stream/{STREAM_LABEL}"


def lambda_record(
    event_name: str,
    keys: dict[str, Any],
    *,
    view: str = "NEW_AND_OLD_IMAGES",
    new: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    table: str = "items",
    region: str = "us-east-1",
    sequence_number: str | None = None,
    ttl_expiry: bool = False,
) -> dict[str, Any]:
    """One record as DynamoDB Streams -> Lambda delivers it, images kept per ``view``.

    ``new``/``old`` are the item's images; this drops the ones the view type leaves out
    (and the new image of a REMOVE, the old image of an INSERT), as DynamoDB does.
    """
    change: dict[str, Any] = {
        "ApproximateCreationDateTime": 1764198605,
        "Keys": keys,
        "SequenceNumber": sequence_number or str(next(_SEQUENCE)),
        "SizeBytes": 59,
        "StreamViewType": view,
    }
    if new is not None and event_name != "REMOVE" and view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
        change["NewImage"] = new
    if old is not None and event_name != "INSERT" and view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
        change["OldImage"] = old
    record: dict[str, Any] = {
        "eventID": f"{change['SequenceNumber'][-12:]}a1b2c3d4e5f6",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": change,
        "eventSourceARN": stream_arn(table, region),
    }
    if ttl_expiry:
        record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    # Exactly what Lambda hands over: plain JSON.
    return json.loads(json.dumps(record))


def lambda_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sequence_numbers(*records: dict[str, Any]) -> list[str]:
    return [record["dynamodb"]["SequenceNumber"] for record in records]


def failures(*records: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """The partial batch response that reports exactly ``records``."""
    return {"batchItemFailures": [{"itemIdentifier": n} for n in sequence_numbers(*records)]}
