"""What the sync and the async Momento backends share: settings, SDK configuration,
credentials, the reading of SDK responses, the work queue of a batch, and the
protocol's ``GetBatch`` call without its I/O.

Nothing here waits on the network: :mod:`~momento_botocore.backends.momento` (the sync
``CacheClient``) and :mod:`~momento_botocore.backends.momento_async` (the
``CacheClientAsync``) make the calls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import grpc
from momento import Configurations, CredentialProvider
from momento.config import Configuration
from momento.config.transport.transport_strategy import (
    StaticGrpcConfiguration,
    StaticTransportStrategy,
)
from momento.errors import MomentoErrorCode, convert_error
from momento.internal.services import Service
from momento.responses import (
    CacheDelete,
    CacheGet,
    CacheIncrement,
    CacheSet,
    CacheSetIfNotExists,
)
from momento.retry import DefaultEligibilityStrategy, RetryableProps, RetryStrategy
from momento_wire_types import cacheclient_pb2 as pb

from momento_botocore import environment as env
from momento_botocore.backends.base import (
    UNREADABLE,
    BackendError,
    CounterEntry,
    Entry,
    NotACounterError,
)
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
#: Only used when a call gives no TTL, which these backends never do.
DEFAULT_TTL = timedelta(seconds=60)
#: Calls of one ``get_many``, ``add_many`` or ``set_many`` in flight at once.
DEFAULT_MAX_CONCURRENCY = 16
#: Keys asked for in one ``GetBatch`` call; a longer ``get_many`` makes several.
GET_BATCH_MAX_KEYS = 100
#: The protocol's method, as the SDK's retry eligibility names it.
GET_BATCH_METHOD = "/cache_client.Scs/GetBatch"
#: gRPC's default message limit in the SDK (momento 1.29.1), when a preset sets none.
_SDK_MAX_MESSAGE_BYTES = 5_243_000
T = TypeVar("T")
R = TypeVar("R")


# The SDK's logs and configuration ----------------------------------------------------


class _DropRequestFailureWarnings(logging.Filter):
    """The SDK logs a WARNING for every failed request; during an outage that is one
    line per cache call. Our callers already report failures, rate-limited."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.WARNING
            and record.module == "_scs_data_client"  # the sync and the aio client alike
            and "failed with exception" in record.getMessage()
        )


_SDK_FILTER = _DropRequestFailureWarnings()


def quiet_sdk_request_warnings() -> None:
    sdk_logger = logging.getLogger("momentosdk")
    if _SDK_FILTER not in sdk_logger.filters:
        sdk_logger.addFilter(_SDK_FILTER)


class OneRetryWithinDeadline(RetryStrategy):
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
    return Configuration(transport, OneRetryWithinDeadline())


# Credentials ---------------------------------------------------------------------------


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


# Settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """A Momento backend's checked settings (the sync and the async backend take the
    same arguments, and name the same cache for the same ones)."""

    cache_name: str
    provider: Any
    configuration: Configuration
    identity: Hashable
    max_item_bytes: int
    max_concurrency: int

    @classmethod
    def checked(
        cls,
        cache_name: str,
        *,
        credential_provider: Any,
        api_key: str | None,
        endpoint: str | None,
        request_timeout: float,
        max_item_bytes: int,
        configuration: Configuration | None,
        quiet_sdk_logs: bool,
        max_concurrency: int,
    ) -> Settings:
        """Problems raise :class:`ConfigurationError`; nothing connects."""
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
        if quiet_sdk_logs:
            quiet_sdk_request_warnings()
        provider = credential_provider or credential_provider_for(api_key, endpoint)
        return cls(
            cache_name=cache_name,
            provider=provider,
            configuration=configuration or sdk_configuration(request_timeout),
            identity=("momento", _endpoint_of(provider, endpoint), cache_name),
            max_item_bytes=max_item_bytes,
            max_concurrency=max_concurrency,
        )

    @property
    def deadline(self) -> float:
        """Seconds a call may take, retries included."""
        grpc_config = self.configuration.get_transport_strategy().get_grpc_configuration()
        return float(grpc_config.get_deadline().total_seconds())

    @property
    def retry_strategy(self) -> RetryStrategy | None:
        return self.configuration.get_retry_strategy()


def cache_name_of(config: CacheConfig) -> str:
    """The cache a configuration names (``MOMENTO_CACHE_NAME`` when it names none)."""
    cache_name = config.momento_cache_name or os.environ.get(env.MOMENTO_CACHE_NAME, "").strip()
    if not cache_name:
        raise ConfigurationError(
            f"the momento backend needs a cache name: set {env.MOMENTO_CACHE_NAME} "
            "(or momento_cache_name=)"
        )
    return cache_name


def _endpoint_of(provider: Any, endpoint: str | None) -> str:
    """The cache endpoint the SDK client connects to (host:port), as best known."""
    host = getattr(provider, "cache_endpoint", None)
    if isinstance(host, str) and host:
        port = getattr(provider, "port", None)
        return f"{host}:{port}" if isinstance(port, int) else host
    return endpoint or "default"


# Reading the SDK's answers ----------------------------------------------------------------


def ttl(ttl_seconds: float) -> timedelta:
    if not 0 < ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be in (0, {MAX_TTL_SECONDS}], got {ttl_seconds}")
    # Momento counts TTLs in whole milliseconds; never round a positive TTL down to 0.
    return timedelta(milliseconds=max(1, round(ttl_seconds * 1000)))


def too_large(key: str, value: bytes, max_item_bytes: int) -> bool:
    """True (and logged) when the entry is over the item limit: not written."""
    if len(key.encode()) + len(value) <= max_item_bytes:
        return False
    logger.debug("momento-botocore: entry of %d bytes not written (too large)", len(value))
    return True


def get_answer(response: Any) -> bytes | None:
    """A ``get``'s value: the bytes, None for a miss, :data:`UNREADABLE` for a value over
    the receive limit (garbage to us, and the cache is fine: the reader deletes it).
    Raises :class:`BackendError` for an error."""
    if isinstance(response, CacheGet.Hit):
        return bytes(response.value_bytes)
    if isinstance(response, CacheGet.Miss):
        return None
    if _over_receive_limit(response):
        return UNREADABLE
    raise _error("get", response)


def add_answer(response: Any) -> bool:
    if isinstance(response, CacheSetIfNotExists.Stored):
        return True
    if isinstance(response, CacheSetIfNotExists.NotStored):
        return False
    raise _error("add", response)


def incr_answer(response: Any) -> int:
    """An ``increment``'s new value. FAILED_PRECONDITION (the value there is not a base
    10 integer, or the sum would leave 64 bits) raises :class:`NotACounterError`; any
    other error :class:`BackendError`."""
    if isinstance(response, CacheIncrement.Success):
        return int(response.value)
    if getattr(response, "error_code", None) is MomentoErrorCode.FAILED_PRECONDITION_ERROR:
        error = _error("incr", response)
        raise NotACounterError(str(error))
    raise _error("incr", response)


def incr_plan(entries: Sequence[CounterEntry]) -> list[CounterEntry]:
    """The entries of an ``incr_many``, each sent as is (a repeated key counts once per
    occurrence); a bad TTL raises before anything is counted."""
    for _, ttl_seconds in entries:
        ttl(ttl_seconds)
    return list(entries)


def check_set(response: Any) -> None:
    if not isinstance(response, CacheSet.Success):
        raise _error("set", response)


def check_delete(response: Any) -> None:
    if not isinstance(response, CacheDelete.Success):
        raise _error("delete", response)


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


def closed_error(operation: str) -> BackendError:
    return BackendError(f"momento {operation} failed: the backend is closed")


# Bulk writes: one call per key -----------------------------------------------------------


class WritePlan:
    """Which entries of a bulk write are sent: one call per key (concurrent calls of one
    key would race): its first entry's when ``first_wins`` (``add``: the others could
    not be stored after it), else its last's (``set``: what one by one leaves)."""

    def __init__(self, entries: Sequence[Entry], *, first_wins: bool) -> None:
        for _, _, ttl_seconds in entries:
            ttl(ttl_seconds)  # a bad TTL raises before anything is written
        chosen: dict[str, int] = {}
        for index, (key, _, _) in enumerate(entries):
            if not first_wins or key not in chosen:
                chosen[key] = index
        self._entries = entries
        self._chosen = chosen
        self._first_wins = first_wins
        self._sent = sorted(chosen.values())
        #: The entries to write, in order.
        self.sent: list[Entry] = [entries[i] for i in self._sent]

    def results(self, outcomes: Sequence[R | Exception]) -> list[R | Exception]:
        """Per entry (from the outcome of each sent entry): a repeated key shares its
        sent entry's outcome; with ``first_wins``, a later entry of a key whose first
        was stored (or refused) is not stored (False)."""
        by_index = dict(zip(self._sent, outcomes, strict=True))
        results: list[R | Exception] = []
        for index, (key, _, _) in enumerate(self._entries):
            outcome = by_index[self._chosen[key]]
            repeated = (
                self._first_wins
                and index != self._chosen[key]
                and not isinstance(outcome, Exception)
            )
            results.append(False if repeated else outcome)  # type: ignore[arg-type]
        return results


# The work queue of a batch -------------------------------------------------------------


class Batch(Generic[T, R]):
    """The items of one ``get_many``, ``add_many``, ``set_many`` or ``incr_many`` call,
    shared by the workers making their calls: threads (:meth:`work`) or tasks
    (:meth:`work_async`).

    After the first failure no other call starts; the calls in flight end within
    their deadline. The SDK's sync client may be used from many threads (read in
    momento 1.29.1): each call is one unary call on the client's one gRPC channel
    (channels are thread-safe); its interceptors keep no per-call state (only a
    "headers sent once" flag, whose race at worst sends the agent header twice), and
    it has one data client, so its round-robin index never changes.
    """

    def __init__(self, name: str, items: Sequence[T]) -> None:
        self.name = name
        self._items = items
        self._lock = threading.Lock()  # never held across an await
        self._next = 0
        self._done: dict[int, R] = {}
        self._failed: dict[int, Exception] = {}
        self._errors: list[Exception] = []
        self._given_up = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def first_error(self) -> Exception | None:
        return self._errors[0] if self._errors else None

    def work(self, call: Callable[[T], R]) -> None:
        """``call`` items until none is left or one call failed."""
        while (index := self._take()) is not None:
            try:
                self._done[index] = call(self._items[index])
            except Exception as error:
                self.fail(error, index)

    async def work_async(self, call: Callable[[T], Awaitable[R]]) -> None:
        """:meth:`work`, awaiting ``call``."""
        while (index := self._take()) is not None:
            try:
                self._done[index] = await call(self._items[index])
            except Exception as error:
                self.fail(error, index)

    async def run_async(self, call: Callable[[T], Awaitable[R]], concurrency: int) -> None:
        """Up to ``concurrency`` :meth:`work_async` tasks; returns once none is in flight.
        Cancelled, it cancels them (and waits for them) before it is."""
        workers = min(concurrency, len(self._items))
        if workers <= 1:
            await self.work_async(call)
            return
        tasks = [asyncio.ensure_future(self.work_async(call)) for _ in range(workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

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


def chunks(keys: Sequence[str], size: int = GET_BATCH_MAX_KEYS) -> list[Sequence[str]]:
    return [keys[start : start + size] for start in range(0, len(keys), size)]


# GetBatch: one call, one answer per key, streamed in the order of the keys ------------------


class GetBatchUnsupported(BackendError):
    """The server does not implement ``GetBatch`` (UNIMPLEMENTED): look keys up one by one."""


@dataclass(frozen=True)
class GetBatchRequest:
    """One ``GetBatch`` call to make: the request message and its timeout (seconds)."""

    message: Any
    timeout: float


class GetBatchLookup:
    """The values of ``keys`` by the protocol's ``GetBatch`` (the SDK has no method for
    it), without the I/O: a driver sends each :meth:`request`, feeds every streamed
    answer to :meth:`answer`, and ends the call with :meth:`ended` or :meth:`failed`.

    The service answers each key in turn, in the order of the keys (as Momento's other
    SDKs read it): Hit or Miss; anything else fails the lookup. The whole lookup, its
    retry and its continuations included, has one deadline (the SDK's per call), as
    one ``get`` has. A value over the receive limit breaks the stream at its key: that
    key is :data:`UNREADABLE` (as ``get`` answers it) and the keys after it are asked
    for again. A call failing with INTERNAL or UNAVAILABLE is retried as the SDK
    retries its calls (the configuration's retry strategy), for the keys not answered.
    """

    def __init__(
        self,
        keys: Sequence[str],
        *,
        deadline: float,
        retry_strategy: RetryStrategy | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = keys
        self.values: list[bytes | None] = []
        #: Values over the receive limit met (answered as UNREADABLE).
        self.unreadable = 0
        self._clock = clock
        self._ends_at = clock() + deadline
        self._overall_deadline = datetime.now() + timedelta(seconds=deadline)
        self._retry = retry_strategy
        self._attempt = 1
        self._answered_in_call = 0

    def request(self) -> GetBatchRequest | None:
        """The next call to make, or None when every key is answered."""
        if len(self.values) >= len(self.keys):
            return None
        left = self._ends_at - self._clock()
        if left <= 0:
            raise BackendError(
                "momento get_many failed: TIMEOUT_ERROR: the deadline passed with "
                f"{len(self.keys) - len(self.values)} of {len(self.keys)} keys not answered"
            )
        self._answered_in_call = 0
        items = [pb._GetRequest(cache_key=key.encode()) for key in self.keys[len(self.values) :]]
        return GetBatchRequest(pb._GetBatchRequest(items=items), left)

    def answer(self, response: Any) -> None:
        """One streamed answer: the value of the next key."""
        if len(self.values) >= len(self.keys):
            raise BackendError(
                f"momento get_many failed: GetBatch answered more than {len(self.keys)} keys"
            )
        result = response.result
        if result == pb.Hit:
            self.values.append(response.cache_body)
        elif result == pb.Miss:
            self.values.append(None)
        else:
            raise BackendError(
                f"momento get_many failed: UNKNOWN_ERROR: GetBatch answered {result!r} "
                f"for a key: {response.message!r}"
            )
        self._answered_in_call += 1

    def ended(self) -> None:
        """The call ended well: every key it asked for must be answered."""
        if len(self.values) < len(self.keys):
            raise BackendError(
                f"momento get_many failed: GetBatch answered {len(self.values)} of "
                f"{len(self.keys)} keys"
            )

    def failed(self, error: Exception) -> float:
        """The call failed: raises :class:`BackendError` (:class:`GetBatchUnsupported`
        when the server lacks the method), or returns the seconds to wait before the
        next :meth:`request` (a retry, or the rest after an unreadable value)."""
        code = error.code() if isinstance(error, grpc.RpcError) else None
        if code is grpc.StatusCode.UNIMPLEMENTED:
            raise GetBatchUnsupported(
                f"momento get_many failed: the server does not implement GetBatch: {error!r}"
            )
        response = CacheGet.Error(convert_error(error, Service.CACHE))
        if _over_receive_limit(response):
            self.values.append(UNREADABLE)
            self.unreadable += 1
            return 0.0
        wait = None
        if self._retry is not None and code is not None:
            wait = self._retry.determine_when_to_retry(
                RetryableProps(code, GET_BATCH_METHOD, self._attempt, self._overall_deadline)
            )
        if wait is None:
            raise _error("get_many", response)
        self._attempt += 1
        return float(wait)


def get_batch_metadata(cache_name: str, provider: Any) -> list[tuple[str, str]]:
    """What the SDK's interceptors and ``make_metadata`` put on each data call."""
    return [("cache", cache_name), ("authorization", str(provider.auth_token or ""))]


def channel_arguments(settings: Settings) -> tuple[str, bool, list[tuple[str, Any]]]:
    """(target, secure, options) of a data channel to the cache endpoint, as the SDK
    opens its own (TLS on port 443, plaintext for a local server on any other)."""
    provider = settings.provider
    grpc_config = settings.configuration.get_transport_strategy().get_grpc_configuration()
    send = grpc_config.get_max_send_message_length()
    receive = grpc_config.get_max_receive_message_length()
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", send if send is not None else _SDK_MAX_MESSAGE_BYTES),
        (
            "grpc.max_receive_message_length",
            receive if receive is not None else _SDK_MAX_MESSAGE_BYTES,
        ),
        ("grpc.service_config_disable_resolution", 1),
    ]
    permit = grpc_config.get_keepalive_permit_without_calls()
    if permit is not None:
        options.append(("grpc.keepalive_permit_without_calls", int(permit)))
    for name, value in (
        ("grpc.keepalive_time_ms", grpc_config.get_keepalive_time()),
        ("grpc.keepalive_timeout_ms", grpc_config.get_keepalive_timeout()),
    ):
        if value is not None:
            options.append((name, int(value.total_seconds() * 1000)))
    secure = provider.port == 443
    target = provider.cache_endpoint if secure else f"{provider.cache_endpoint}:{provider.port}"
    return target, secure, options


def data_channel(
    settings: Settings, grpc_module: Any, extra_options: Sequence[tuple[str, Any]] = ()
) -> Any:
    """A new channel to the cache endpoint from ``grpc_module`` (``grpc`` or
    ``grpc.aio``), for the calls the SDK does not make (``GetBatch``)."""
    target, secure, options = channel_arguments(settings)
    options.extend(extra_options)
    if not secure:
        return grpc_module.insecure_channel(target, options=options)
    grpc_config = settings.configuration.get_transport_strategy().get_grpc_configuration()
    pem = grpc_config.get_root_certificates_pem() or None
    credentials = grpc.ssl_channel_credentials(root_certificates=pem)
    return grpc_module.secure_channel(target, credentials, options=options)


def log_get_batch_unsupported(error: BaseException) -> None:
    logger.info(
        "momento-botocore: the Momento server does not implement GetBatch; get_many "
        "looks keys up one by one from now on (%s)",
        error,
    )
