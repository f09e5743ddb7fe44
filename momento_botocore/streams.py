"""DynamoDB Streams records -> cache refreshes and invalidations (Contract 3).

This module builds no backend: :func:`make_handler` binds a handler to a given
configuration and backend (the same backend object a ``register()`` call uses). The
entry points build one and pass it in: the Lambda handler
``momento_botocore.streams.handler`` (set up in :mod:`momento_botocore.stream_lambda`,
from environment variables alone), ``momento-botocore tail`` and the demo.

Every record overwrites its item's entry unconditionally:

* INSERT / MODIFY with a ``NewImage``  -> ITEM (the new item, read TTL)
* REMOVE (TTL expiry included)       -> ABSENT (absent TTL)
* any other record with valid keys    -> TOMBSTONE (tombstone TTL): KEYS_ONLY and
  OLD_IMAGE views, unknown event names, images that cannot be encoded

Within a batch, the records of one item collapse to the last one in stream
order (list order: Lambda and the tailer deliver one shard's records in order).
If that one cache write fails, *every* record of that item in the batch is
reported in ``batchItemFailures``: Lambda restarts from the lowest one, and a
consumer that retries only the listed records still ends on the newest state.

A ``NewImage`` that cannot be cached (nested deeper than DynamoDB's 32 levels, or
not a well-formed item) is never stored as an ITEM: with valid keys the record
writes a TOMBSTONE (the item did change; its new state is unknown here).

The account and region of every key come from the record's ``eventSourceARN``.
Malformed records (no keys, no sequence number, an event source ARN that is not
a DynamoDB table's, or anything else that makes reading the record raise) are
logged at ERROR and skipped, never reported as failures:
a retry cannot fix them, and failing them would stall the shard until its retries
run out. Replaying records is harmless: applying a record again writes what it
wrote before, and replays come in stream order, so the last write wins again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from momento_botocore.backends.base import Backend, bulk_add, bulk_incr, bulk_set
from momento_botocore.config import MAX_TTL_SECONDS, CacheConfig, TableSettings
from momento_botocore.core.entries import EntryKind, encode_absent, encode_item, encode_tombstone
from momento_botocore.core.fastpath import cache_key, parse_table
from momento_botocore.core.queries import (
    generations_of_write,
    index_key_names_of,
    marker_key,
    random_generation,
)
from momento_botocore.core.reads import guard_horizon
from momento_botocore.core.writes import KeySchemas, KeySchemaUnknown

logger = logging.getLogger("momento_botocore.streams")

#: Event names DynamoDB Streams emits.
EVENT_NAMES = frozenset({"INSERT", "MODIFY", "REMOVE"})
#: How deep DynamoDB lets maps and lists nest; a deeper image is not DynamoDB's.
MAX_NESTING = 32
_MAX_LOGGED_PER_BATCH = 10
_MAX_REASON = 300  # characters of an error message kept in a log line


class MalformedRecordError(ValueError):
    """A stream record that cannot be turned into a cache write."""


@dataclass(frozen=True, slots=True)
class CacheWrite:
    """What one stream record asks of the cache: overwrite ``key`` with ``value``."""

    table: str
    key: str
    kind: EntryKind
    value: bytes
    ttl_seconds: float
    sequence_number: str
    note: str | None = None  # why a record that had to be guessed at became a TOMBSTONE
    #: Generations of the table's Query and Scan pages this record bumps (issue 13).
    generations: tuple[str, ...] = ()
    generation_ttl: float = 0.0


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A malformed record: logged, skipped, not retried."""

    sequence_number: str | None
    event_id: str | None
    reason: str


@dataclass
class BatchResult:
    """What one batch did. :meth:`response` is Lambda's partial batch response."""

    records: int = 0
    writes: int = 0  # cache writes that succeeded
    collapsed: int = 0  # records superseded by a later record of the same item
    ignored: int = 0  # records of tables outside the configuration
    kinds: dict[str, int] = field(default_factory=dict)  # successful writes by entry kind
    skipped: list[SkippedRecord] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # sequence numbers, in stream order

    def response(self) -> dict[str, list[dict[str, str]]]:
        return {"batchItemFailures": [{"itemIdentifier": number} for number in self.failed]}


#: Names of a table's index key attributes, by (account, region, table); None: unknown.
IndexNames = Callable[[str, str, str], "tuple[str, ...] | None"]
#: DynamoDB's DescribeTable answer for (account, region, table).
DescribeTable = Callable[[str, str, str], Mapping[str, Any]]


def plan_record(
    record: Mapping[str, Any],
    config: CacheConfig,
    settings_for: Callable[[str], TableSettings | None] | None = None,
    index_names: IndexNames | None = None,
) -> CacheWrite | None:
    """The cache write one record asks for, or None when its table is not cached.

    Pure (given pure arguments). Raises :class:`MalformedRecordError` when the record
    cannot be understood. ``settings_for`` (default ``config.settings_for``) may be a
    memo of it. ``index_names`` gives the key attributes of the table's indexes (the
    Query cache bumps their values' generations); without it, or when it answers
    None, a record bumps every index page of its table.
    """
    # type() before isinstance(): an isinstance() against an ABC costs ~0.5 us.
    if type(record) is not dict and not isinstance(record, Mapping):
        raise MalformedRecordError(f"a record must be a mapping, got {type(record).__name__}")
    change = record.get("dynamodb")
    if type(change) is not dict and not isinstance(change, Mapping):
        raise MalformedRecordError("no 'dynamodb' section")
    sequence_number = change.get("SequenceNumber")
    if not isinstance(sequence_number, str) or not sequence_number:
        raise MalformedRecordError("no dynamodb.SequenceNumber")
    source = record.get("eventSourceARN")
    if not isinstance(source, str):
        raise MalformedRecordError("no eventSourceARN (the stream's ARN)")
    try:
        account, region, table = parse_table(source, None)
    except ValueError as error:
        raise MalformedRecordError(f"eventSourceARN: {error}") from None
    if account is None:  # a plain name, not an ARN: the table's account is unknown
        raise MalformedRecordError(f"eventSourceARN is not an ARN: {source!r}")
    settings = (settings_for or config.settings_for)(table)
    if settings is None:
        return None
    keys = change.get("Keys")
    if (type(keys) is not dict and not isinstance(keys, Mapping)) or not keys:
        raise MalformedRecordError("no dynamodb.Keys")
    try:
        key = cache_key(
            account, region, table, keys, prefix=config.key_prefix, binary_text="base64"
        )
    except ValueError as error:
        raise MalformedRecordError(f"dynamodb.Keys: {error}") from None
    kind, value, ttl, note = _entry_for(record.get("eventName"), change, settings, config)
    generations = _generations_of(
        config, (account, region, table), record.get("eventName"), change, index_names
    )
    horizon = min(guard_horizon(config, settings), MAX_TTL_SECONDS)
    return CacheWrite(table, key, kind, value, ttl, sequence_number, note, generations, horizon)


def _generations_of(
    config: CacheConfig,
    where: tuple[str, str, str],
    event_name: Any,
    change: Mapping[str, Any],
    index_names: IndexNames | None,
) -> tuple[str, ...]:
    """The Query and Scan page generations a record bumps: those of its item's keys,
    and of its images' index key values (or the whole indexes' ``X``, when an image
    or the index key names are missing)."""
    account, region, table = where
    if not (config.pages_cached(table, "Query") or config.pages_cached(table, "Scan")):
        return ()
    names = None if index_names is None else index_names(account, region, table)
    images = [change.get(name) for name in ("OldImage", "NewImage")]
    values = [
        {name: image[name] for name in names or () if _is_key_value(image.get(name))}
        for image in images
        if isinstance(image, Mapping)
    ]
    # An image the event has and the record lacks (a KEYS_ONLY, NEW_IMAGE or
    # OLD_IMAGE view): the item's index key values are unknown.
    needed = _IMAGES_OF.get(event_name) if isinstance(event_name, str) else None
    complete = names is not None and (
        not names
        or (needed is not None and all(isinstance(change.get(i), Mapping) for i in needed))
    )
    try:
        return tuple(
            generations_of_write(
                account,
                region,
                table,
                [change["Keys"]],
                key_prefix=config.key_prefix,
                binary_text="base64",
                index_values=values,
                whole_indexes=not complete,
            )
        )
    except ValueError as error:
        raise MalformedRecordError(f"dynamodb.Keys or an image's index key: {error}") from None


_IMAGES_OF = {
    "INSERT": ("NewImage",),
    "MODIFY": ("OldImage", "NewImage"),
    "REMOVE": ("OldImage",),
}


def _is_key_value(value: Any) -> bool:
    """An attribute value an index key can have (S, N or B): other values keep the
    item out of the index."""
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in ("S", "N", "B")


def _entry_for(
    event_name: Any, change: Mapping[str, Any], settings: TableSettings, config: CacheConfig
) -> tuple[EntryKind, bytes, float, str | None]:
    tombstone = (EntryKind.TOMBSTONE, encode_tombstone(), config.tombstone_ttl_seconds)
    if event_name == "REMOVE":
        return EntryKind.ABSENT, encode_absent(), settings.absent_ttl, None
    if event_name not in EVENT_NAMES:
        return (*tombstone, f"unknown eventName {event_name!r}")
    image = change.get("NewImage")
    if image is None:
        return (*tombstone, None)  # KEYS_ONLY or OLD_IMAGE view: the new state is not here
    try:
        if isinstance(image, Mapping) and _nested_too_deep(image):
            return (*tombstone, f"NewImage nests deeper than {MAX_NESTING} levels")
        return EntryKind.ITEM, encode_item(image), settings.ttl, None
    except Exception as error:  # RecursionError included: never out of the handler
        return (*tombstone, f"NewImage cannot be cached: {_reason(error)}")


def _nested_too_deep(image: Mapping[str, Any]) -> bool:
    """True when maps and lists in ``image`` nest deeper than DynamoDB allows.
    Iterative, so any depth is safe; shapes it does not know are encode_item's to judge."""
    stack = [(value, 1) for value in image.values()]
    while stack:
        value, depth = stack.pop()
        if not isinstance(value, Mapping) or len(value) != 1:
            continue
        ((tag, raw),) = value.items()
        if tag == "M" and isinstance(raw, Mapping):
            children: Iterable[Any] = raw.values()
        elif tag == "L" and isinstance(raw, list):
            children = raw
        else:
            continue
        if depth > MAX_NESTING:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _reason(error: BaseException) -> str:
    """``error`` for a log line: its type, and its message cut short."""
    try:
        text = str(error)
    except Exception:  # a message that cannot even be formatted
        text = ""
    if len(text) > _MAX_REASON:
        text = text[:_MAX_REASON] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _skip_reason(error: Exception) -> str:
    """Why a record was skipped: a MalformedRecordError says it; anything else is
    a record this module could not read at all."""
    if isinstance(error, MalformedRecordError):
        return str(error)
    return f"cannot be read: {_reason(error)}"


def _identity(record: Any) -> tuple[str | None, str | None]:
    """(sequence number, event id) of a record, as far as it has them."""
    if not isinstance(record, Mapping):
        return None, None
    try:
        change = record.get("dynamodb")
        number = change.get("SequenceNumber") if isinstance(change, Mapping) else None
        event_id = record.get("eventID")
    except Exception:  # a mapping that fails when read
        return None, None
    return (
        number if isinstance(number, str) else None,
        event_id if isinstance(event_id, str) else None,
    )


class StreamInvalidator:
    """Applies DynamoDB Streams records to a cache. Callable as a Lambda handler.

    Thread-safe as long as the backend is.
    """

    def __init__(
        self,
        config: CacheConfig,
        backend: Backend,
        *,
        describe_table: DescribeTable | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self._settings: dict[str, TableSettings | None] = {}
        self._describe_table = describe_table
        #: Index key attribute names per table, learned once (reused: a names memo).
        self._index_names = KeySchemas()

    def _index_names_of(self, account: str, region: str, table: str) -> tuple[str, ...] | None:
        """The key attributes of the table's indexes, asked of DynamoDB once per table;
        None when there is no way to ask or asking failed (retried after a minute)."""
        describe = self._describe_table
        if describe is None:
            return None
        try:
            return self._index_names.names(
                region,
                table,
                lambda: index_key_names_of(describe(account, region, table)),
                account=account,
            )
        except KeySchemaUnknown as error:
            logger.warning(
                "momento-botocore: the index keys of table %s are unknown (%s): its "
                "records make every index query of the table fresh",
                table,
                error,
            )
            return None

    def _settings_for(self, table: str) -> TableSettings | None:
        """``config.settings_for`` (glob matching), once per table."""
        try:
            return self._settings[table]
        except KeyError:
            settings = self._settings[table] = self.config.settings_for(table)
            return settings

    def __call__(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        """Lambda entry point: ``{"Records": [...]}`` -> partial batch response."""
        records = event.get("Records") if isinstance(event, Mapping) else None
        if not isinstance(records, list):
            raise MalformedRecordError(
                "the event has no 'Records' list: not a DynamoDB Streams event"
            )
        return self.process(records).response()

    def process(self, records: Iterable[Any]) -> BatchResult:
        """Apply a batch of records (in stream order); never raises for one bad record."""
        records = list(records)
        result = BatchResult()
        # item key -> (the item's last write, sequence numbers of all its records)
        latest: dict[str, tuple[CacheWrite, list[str]]] = {}
        for record in records:
            result.records += 1
            try:
                write = plan_record(record, self.config, self._settings_for, self._index_names_of)
            except Exception as error:
                number, event_id = _identity(record)
                result.skipped.append(SkippedRecord(number, event_id, _skip_reason(error)))
                continue
            if write is None:
                result.ignored += 1
                continue
            if write.note is not None:
                logger.warning(
                    "momento-botocore: stream record %s of table %s: %s; wrote a TOMBSTONE",
                    write.sequence_number,
                    write.table,
                    write.note,
                )
            previous = latest.pop(write.key, None)  # re-inserted: dict order = last record order
            numbers = [*previous[1], write.sequence_number] if previous else [write.sequence_number]
            if previous is not None:
                result.collapsed += 1
                # The earlier records' images may name index partitions the last does not.
                merged = dict.fromkeys((*previous[0].generations, *write.generations))
                write = replace(write, generations=tuple(merged))
            latest[write.key] = (write, numbers)
        self._log_skipped(result.skipped)
        failures: list[tuple[CacheWrite, BaseException]] = []
        failed_numbers: set[str] = set()
        # One bulk write for the batch: a stalled cache costs about one deadline.
        written = bulk_set(
            self.backend,
            [(write.key, write.value, write.ttl_seconds) for write, _ in latest.values()],
        )
        for (write, numbers), failed in zip(latest.values(), written, strict=True):
            if failed is not None:
                failures.append((write, failed))
                failed_numbers.update(numbers)
                continue
            result.writes += 1
            result.kinds[write.kind.name] = result.kinds.get(write.kind.name, 0) + 1
        for write, bump_error in self._bump(latest.values()):
            failures.append((write, bump_error))  # retried: the pages may be stale
            failed_numbers.update(latest[write.key][1])
        self._wait_published()
        if failures:
            result.failed = self._in_stream_order(records, failed_numbers)
            first, first_error = failures[0]
            logger.warning(
                "momento-botocore: %d cache write(s) failed, %d record(s) reported for retry; "
                "first: table %s record %s: %s: %s",
                len(failures),
                len(result.failed),
                first.table,
                first.sequence_number,
                type(first_error).__name__,
                first_error,
            )
        return result

    def _bump(
        self, writes: Iterable[tuple[CacheWrite, list[str]]]
    ) -> list[tuple[CacheWrite, BaseException]]:
        """Bump the page generations of the batch's items (each once): started at a
        random value when missing, as the read path does. The writes whose bump failed
        (their records are reported for retry: never silently lost)."""
        bumps: dict[str, tuple[float, list[CacheWrite]]] = {}
        for write, _ in writes:
            for generation in write.generations:
                bumps.setdefault(generation, (write.generation_ttl, []))[1].append(write)
        if not bumps:
            return []
        # As the write path does: the "written lately" markers, the random starts, the
        # bumps (core/queries.py). A marker or bump that fails fails its records.
        marker = (encode_tombstone(), self.config.tombstone_ttl_seconds)
        marked = bulk_set(self.backend, [(marker_key(key), *marker) for key in bumps])
        bulk_add(
            self.backend,
            [(key, random_generation(), ttl) for key, (ttl, _) in bumps.items()],
        )
        outcomes = bulk_incr(self.backend, [(key, ttl) for key, (ttl, _) in bumps.items()])
        failed: dict[str, tuple[CacheWrite, BaseException]] = {}
        for (_, (_, bumped_by)), refused, outcome in zip(
            bumps.items(), marked, outcomes, strict=True
        ):
            error = outcome if isinstance(outcome, Exception) else refused
            if error is not None:
                for write in bumped_by:
                    failed.setdefault(write.key, (write, error))
        return list(failed.values())

    def _wait_published(self) -> None:
        """A backend that publishes invalidations (the near cache's) has published the
        batch's before the handler returns: a frozen Lambda container publishes nothing.
        What is not published yet stays queued, and is retried."""
        wait = getattr(self.backend, "wait_published", None)
        if wait is not None and not wait():
            logger.warning(
                "momento-botocore: invalidations of this batch are not published yet "
                "(near caches keep their entries for at most their TTL); retried later"
            )

    def apply_record(self, record: Any) -> CacheWrite | None:
        """Apply one record. For per-record frameworks (Powertools): raises when the
        cache write fails so the framework reports the record; malformed records
        are logged and skipped. Returns the write made, or None."""
        if not isinstance(record, Mapping):
            raw = getattr(record, "raw_event", None)
            if not isinstance(raw, Mapping):
                raise TypeError(
                    "pass the raw record dict or Powertools' DynamoDBRecord data class "
                    f"(BatchProcessor without model=), got {type(record).__name__}"
                )
            record = raw
        try:
            write = plan_record(record, self.config, self._settings_for, self._index_names_of)
        except Exception as error:
            number, event_id = _identity(record)
            self._log_skipped([SkippedRecord(number, event_id, _skip_reason(error))])
            return None
        if write is None:
            return None
        self.backend.set(write.key, write.value, write.ttl_seconds)
        for _, bump_error in self._bump([(write, [write.sequence_number])]):
            raise bump_error  # the framework reports the record: retried, never lost
        self._wait_published()
        return write

    @staticmethod
    def _in_stream_order(records: list[Any], numbers: set[str]) -> list[str]:
        ordered: list[str] = []
        for record in records:
            number, _ = _identity(record)
            if number in numbers and number not in ordered:
                ordered.append(number)
        return ordered

    @staticmethod
    def _log_skipped(skipped: list[SkippedRecord]) -> None:
        for entry in skipped[:_MAX_LOGGED_PER_BATCH]:
            logger.error(
                "momento-botocore: skipped malformed stream record (sequence number %s, "
                "eventID %s): %s",
                entry.sequence_number,
                entry.event_id,
                entry.reason,
            )
        if len(skipped) > _MAX_LOGGED_PER_BATCH:
            logger.error(
                "momento-botocore: ... and %d more malformed records in this batch",
                len(skipped) - _MAX_LOGGED_PER_BATCH,
            )


def make_handler(
    config: CacheConfig | None = None,
    *,
    backend: Backend,
    describe_table: DescribeTable | None = None,
) -> StreamInvalidator:
    """A handler bound to ``config`` (default: from the environment) and ``backend`` (the
    same backend object a ``register()`` call uses, or one built by the caller).

    ``describe_table(account, region, table)`` returns DynamoDB's DescribeTable answer
    (see :func:`describe_with_boto3`): with it, the Query cache keeps the index pages of
    partitions a record does not touch (it learns the index keys once per table).
    """
    if config is None:
        config = CacheConfig.from_env()
    return StreamInvalidator(config, backend, describe_table=describe_table)


def describe_with_boto3(endpoint_url: str | None = None, **client_options: Any) -> DescribeTable:
    """A ``describe_table`` that asks DynamoDB with a boto3 client per region (made on
    first use, 2 s timeouts, one attempt)."""
    clients: dict[str, Any] = {}

    def describe(account: str, region: str, table: str) -> Mapping[str, Any]:
        client = clients.get(region)
        if client is None:
            import boto3
            from botocore.config import Config

            timeouts = Config(connect_timeout=2, read_timeout=2, retries={"total_max_attempts": 1})
            client = clients[region] = boto3.client(
                "dynamodb",
                region_name=region,
                endpoint_url=endpoint_url,
                config=timeouts,
                **client_options,
            )
        arn = f"arn:aws:dynamodb:{region}:{account}:table/{table}"
        # An ARN names the table in its account; a plain name serves older endpoints.
        try:
            answer: Mapping[str, Any] = client.describe_table(TableName=arn)
        except client.exceptions.ClientError:
            answer = client.describe_table(TableName=table)
        return answer

    return describe


# The Lambda entry points build their backend from the environment, so they live in
# momento_botocore.stream_lambda; these names stay for the handler string deployed
# functions use (``momento_botocore.streams.handler``) and for older imports.


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """The Lambda handler ``momento_botocore.streams.handler``, configured from the
    environment: :func:`momento_botocore.stream_lambda.handler`."""
    from momento_botocore import stream_lambda

    return stream_lambda.handler(event, context)


def record_handler(record: Any) -> CacheWrite | None:
    """A Powertools record handler configured from the environment:
    :func:`momento_botocore.stream_lambda.record_handler`."""
    from momento_botocore import stream_lambda

    return stream_lambda.record_handler(record)
