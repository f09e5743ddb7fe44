"""Configuration as data: one frozen, validated dataclass."""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from momento_botocore import environment as env

MAX_TTL_SECONDS = 24 * 60 * 60  # Momento's limit
BACKENDS = ("memory", "momento")
#: Defaults for bounded cost when the cache is slow or down (justified in docs/backends.md).
DEFAULT_MOMENTO_REQUEST_TIMEOUT = 0.15
MAX_MOMENTO_REQUEST_TIMEOUT = 10.0
DEFAULT_BREAKER_FAILURES = 5
DEFAULT_BREAKER_COOLDOWN = 5.0
DEFAULT_MAX_PENDING_TOMBSTONES = 10_000
DEFAULT_TOMBSTONE_RETRY_INTERVAL = 1.0
DEFAULT_NEAR_CACHE_TTL = 5.0
DEFAULT_NEAR_CACHE_BYTES = 64 * 1024 * 1024
DEFAULT_INVALIDATION_TOPIC = "momento-botocore-invalidations"
_TOPIC = re.compile(r"[A-Za-z0-9_.\-]{1,100}")
_PATTERN = re.compile(r"[A-Za-z0-9_.\-*?]+")
_ACCOUNT = re.compile(r"[0-9]{12}")

Seconds = float | int | timedelta


class ConfigurationError(ValueError):
    """A setting is missing or invalid. Raised when configuring, never during a call."""


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be seconds or a timedelta, got {value!r}")
    if not 0 < value <= MAX_TTL_SECONDS:
        raise ConfigurationError(
            f"{name} must be more than 0 and at most {MAX_TTL_SECONDS} seconds (24 h), got {value}"
        )
    return float(value)


def _opt_in(name: str, value: Any) -> tuple[str, ...]:
    """``cache_queries`` / ``cache_scans`` as table patterns: True is every table."""
    if value is True:
        return ("*",)
    if value is False or value is None:
        return ()
    patterns = (value,) if isinstance(value, str) else value
    if not isinstance(patterns, Iterable):
        raise ConfigurationError(f"{name} must be True, False, or table names or patterns")
    return tuple(_pattern(name, pattern) for pattern in patterns)


def _parse_opt_in(name: str, text: str) -> bool | tuple[str, ...]:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _pattern(name: str, pattern: Any) -> str:
    if not isinstance(pattern, str) or _PATTERN.fullmatch(pattern) is None:
        raise ConfigurationError(
            f"{name}: {pattern!r} is not a table name or glob pattern "
            "(letters, digits, '_', '-', '.', with '*' and '?' as wildcards)"
        )
    return pattern


@dataclass(frozen=True)
class TableSettings:
    """What the cache does for one table."""

    ttl: float
    absent_ttl: float


@dataclass(frozen=True)
class CacheConfig:
    """Everything a registration needs to know. Validated when built.

    ``ttl`` is required; ``table_ttls`` and ``tables`` take table names or glob
    patterns (``orders-*``), checked in order.
    """

    ttl: Seconds
    table_ttls: Mapping[str, Seconds] = field(default_factory=dict)
    absent_ttl: Seconds | None = None
    tombstone_ttl: Seconds = 10.0
    tables: tuple[str, ...] = ("*",)
    key_prefix: str = ""
    backend: str = "memory"
    memory_max_entries: int = 100_000
    memory_max_bytes: int = 256 * 1024 * 1024
    momento_cache_name: str | None = None
    momento_api_key: str | None = field(default=None, repr=False)
    momento_endpoint: str | None = None
    momento_request_timeout: float = DEFAULT_MOMENTO_REQUEST_TIMEOUT
    breaker_failures: int = DEFAULT_BREAKER_FAILURES
    breaker_cooldown: float = DEFAULT_BREAKER_COOLDOWN
    #: Unwritten tombstones: how many are remembered, how often retried (see docs).
    max_pending_tombstones: int = DEFAULT_MAX_PENDING_TOMBSTONES
    tombstone_retry_interval: float = DEFAULT_TOMBSTONE_RETRY_INTERVAL
    #: Key attribute names per table name or pattern, for invalidating PutItem and
    #: put requests without asking DynamoDB (DescribeTable) for the key schema.
    key_schemas: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: The AWS account of clients whose credentials do not carry one (no STS lookup
    #: then). A table ARN, or credentials that name their account, win over it.
    account_id: str | None = None
    #: Query and Scan pages (opt-in, docs/queries.md): True for every cached table,
    #: or table names and glob patterns; kept as a tuple of patterns (empty: off).
    cache_queries: bool | str | tuple[str, ...] = False
    cache_scans: bool | str | tuple[str, ...] = False
    #: The near cache in front of Momento (docs/near-cache.md): entries kept in the
    #: process (0: off), the most seconds one lives, the most bytes all take.
    near_cache_items: int = 0
    near_cache_ttl: Seconds = DEFAULT_NEAR_CACHE_TTL
    near_cache_bytes: int = DEFAULT_NEAR_CACHE_BYTES
    #: The Momento topic (in the cache) invalidations are published on; "" turns
    #: publishing off (and leaves no near cache possible).
    invalidation_topic: str = DEFAULT_INVALIDATION_TOPIC

    # C901: one check per setting (they are a closed set).
    def __post_init__(self) -> None:  # noqa: C901
        put = object.__setattr__
        if self.ttl is None:
            raise ConfigurationError(
                f"ttl is required (seconds or timedelta; env {env.TTL_SECONDS})"
            )
        put(self, "ttl", _seconds("ttl", self.ttl))
        if not isinstance(self.table_ttls, Mapping):
            raise ConfigurationError("table_ttls must map table names or patterns to TTLs")
        put(
            self,
            "table_ttls",
            {
                _pattern("table_ttls", name): _seconds(f"table_ttls[{name!r}]", value)
                for name, value in self.table_ttls.items()
            },
        )
        absent = min(self.ttl, 60.0) if self.absent_ttl is None else self.absent_ttl
        put(self, "absent_ttl", _seconds("absent_ttl", absent))
        put(self, "tombstone_ttl", _seconds("tombstone_ttl", self.tombstone_ttl))
        tables = (self.tables,) if isinstance(self.tables, str) else self.tables
        if not isinstance(tables, Iterable):
            raise ConfigurationError("tables must be a sequence of table names or patterns")
        tables = tuple(_pattern("tables", pattern) for pattern in tables)
        if not tables:
            raise ConfigurationError("tables is empty: nothing would be cached")
        put(self, "tables", tables)
        for name in ("cache_queries", "cache_scans"):
            put(self, name, _opt_in(name, getattr(self, name)))
        if not isinstance(self.key_prefix, str) or any(c.isspace() for c in self.key_prefix):
            raise ConfigurationError(
                f"key_prefix must be a str without spaces: {self.key_prefix!r}"
            )
        if self.backend not in BACKENDS:
            raise ConfigurationError(
                f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}"
            )
        for name in ("memory_max_entries", "memory_max_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
        put(self, "key_schemas", _key_schemas(self.key_schemas))
        account = self.account_id
        if account is not None and (
            type(account) is not str or _ACCOUNT.fullmatch(account) is None
        ):
            raise ConfigurationError(
                f"account_id must be a 12-digit AWS account id (env {env.ACCOUNT_ID}), "
                f"got {account!r}"
            )

        timeout = self.momento_request_timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout <= MAX_MOMENTO_REQUEST_TIMEOUT
        ):
            raise ConfigurationError(
                "momento_request_timeout must be seconds, more than 0 and at most "
                f"{MAX_MOMENTO_REQUEST_TIMEOUT}, got {timeout!r}"
            )
        put(self, "momento_request_timeout", float(timeout))
        failures = self.breaker_failures
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise ConfigurationError(f"breaker_failures must be an integer >= 1, got {failures!r}")
        cooldown = self.breaker_cooldown
        if (
            isinstance(cooldown, bool)
            or not isinstance(cooldown, (int, float))
            or not 0 < cooldown <= 3600
        ):
            raise ConfigurationError(
                f"breaker_cooldown must be seconds, more than 0 and at most 3600, got {cooldown!r}"
            )
        put(self, "breaker_cooldown", float(cooldown))
        pending = self.max_pending_tombstones
        if isinstance(pending, bool) or not isinstance(pending, int) or pending < 1:
            raise ConfigurationError(
                f"max_pending_tombstones must be an integer >= 1, got {pending!r}"
            )
        interval = self.tombstone_retry_interval
        if (
            isinstance(interval, bool)
            or not isinstance(interval, (int, float))
            or not 0 < interval <= 3600
        ):
            raise ConfigurationError(
                "tombstone_retry_interval must be seconds, more than 0 and at most 3600, "
                f"got {interval!r}"
            )
        put(self, "tombstone_retry_interval", float(interval))
        if self.backend == "momento" and self.momento_endpoint is not None:
            parse_momento_endpoint(self.momento_endpoint)  # a bad value fails here
        self._check_near_cache()

    def _check_near_cache(self) -> None:
        for name in ("near_cache_items", "near_cache_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(f"{name} must be an integer >= 0, got {value!r}")
        object.__setattr__(self, "near_cache_ttl", _seconds("near_cache_ttl", self.near_cache_ttl))
        topic = self.invalidation_topic
        if not isinstance(topic, str) or (topic and _TOPIC.fullmatch(topic) is None):
            raise ConfigurationError(
                f"invalidation_topic must be a topic name (letters, digits, '_', '-', '.', "
                f"at most 100) or '' to publish nothing, got {topic!r}"
            )
        if self.near_cache_items > 0:
            if self.backend != "momento":
                raise ConfigurationError(
                    "near_cache_items needs the momento backend: a memory backend is already "
                    "in the process"
                )
            if not topic:
                raise ConfigurationError(
                    "near_cache_items needs an invalidation_topic: nothing would keep the "
                    "near cache fresh"
                )
            if self.near_cache_bytes == 0:
                raise ConfigurationError("near_cache_bytes must be more than 0 for a near cache")

    def settings_for(self, table: str) -> TableSettings | None:
        """The settings for ``table``, or None when it is not cached."""
        if not any(fnmatch.fnmatchcase(table, pattern) for pattern in self.tables):
            return None
        ttl = next(
            (
                ttl
                for pattern, ttl in self.table_ttls.items()
                if fnmatch.fnmatchcase(table, pattern)
            ),
            self.ttl,
        )
        assert isinstance(ttl, float)
        assert isinstance(self.absent_ttl, float)
        return TableSettings(ttl=ttl, absent_ttl=min(self.absent_ttl, ttl))

    def pages_cached(self, table: str, operation: str) -> bool:
        """True when ``operation`` (Query or Scan) pages of a cached ``table`` are cached."""
        patterns = self.cache_queries if operation == "Query" else self.cache_scans
        assert isinstance(patterns, tuple)
        return any(fnmatch.fnmatchcase(table, pattern) for pattern in patterns)

    def key_schema_for(self, table: str) -> tuple[str, ...] | None:
        """The configured key attribute names of ``table``, if any."""
        for pattern, names in self.key_schemas.items():
            if fnmatch.fnmatchcase(table, pattern):
                return names
        return None

    @property
    def ttl_seconds(self) -> float:
        assert isinstance(self.ttl, float)
        return self.ttl

    @property
    def tombstone_ttl_seconds(self) -> float:
        assert isinstance(self.tombstone_ttl, float)
        return self.tombstone_ttl

    def replace(self, **changes: Any) -> CacheConfig:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    # C901: one step per environment variable (or group of them) read.
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> CacheConfig:  # noqa: C901
        """Build from environment variables; keyword ``overrides`` win over them."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}

        def number(name: str, kind: type[int] | type[float]) -> Any:
            text = environ.get(name, "").strip()
            if not text:
                return None
            try:
                return kind(text)
            except ValueError:
                raise ConfigurationError(f"{name}={text!r} is not a number") from None

        for attr, name, kind in (
            ("ttl", env.TTL_SECONDS, float),
            ("absent_ttl", env.ABSENT_TTL_SECONDS, float),
            ("tombstone_ttl", env.TOMBSTONE_TTL_SECONDS, float),
            ("memory_max_entries", env.MEMORY_MAX_ENTRIES, int),
            ("memory_max_bytes", env.MEMORY_MAX_BYTES, int),
            ("momento_request_timeout", env.MOMENTO_REQUEST_TIMEOUT_SECONDS, float),
            ("breaker_failures", env.BREAKER_FAILURES, int),
            ("breaker_cooldown", env.BREAKER_COOLDOWN_SECONDS, float),
            ("max_pending_tombstones", env.MAX_PENDING_TOMBSTONES, int),
            ("tombstone_retry_interval", env.TOMBSTONE_RETRY_SECONDS, float),
            ("near_cache_items", env.NEAR_CACHE_ITEMS, int),
            ("near_cache_ttl", env.NEAR_CACHE_TTL_SECONDS, float),
            ("near_cache_bytes", env.NEAR_CACHE_BYTES, int),
        ):
            value = number(name, kind)
            if value is not None:
                values[attr] = value
        if tables := environ.get(env.TABLES, "").strip():
            values["tables"] = tuple(p.strip() for p in tables.split(",") if p.strip())
        if table_ttls := environ.get(env.TABLE_TTLS, "").strip():
            values["table_ttls"] = _parse_table_ttls(table_ttls)
        if key_schemas := environ.get(env.KEY_SCHEMAS, "").strip():
            values["key_schemas"] = _parse_key_schemas(key_schemas)
        for attr, name in (("cache_queries", env.CACHE_QUERIES), ("cache_scans", env.CACHE_SCANS)):
            if text := environ.get(name, "").strip():
                values[attr] = _parse_opt_in(name, text)
        for attr, name in (
            ("key_prefix", env.KEY_PREFIX),
            ("backend", env.BACKEND),
            ("momento_cache_name", env.MOMENTO_CACHE_NAME),
            ("momento_api_key", env.MOMENTO_API_KEY),
            ("momento_endpoint", env.MOMENTO_ENDPOINT),
            ("account_id", env.ACCOUNT_ID),
        ):
            if text := environ.get(name, "").strip():
                values[attr] = text
        if env.INVALIDATION_TOPIC in environ:  # set and empty: publishing off
            values["invalidation_topic"] = environ[env.INVALIDATION_TOPIC].strip()
        values.update(overrides)
        if values.get("ttl") is None:
            raise ConfigurationError(f"{env.TTL_SECONDS} is not set: a TTL is required")
        return cls(**values)


_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?")


def parse_momento_endpoint(value: Any) -> tuple[str, int | None]:
    """``(host, port)`` of a ``momento_endpoint`` / ``MOMENTO_ENDPOINT`` value.

    ``http://HOST:PORT`` is a local Momento-protocol server (Momento Local, or
    ``python -m momento_botocore.testing``), reached in plaintext without an API key:
    the port is returned. A bare ``HOST`` (or ``https://HOST``) is a Momento service
    endpoint for v2 API keys, reached over TLS on 443: the port is None.
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{env.MOMENTO_ENDPOINT} must be a host name or http://HOST:PORT")
    text = value.strip()
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = "", text
    rest = rest[:-1] if rest.endswith("/") else rest
    host, colon, port_text = rest.rpartition(":") if ":" in rest else (rest, "", "")
    bad = ConfigurationError(
        f"{env.MOMENTO_ENDPOINT}={text!r} is neither a host name (a Momento endpoint such "
        "as cell-us-east-1-1.prod.a.momentohq.com) nor http://HOST:PORT (a local server)"
    )
    if scheme.lower() not in ("", "http", "https") or not _HOST.fullmatch(host):
        raise bad
    if scheme.lower() == "http":
        if not colon or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigurationError(f"{env.MOMENTO_ENDPOINT}={text!r}: http:// needs a port")
        if int(port_text) == 443:  # the SDK speaks TLS to 443, whatever the scheme says
            raise ConfigurationError(
                f"{env.MOMENTO_ENDPOINT}={text!r}: port 443 is TLS; use https://HOST"
            )
        return host, int(port_text)
    if colon and port_text != "443":  # the SDK would speak plaintext to another port
        raise bad
    return host, None


def _key_schemas(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise ConfigurationError("key_schemas must map table names or patterns to key names")
    result: dict[str, tuple[str, ...]] = {}
    for pattern, names in value.items():
        names = (names,) if isinstance(names, str) else names
        if (
            not isinstance(names, (tuple, list))
            or not 1 <= len(names) <= 2
            or not all(isinstance(name, str) and name for name in names)
        ):
            raise ConfigurationError(
                f"key_schemas[{pattern!r}] must be the hash key name, or (hash, range) names"
            )
        result[_pattern("key_schemas", pattern)] = tuple(names)
    return result


def _parse_key_schemas(text: str) -> dict[str, tuple[str, ...]]:
    result: dict[str, tuple[str, ...]] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, names = part.partition("=")
        if not sep or not names.strip():
            raise ConfigurationError(
                f"{env.KEY_SCHEMAS}: {part.strip()!r} is not 'table=hash' or 'table=hash:range'"
            )
        result[name.strip()] = tuple(key.strip() for key in names.split(":"))
    return result


def _parse_table_ttls(text: str) -> dict[str, float]:
    result: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, seconds = part.partition("=")
        try:
            if not sep:
                raise ValueError
            result[name.strip()] = float(seconds)
        except ValueError:
            raise ConfigurationError(
                f"{env.TABLE_TTLS}: {part.strip()!r} is not 'table=seconds'"
            ) from None
    return result
