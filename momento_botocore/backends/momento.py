"""Momento Cache through the official ``momento`` SDK (sync ``CacheClient``).

The only module that knows the SDK. SDK calls never raise: each one returns a
response object, and every response is checked here. An ``Error`` response
raises :class:`BackendError` (the read hooks then treat the call as a miss, the
stream invalidator reports the record as failed); a miss is None.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from momento import CacheClient, Configurations, CredentialProvider
from momento.config import Configuration
from momento.config.transport.transport_strategy import (
    StaticGrpcConfiguration,
    StaticTransportStrategy,
)
from momento.errors import MomentoErrorCode
from momento.responses import CacheDelete, CacheGet, CacheSet, CacheSetIfNotExists
from momento.retry import DefaultEligibilityStrategy, RetryableProps, RetryStrategy

from momento_botocore import environment as env
from momento_botocore.backends.base import UNREADABLE, BackendError, Entry
from momento_botocore.config import (
    DEFAULT_MOMENTO_REQUEST_TIMEOUT,
    MAX_TTL_SECONDS,
    CacheConfig,
    ConfigurationError,
    parse_momento_endpoint,
)
from momento_botocore.log import logger

#: Larger entries (key and value) are not written. Momento's item limit is 5 MB; the
#: headroom keeps a rejected write (which would count as a failure) out of reach.
DEFAULT_MAX_ITEM_BYTES = 4 * 1024 * 1024
#: Only used when a call gives no TTL, which this backend never does.
_DEFAULT_TTL = timedelta(seconds=60)
#: Calls of one ``get_many``, ``add_many`` or ``set_many`` in flight at once (the
#: calling thread and pool threads).
DEFAULT_MAX_CONCURRENCY = 16
T = TypeVar("T")
R = TypeVar("R")


class _DropRequestFailureWarnings(logging.Filter):
    """The SDK logs a WARNING for every failed request; during an outage that is one
    line per cache call. Our callers already report failures, rate-limited."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.WARNING
            and record.module == "_scs_data_client"
            and "failed with exception" in record.getMessage()
        )


_SDK_FILTER = _DropRequestFailureWarnings()


def _quiet_sdk_request_warnings() -> None:
    sdk_logger = logging.getLogger("momentosdk")
    if _SDK_FILTER not in sdk_logger.filters:
        sdk_logger.addFilter(_SDK_FILTER)


class _OneRetryWithinDeadline(RetryStrategy):
    """Retry an idempotent call once, at once, on INTERNAL/UNAVAILABLE, and only in
    the time left of the call's deadline: the deadline bounds the whole call."""

    _eligibility = DefaultEligibilityStrategy()

    def determine_when_to_retry(self, props: RetryableProps) -> float | None:
        if props.attempt_number > 1 or not self._eligibility.is_eligible_for_retry(props):
            return None
        deadline = props.overall_deadline
        if deadline is not None and deadline <= datetime.now():
            return None
        return 0.0

    def calculate_retry_deadline(self, overall_deadline: datetime) -> float | None:
        return max(0.001, (overall_deadline - datetime.now()).total_seconds())


def base_configuration(environ: Mapping[str, str] | None = None) -> Configuration:
    """The SDK's preset: Lambda's (no idle keepalive pings) in AWS Lambda, else in-region."""
    environ = os.environ if environ is None else environ
    if environ.get(env.LAMBDA_FUNCTION_NAME):
        return Configurations.Lambda.latest()
    return Configurations.InRegion.Default.latest()


def sdk_configuration(
    request_timeout: float = DEFAULT_MOMENTO_REQUEST_TIMEOUT,
    environ: Mapping[str, str] | None = None,
) -> Configuration:
    """The preset's transport settings with our deadline and retry policy.

    Built field by field: the SDK's ``with_client_timeout`` drops the preset's
    keepalive settings (momento 1.29.1), which matter in Lambda.
    """
    preset = base_configuration(environ).get_transport_strategy().get_grpc_configuration()
    permit = preset.get_keepalive_permit_without_calls()
    transport = StaticTransportStrategy(
        StaticGrpcConfiguration(
            deadline=timedelta(seconds=request_timeout),
            root_certificates_pem=preset.get_root_certificates_pem(),
            max_send_message_length=preset.get_max_send_message_length(),
            max_receive_message_length=preset.get_max_receive_message_length(),
            keepalive_permit_without_calls=None if permit is None else bool(permit),
            keepalive_time=preset.get_keepalive_time(),
            keepalive_timeout=preset.get_keepalive_timeout(),
        )
    )
    return Configuration(transport, _OneRetryWithinDeadline())


def credential_provider_for(
    api_key: str | None = None,
    endpoint: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Any:
    """A credential provider from an API key (argument, else ``MOMENTO_API_KEY``).

    v2 API keys need an endpoint (argument, else ``MOMENTO_ENDPOINT``); older keys
    carry their endpoint. An ``http://HOST:PORT`` endpoint is a local server, reached
    in plaintext with no API key. Problems raise :class:`ConfigurationError`.
    """
    environ = os.environ if environ is None else environ
    api_key = api_key or environ.get(env.MOMENTO_API_KEY, "").strip() or None
    endpoint = endpoint or environ.get(env.MOMENTO_ENDPOINT, "").strip() or None
    if endpoint:
        endpoint, local_port = parse_momento_endpoint(endpoint)
        if local_port is not None:
            return CredentialProvider.for_momento_local(endpoint, local_port)
    if not api_key:
        raise ConfigurationError(
            f"the momento backend needs an API key: set {env.MOMENTO_API_KEY} "
            "(or pass momento_api_key=)"
        )
    if endpoint:
        try:
            return CredentialProvider.from_api_key_v2(api_key, endpoint)
        except Exception:  # the SDK raises KeyError, TypeError... on odd keys
            pass  # not a v2 key: perhaps an older one, which carries its own endpoint
    try:
        # Keys from before v2 carry their endpoints; this parses them without the
        # deprecated from_string/from_environment_variable.
        return CredentialProvider.from_disposable_token(api_key)
    except Exception as error:
        hint = "" if endpoint else f" (v2 API keys also need {env.MOMENTO_ENDPOINT})"
        raise ConfigurationError(
            f"{env.MOMENTO_API_KEY} is not a usable Momento API key{hint}: "
            f"{_key_problem(error, api_key)}"
        ) from None


def _key_problem(error: Exception, api_key: str) -> str:
    """What is wrong with an API key, never the key itself (nor what it decodes to)."""
    if isinstance(error, KeyError):
        return f"it has no {error.args[0]!r} field" if error.args else "a field is missing"
    if isinstance(error, (TypeError, AttributeError, IndexError)):
        return "it does not decode to a JSON object with the fields of a Momento key"
    message = str(error)
    for secret in {api_key, api_key.strip()}:
        if secret:
            message = message.replace(secret, "<the key>")
    return message or type(error).__name__


class MomentoBackend:
    """The production backend: entries in a Momento cache.

    ``credential_provider`` (a ``momento.CredentialProvider``) wins over ``api_key``
    and ``endpoint``, which win over ``MOMENTO_API_KEY`` / ``MOMENTO_ENDPOINT``.
    ``request_timeout`` is the deadline of each call, retries included.
    Entries larger than ``max_item_bytes`` are not written: ``add`` returns False,
    ``set`` deletes the key instead (so no older value outlives the write), and
    :attr:`oversized` counts them. A stored value over the SDK's receive limit is
    returned as :data:`~momento_botocore.backends.base.UNREADABLE` (garbage, deleted by
    the reader), not as an error; :attr:`unreadable` counts them. ``quiet_sdk_logs``
    drops the SDK's per-request failure warnings (logger ``momentosdk``): the read
    path reports failures itself, at most once a minute per kind.

    ``get_many`` looks keys up concurrently on the one SDK client, at most
    ``max_concurrency`` at a time: the calling thread and a pool of
    ``max_concurrency - 1`` threads, started on first use and stopped by ``close()``.
    """

    def __init__(
        self,
        cache_name: str,
        *,
        credential_provider: Any = None,
        api_key: str | None = None,
        endpoint: str | None = None,
        request_timeout: float = DEFAULT_MOMENTO_REQUEST_TIMEOUT,
        max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
        configuration: Configuration | None = None,
        quiet_sdk_logs: bool = True,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    ) -> None:
        if not isinstance(cache_name, str) or not cache_name.strip():
            raise ConfigurationError(
                f"the momento backend needs a cache name: set {env.MOMENTO_CACHE_NAME}"
            )
        if not request_timeout > 0:
            raise ConfigurationError(f"request_timeout must be positive, got {request_timeout}")
        if (
            isinstance(max_concurrency, bool)
            or not isinstance(max_concurrency, int)
            or max_concurrency < 1
        ):
            raise ConfigurationError(
                f"max_concurrency must be a whole number of at least 1, got {max_concurrency!r}"
            )
        self.cache_name = cache_name
        self.max_item_bytes = max_item_bytes
        self.oversized = 0
        self.unreadable = 0
        if quiet_sdk_logs:
            _quiet_sdk_request_warnings()
        provider = credential_provider or credential_provider_for(api_key, endpoint)
        self._identity = ("momento", _endpoint_of(provider, endpoint), cache_name)
        configuration = configuration or sdk_configuration(request_timeout)
        self.max_concurrency = max_concurrency
        # Connects lazily: nothing here waits on the network.
        self._client = CacheClient(configuration, provider, _DEFAULT_TTL)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_config(cls, config: CacheConfig, *, credential_provider: Any = None) -> MomentoBackend:
        cache_name = config.momento_cache_name or os.environ.get(env.MOMENTO_CACHE_NAME, "").strip()
        if not cache_name:
            raise ConfigurationError(
                f"the momento backend needs a cache name: set {env.MOMENTO_CACHE_NAME} "
                "(or momento_cache_name=)"
            )
        return cls(
            cache_name,
            credential_provider=credential_provider,
            api_key=config.momento_api_key,
            endpoint=config.momento_endpoint,
            request_timeout=config.momento_request_timeout,
        )

    def cache_identity(self) -> Hashable:
        """``("momento", endpoint, cache_name)``: equal for every backend on the same
        cache (a process keeps one memory of unwritten tombstones per cache)."""
        return self._identity

    def get(self, key: str) -> bytes | None:
        response = self._client.get(self.cache_name, key)
        if isinstance(response, CacheGet.Hit):
            return bytes(response.value_bytes)
        if isinstance(response, CacheGet.Miss):
            return None
        if _over_receive_limit(response):
            # Stored by another writer (or a larger configuration): garbage to us, and
            # the cache is fine; the reader deletes it.
            self.unreadable += 1
            return UNREADABLE
        raise _error("get", response)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """``get`` for every key, concurrently; raises :class:`BackendError` if any
        lookup failed.

        Each lookup has the deadline ``get`` has. After the first failure no other
        lookup starts, and the call returns (raises) once the lookups in flight have
        ended, each within its deadline: a stalled server costs about one deadline.
        Lookups that are slow but within the deadline are not failures: the call
        takes as long as they need, in waves of ``max_concurrency``.
        """
        if len(keys) <= 1:
            return [self.get(key) for key in keys]
        batch = _Batch("get_many", keys, self.get)
        self._run(batch)
        return batch.values()

    def add_many(self, entries: Sequence[Entry]) -> list[bool | Exception]:
        """``add`` for every entry, concurrently, as ``get_many`` looks keys up: a
        stalled server costs about one deadline. Per entry: True (stored), False
        (a value was there, or too large), or the error that kept it out (entries
        not tried after the first failure get a :class:`BackendError`)."""
        # A repeated key: only its first entry is sent (the others could not be
        # stored after it), as add() one by one would do.
        return self._write_many("add_many", entries, self.add, first_wins=True)

    def set_many(self, entries: Sequence[Entry]) -> list[Exception | None]:
        """``set`` for every entry, concurrently, as :meth:`add_many`: None where
        written, else the error that kept it out."""
        # A repeated key: only its last entry is sent (what set() one by one leaves);
        # the earlier ones share its outcome.
        return self._write_many("set_many", entries, self.set, first_wins=False)

    def _write_many(
        self,
        name: str,
        entries: Sequence[Entry],
        write: Callable[[str, bytes, float], R],
        *,
        first_wins: bool,
    ) -> list[R | Exception]:
        """``write`` every entry concurrently, one call per key (concurrent calls of
        one key would race): its first entry's when ``first_wins``, else its last's."""
        for _, _, ttl_seconds in entries:
            _ttl(ttl_seconds)  # a bad TTL raises before anything is written
        chosen: dict[str, int] = {}
        for index, (key, _, _) in enumerate(entries):
            if not first_wins or key not in chosen:
                chosen[key] = index
        sent = sorted(chosen.values())
        batch = _Batch(name, [entries[i] for i in sent], lambda entry: write(*entry))
        self._run(batch)
        outcomes = dict(zip(sent, batch.outcomes(), strict=True))
        results: list[R | Exception] = []
        for index, (key, _, _) in enumerate(entries):
            outcome = outcomes[chosen[key]]
            # A later entry of a key whose first was stored (or refused) is not stored.
            repeated = first_wins and index != chosen[key] and not isinstance(outcome, Exception)
            results.append(False if repeated else outcome)  # type: ignore[arg-type]
        return results

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        if self._too_large(key, value):
            return False
        response = self._client.set_if_not_exists(self.cache_name, key, value, _ttl(ttl_seconds))
        if isinstance(response, CacheSetIfNotExists.Stored):
            return True
        if isinstance(response, CacheSetIfNotExists.NotStored):
            return False
        raise _error("add", response)

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        if self._too_large(key, value):
            self.delete(key)
            return
        response = self._client.set(self.cache_name, key, value, _ttl(ttl_seconds))
        if not isinstance(response, CacheSet.Success):
            raise _error("set", response)

    def delete(self, key: str) -> None:
        response = self._client.delete(self.cache_name, key)
        if not isinstance(response, CacheDelete.Success):
            raise _error("delete", response)

    def close(self) -> None:
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            # Lookups in flight end within their deadline; none starts on a closed client.
            pool.shutdown(wait=True, cancel_futures=True)
        self._client.__exit__(None, None, None)

    def _run(self, batch: _Batch[Any, Any]) -> None:
        """Work ``batch`` off on the calling thread and up to ``max_concurrency - 1``
        pool threads; returns when no call of it is in flight any more."""
        helpers: list[Future[None]] = []
        wanted = min(self.max_concurrency, len(batch)) - 1
        if wanted > 0:
            try:
                pool = self._batch_pool()
                for _ in range(wanted):
                    helpers.append(pool.submit(batch.work))
            except RuntimeError as error:  # closed, or the interpreter is exiting
                batch.fail(BackendError(f"momento {batch.name} failed: {error}"))
        batch.work()  # the calling thread works too: progress even if the pool is busy
        for helper in helpers:
            helper.cancel()  # not started: the items are all taken (or given up)
        for helper in helpers:
            if not helper.cancelled():
                helper.result()  # ends with the call it is making, if any

    def _batch_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._closed:
                raise RuntimeError("the backend is closed")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.max_concurrency - 1, thread_name_prefix="momento-botocore-get"
                )
            return self._pool

    def _too_large(self, key: str, value: bytes) -> bool:
        if len(key.encode()) + len(value) <= self.max_item_bytes:
            return False
        self.oversized += 1
        logger.debug("momento-botocore: entry of %d bytes not written (too large)", len(value))
        return True


class _Batch(Generic[T, R]):
    """The items of one ``get_many``, ``add_many`` or ``set_many`` call, shared by the
    threads working on them.

    The SDK's sync client may be used from many threads (read in momento 1.29.1):
    each call is one unary call on the client's one gRPC channel (channels are
    thread-safe); its interceptors keep no per-call state (only a "headers sent
    once" flag, whose race at worst sends the agent header twice), and it has one
    data client, so its round-robin index never changes.
    """

    def __init__(self, name: str, items: Sequence[T], call: Callable[[T], R]) -> None:
        self.name = name
        self._items = items
        self._call = call
        self._lock = threading.Lock()
        self._next = 0
        self._done: dict[int, R] = {}
        self._failed: dict[int, Exception] = {}
        self._errors: list[Exception] = []
        self._given_up = 0

    def __len__(self) -> int:
        return len(self._items)

    def work(self) -> None:
        """Make calls until no item is left or one call failed."""
        while (index := self._take()) is not None:
            try:
                self._done[index] = self._call(self._items[index])
            except Exception as error:
                self.fail(error, index)

    def fail(self, error: Exception, index: int | None = None) -> None:
        with self._lock:
            self._errors.append(error)
            if index is not None:
                self._failed[index] = error

    def values(self) -> list[R | None]:
        """Every item's answer; raises :class:`BackendError` if any call failed."""
        if self._errors:
            raise self._summary("looked up") from self._errors[0]
        done = self._done
        return [done.get(index) for index in range(len(self._items))]

    def outcomes(self) -> list[R | Exception]:
        """Per item: its answer, its call's error, or (not tried) a summary error."""
        results: list[R | Exception] = []
        untried: BackendError | None = None
        for index in range(len(self._items)):
            if index in self._done:
                results.append(self._done[index])
            elif index in self._failed:
                results.append(self._failed[index])
            else:
                untried = untried or self._summary("tried")
                results.append(untried)
        return results

    def _summary(self, verb: str) -> BackendError:
        first = self._errors[0]
        detail = str(first) if isinstance(first, BackendError) else f"momento: {first!r}"
        return BackendError(
            f"{detail} ({self.name}: {len(self._errors)} failed, {self._given_up} not "
            f"{verb}, of {len(self._items)} keys)"
        )

    def _take(self) -> int | None:
        with self._lock:
            index = self._next
            if index >= len(self._items):
                return None
            if self._errors:
                self._given_up = len(self._items) - index
                self._next = len(self._items)
                return None
            self._next = index + 1
            return index


def _endpoint_of(provider: Any, endpoint: str | None) -> str:
    """The cache endpoint the SDK client connects to (host:port), as best known."""
    host = getattr(provider, "cache_endpoint", None)
    if isinstance(host, str) and host:
        port = getattr(provider, "port", None)
        return f"{host}:{port}" if isinstance(port, int) else host
    return endpoint or "default"


def _ttl(ttl_seconds: float) -> timedelta:
    if not 0 < ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be in (0, {MAX_TTL_SECONDS}], got {ttl_seconds}")
    # Momento counts TTLs in whole milliseconds; never round a positive TTL down to 0.
    return timedelta(milliseconds=max(1, round(ttl_seconds * 1000)))


def _over_receive_limit(response: Any) -> bool:
    """An error answer saying the value was larger than this client may receive (gRPC
    RESOURCE_EXHAUSTED raised by the client itself, not a throttle by the service)."""
    return getattr(response, "error_code", None) is MomentoErrorCode.LIMIT_EXCEEDED_ERROR and (
        "Received message larger than max" in str(getattr(response, "message", ""))
    )


def _error(operation: str, response: Any) -> BackendError:
    code = getattr(response, "error_code", None)
    message = getattr(response, "message", None) or repr(response)
    name = getattr(code, "name", "UNEXPECTED_RESPONSE")
    return BackendError(f"momento {operation} failed: {name}: {message}")
