"""Read a table's DynamoDB stream and feed a Lambda-style handler, outside Lambda.

This is how the stream invalidator runs in local development, containers, the
demo and the tests. It does what Lambda's event source mapping does, in small:

* every shard of the stream, following lineage: a child shard is read only after
  its parent has been read to its end (so one item's records stay in order across
  a shard split); closed shards are read to their end;
* ``LATEST`` (the default: only changes made from now on) or ``TRIM_HORIZON``
  (everything the stream still holds, 24 h). With ``LATEST``, shards already
  closed at start are skipped and shards that appear later are read from their
  beginning, so nothing written after the start is lost;
* Lambda-shaped events: ``{"Records": [...]}`` with ``eventSourceARN`` added (the
  GetRecords API has no such field) and binary values as base64 text, exactly
  the JSON Lambda delivers;
* the handler's partial batch response is honoured like Lambda does: the batch is
  re-delivered from the lowest failed record (with backoff) before anything
  newer of that shard is read; a handler that raises fails the whole batch;
* stops cleanly: :meth:`StreamTailer.stop` (or SIGINT/SIGTERM in the CLI) ends the
  loop after the current call.

Deterministic use in tests: call :meth:`StreamTailer.poll_once` or
:meth:`StreamTailer.drain` yourself, or run it in a thread with :meth:`start` and
use :meth:`wait_until_caught_up`.
"""

from __future__ import annotations

import base64
import datetime
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("momento_botocore.tailer")

LATEST = "LATEST"
TRIM_HORIZON = "TRIM_HORIZON"
START_POSITIONS = (LATEST, TRIM_HORIZON)

Handler = Callable[[dict[str, Any], Any], Any]


class StreamNotFoundError(LookupError):
    """The table has no stream to read."""


@dataclass
class TailerStats:
    """Running totals since the tailer was made."""

    rounds: int = 0
    records_read: int = 0  # fetched from the stream
    records_delivered: int = 0  # handed to the handler and not reported as failed
    batches: int = 0  # handler calls, retries included
    failed_batches: int = 0  # handler calls that failed some or all records
    shards_finished: int = 0
    errors: int = 0  # stream API errors (throttling, expired iterators, ...)


@dataclass(frozen=True)
class PollResult:
    """What one round over the readable shards did."""

    records_read: int
    records_delivered: int
    records_pending: int  # waiting to be retried
    shards_read: int
    errors: int = 0  # stream API calls that failed
    shards_backing_off: int = 0  # skipped this round, waiting after a failure
    shards_finished: int = 0  # read to their end this round (children to look for)

    @property
    def idle(self) -> bool:
        """Nothing read, delivered, waiting to be retried, or failed: caught up."""
        return not (
            self.records_read
            or self.records_delivered
            or self.records_pending
            or self.errors
            or self.shards_backing_off
            or self.shards_finished
        )


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    start: str  # iterator type for the first iterator: LATEST or TRIM_HORIZON
    iterator: str | None = None
    position: str | None = None  # sequence number of the last record fetched
    done: bool = False  # read to its end (or skipped)
    end_reached: bool = False  # no more iterators: done once pending is delivered
    pending: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0
    not_before: float = 0.0  # no call for this shard before this time (backoff)


def _error_code(error: BaseException) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, Mapping):
        code = response.get("Error", {}).get("Code")
        return code if isinstance(code, str) else None
    return None


def _json_value(value: Any) -> Any:
    """An attribute value in Lambda's JSON form: binary as base64 text."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return value
    ((tag, raw),) = value.items()
    if tag == "B" and isinstance(raw, (bytes, bytearray)):
        return {"B": base64.b64encode(raw).decode("ascii")}
    if tag == "BS" and isinstance(raw, list):
        return {
            "BS": [
                base64.b64encode(m).decode("ascii") if isinstance(m, (bytes, bytearray)) else m
                for m in raw
            ]
        }
    if tag == "M" and isinstance(raw, Mapping):
        return {"M": {name: _json_value(member) for name, member in raw.items()}}
    if tag == "L" and isinstance(raw, list):
        return {"L": [_json_value(member) for member in raw]}
    return value


def to_lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record (as botocore parses it) in the shape Lambda delivers."""
    shaped = dict(record)
    change = record.get("dynamodb")
    if isinstance(change, Mapping):
        change = dict(change)
        for part in ("Keys", "NewImage", "OldImage"):
            image = change.get(part)
            if isinstance(image, Mapping):
                change[part] = {name: _json_value(value) for name, value in image.items()}
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, datetime.datetime):
            change["ApproximateCreationDateTime"] = created.timestamp()
        shaped["dynamodb"] = change
    shaped["eventSourceARN"] = stream_arn
    return shaped


class StreamTailer:
    """Reads one DynamoDB stream and hands Lambda-shaped batches to ``handler``.

    ``handler(event, context)`` is any Lambda-style handler; a
    :class:`~momento_botocore.streams.StreamInvalidator` from ``make_handler`` is
    the usual one. Name the stream by ``table`` (its latest stream is used) or by
    ``stream_arn``. ``client`` is a ``dynamodbstreams`` client; without one, a
    client is made with ``region_name`` and ``endpoint_url``.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        table: str | None = None,
        stream_arn: str | None = None,
        client: Any = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        start: str = LATEST,
        batch_size: int = 1000,
        poll_interval: float = 0.5,
        retry_delay: float = 0.5,
        max_retry_delay: float = 10.0,
        shard_refresh_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (table is None) == (stream_arn is None):
            raise ValueError("name the stream with exactly one of table= or stream_arn=")
        if start not in START_POSITIONS:
            raise ValueError(f"start must be one of {', '.join(START_POSITIONS)}, got {start!r}")
        if not 1 <= batch_size <= 1000:
            raise ValueError(f"batch_size must be 1..1000 (GetRecords' limit), got {batch_size}")
        if client is None:
            import boto3

            client = boto3.client(
                "dynamodbstreams", region_name=region_name, endpoint_url=endpoint_url
            )
        self.handler = handler
        self.table = table
        self.stream_arn = stream_arn
        self.client = client
        self.start_position = start
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.shard_refresh_interval = shard_refresh_interval
        self.stats = TailerStats()
        self._clock = clock
        self._shards: dict[str, _Shard] = {}
        self._discovered = False
        self._next_discovery = 0.0
        self._stream_enabled = True
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        # Rounds are numbered as they start; an idle round is one that read nothing
        # and left nothing to retry. wait_until_caught_up() waits for one that started
        # after it was called.
        self._progress = threading.Condition()
        self._rounds_started = 0
        self._last_idle_round = 0

    # Python API ----------------------------------------------------------------------

    def resolve_stream(self) -> str:
        """The stream's ARN (looked up from the table name once). Raises when there is none."""
        if self.stream_arn is None:
            self.stream_arn = self._latest_stream_of(self.table or "")
        return self.stream_arn

    def poll_once(self) -> PollResult:
        """One round: find new shards when due, then one call per readable shard."""
        with self._poll_lock:
            with self._progress:
                self._rounds_started += 1
                round_number = self._rounds_started
            result = self._round()
            self.stats.rounds += 1
            if result.idle:
                with self._progress:
                    self._last_idle_round = max(self._last_idle_round, round_number)
                    self._progress.notify_all()
            return result

    def drain(self, max_rounds: int = 1000) -> int:
        """Poll until a round is idle; returns the records delivered. For tests and scripts."""
        delivered = 0
        for _ in range(max_rounds):
            result = self.poll_once()
            delivered += result.records_delivered
            if result.idle:
                return delivered
            if result.shards_backing_off and not result.records_read:
                self._wait_for_backoff()
        raise TimeoutError(f"the stream was not drained in {max_rounds} rounds")

    def run(self) -> None:
        """Poll until :meth:`stop` (or the stream is disabled and read to its end)."""
        self.resolve_stream()
        while not self._stop.is_set():
            try:
                result = self.poll_once()
            except Exception as error:  # keep tailing through transient trouble
                self.stats.errors += 1
                logger.warning("momento-botocore tail: %s: %s", type(error).__name__, error)
                self._stop.wait(self.retry_delay)
                continue
            if (
                not self._stream_enabled
                and self._shards
                and all(s.done for s in self._shards.values())
            ):
                logger.info("momento-botocore tail: the stream is disabled and fully read")
                break
            if result.records_read == 0:
                self._stop.wait(self.poll_interval)

    def start(self) -> StreamTailer:
        """Run in a daemon thread. The stream is looked up first, so a missing one raises here."""
        if self._thread is not None:
            raise RuntimeError("this tailer is already started")
        self.resolve_stream()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run_in_thread, name="momento-botocore-tail", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the loop to end after its current call, and wait for the thread."""
        self._stop.set()
        with self._progress:
            self._progress.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError("the tailer thread did not stop in time")
            self._thread = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait_until_caught_up(self, timeout: float = 30.0) -> bool:
        """Wait until a round that started after this call found nothing to read or retry.

        For tests over moto, whose records are readable as soon as a write returns:
        after it, every write acknowledged before the call has been delivered. (Real
        DynamoDB can answer an empty page before a shard's end; treat it as a hint.)
        """
        deadline = time.monotonic() + timeout
        with self._progress:
            target = self._rounds_started
            while self._last_idle_round <= target:
                if self._failure is not None:
                    raise RuntimeError("the tailer thread failed") from self._failure
                if self._stop.is_set():
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._progress.wait(remaining)
        return True

    def __enter__(self) -> StreamTailer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # Internals -----------------------------------------------------------------------

    def _run_in_thread(self) -> None:
        try:
            self.run()
        except BaseException as error:
            self._failure = error
            logger.exception("momento-botocore tail: stopped by an error")
            with self._progress:
                self._progress.notify_all()

    def _latest_stream_of(self, table: str) -> str:
        streams: list[Mapping[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": table}
        while True:
            page = self.client.list_streams(**kwargs)
            streams.extend(page.get("Streams", []))
            last = page.get("LastEvaluatedStreamArn")
            if not last:
                break
            kwargs["ExclusiveStartStreamArn"] = last
        if not streams:
            raise StreamNotFoundError(
                f"table {table!r} has no stream: enable one (StreamViewType NEW_IMAGE, or "
                "NEW_AND_OLD_IMAGES, refreshes entries; KEYS_ONLY invalidates them)"
            )
        newest = max(streams, key=lambda s: str(s.get("StreamLabel", "")))
        return str(newest["StreamArn"])

    def _round(self) -> PollResult:
        arn = self.resolve_stream()
        now = self._clock()
        if not self._discovered or now >= self._next_discovery:
            self._discover(arn)
        read = delivered = shards_read = backing_off = 0
        errors_before = self.stats.errors
        finished_before = self.stats.shards_finished
        for shard in list(self._shards.values()):
            if self._stop.is_set():
                break
            if shard.done or not self._parent_done(shard):
                continue
            if self._clock() < shard.not_before:
                backing_off += 1
                continue
            shards_read += 1
            fetched, handed = self._read_shard(arn, shard)
            read += fetched
            delivered += handed
        pending = sum(len(s.pending) for s in self._shards.values())
        self.stats.records_read += read
        self.stats.records_delivered += delivered
        errors = self.stats.errors - errors_before
        finished = self.stats.shards_finished - finished_before
        return PollResult(read, delivered, pending, shards_read, errors, backing_off, finished)

    def _parent_done(self, shard: _Shard) -> bool:
        parent = self._shards.get(shard.parent_id) if shard.parent_id else None
        return parent is None or parent.done

    def _discover(self, arn: str) -> None:
        """Add shards we have not seen; describe_stream is paged by shard id."""
        first = not self._discovered
        kwargs: dict[str, Any] = {"StreamArn": arn}
        while True:
            description = self.client.describe_stream(**kwargs)["StreamDescription"]
            self._stream_enabled = description.get("StreamStatus", "ENABLED") in (
                "ENABLED",
                "ENABLING",
            )
            for shard in description.get("Shards", []):
                shard_id = shard["ShardId"]
                if shard_id in self._shards:
                    continue
                closed = "EndingSequenceNumber" in shard.get("SequenceNumberRange", {})
                start = self.start_position if first else TRIM_HORIZON
                entry = _Shard(shard_id, shard.get("ParentShardId"), start)
                if first and start == LATEST and closed:
                    entry.done = True  # history from before the start: not ours to replay
                self._shards[shard_id] = entry
                logger.debug(
                    "momento-botocore tail: shard %s (parent %s)", shard_id, entry.parent_id
                )
            last = description.get("LastEvaluatedShardId")
            if not last:
                break
            kwargs["ExclusiveStartShardId"] = last
        self._discovered = True
        self._next_discovery = self._clock() + self.shard_refresh_interval

    def _read_shard(self, arn: str, shard: _Shard) -> tuple[int, int]:
        """One call for one shard: retry its pending records, or fetch and deliver new ones."""
        if shard.pending:
            return 0, self._deliver(arn, shard, shard.pending)
        try:
            if shard.iterator is None:
                shard.iterator = self._new_iterator(arn, shard)
            page = self.client.get_records(ShardIterator=shard.iterator, Limit=self.batch_size)
        except Exception as error:
            self._stream_error(shard, error)
            return 0, 0
        records = list(page.get("Records", []))
        shard.failures = 0
        shard.iterator = page.get("NextShardIterator")
        if shard.iterator is None:
            shard.end_reached = True
        if records:
            shard.position = records[-1]["dynamodb"]["SequenceNumber"]
        delivered = self._deliver(arn, shard, records) if records else 0
        self._finish_if_done(shard)
        return len(records), delivered

    def _new_iterator(self, arn: str, shard: _Shard) -> str:
        kwargs: dict[str, Any] = {"StreamArn": arn, "ShardId": shard.shard_id}
        if shard.position is not None:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.position)
        else:
            kwargs["ShardIteratorType"] = shard.start
        return str(self.client.get_shard_iterator(**kwargs)["ShardIterator"])

    def _deliver(self, arn: str, shard: _Shard, records: list[dict[str, Any]]) -> int:
        """Hand records to the handler; keep the failed suffix for a retry. Returns delivered."""
        event = {"Records": [to_lambda_record(r, arn) for r in records]}
        self.stats.batches += 1
        try:
            response = self.handler(event, None)
            first_failed = self._first_failed(records, response)
        except Exception as error:
            logger.warning(
                "momento-botocore tail: handler failed on %d record(s) of shard %s: %s: %s",
                len(records),
                shard.shard_id,
                type(error).__name__,
                error,
            )
            first_failed = 0
        if first_failed is None:
            shard.pending = []
            shard.failures = 0
            shard.not_before = 0.0
            self._finish_if_done(shard)
            return len(records)
        self.stats.failed_batches += 1
        shard.pending = records[first_failed:]
        shard.failures += 1
        delay = min(self.retry_delay * 2 ** (shard.failures - 1), self.max_retry_delay)
        shard.not_before = self._clock() + delay
        logger.info(
            "momento-botocore tail: %d record(s) of shard %s to retry in %.2fs (attempt %d)",
            len(shard.pending),
            shard.shard_id,
            delay,
            shard.failures + 1,
        )
        return first_failed

    @staticmethod
    def _first_failed(records: list[dict[str, Any]], response: Any) -> int | None:
        """Index of the lowest failed record, or None when all succeeded (Lambda's rules)."""
        if not isinstance(response, Mapping):
            return None
        reported = response.get("batchItemFailures")
        if not reported:
            return None
        numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
        indexes = []
        for failure in reported:
            identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
            if identifier not in numbers:
                return 0  # an identifier Lambda cannot match fails the whole batch
            indexes.append(numbers.index(identifier))
        return min(indexes)

    def _finish_if_done(self, shard: _Shard) -> None:
        if shard.end_reached and not shard.pending and not shard.done:
            shard.done = True
            self.stats.shards_finished += 1
            self._next_discovery = 0.0  # its children may be listed now
            logger.debug("momento-botocore tail: shard %s read to its end", shard.shard_id)

    def _stream_error(self, shard: _Shard, error: BaseException) -> None:
        code = _error_code(error)
        self.stats.errors += 1
        if code == "ExpiredIteratorException":
            shard.iterator = None  # a new one from the last position, right away
            return
        if code == "TrimmedDataAccessException":
            logger.warning(
                "momento-botocore tail: shard %s was trimmed past our position; "
                "records were lost, restarting at TRIM_HORIZON",
                shard.shard_id,
            )
            shard.iterator, shard.position, shard.start = None, None, TRIM_HORIZON
            return
        if code == "ResourceNotFoundException":
            logger.warning("momento-botocore tail: shard %s is gone; skipping it", shard.shard_id)
            shard.end_reached = True
            shard.iterator = None
            self._finish_if_done(shard)
            return
        shard.failures += 1
        delay = min(self.retry_delay * 2 ** (shard.failures - 1), self.max_retry_delay)
        shard.not_before = self._clock() + delay
        logger.warning(
            "momento-botocore tail: reading shard %s failed (%s: %s); retrying in %.2fs",
            shard.shard_id,
            type(error).__name__,
            error,
            delay,
        )

    def _wait_for_backoff(self) -> None:
        now = self._clock()
        waiting = [s.not_before for s in self._shards.values() if not s.done and s.not_before > now]
        if waiting:
            self._stop.wait(min(waiting) - now)
