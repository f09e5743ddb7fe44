"""Every environment variable the library reads, in one place."""

from __future__ import annotations

ENABLED = "MOMENTO_BOTOCORE_ENABLED"
TTL_SECONDS = "MOMENTO_BOTOCORE_TTL_SECONDS"
TABLE_TTLS = "MOMENTO_BOTOCORE_TABLE_TTLS"
ABSENT_TTL_SECONDS = "MOMENTO_BOTOCORE_ABSENT_TTL_SECONDS"
TOMBSTONE_TTL_SECONDS = "MOMENTO_BOTOCORE_TOMBSTONE_TTL_SECONDS"
TABLES = "MOMENTO_BOTOCORE_TABLES"
KEY_PREFIX = "MOMENTO_BOTOCORE_KEY_PREFIX"
KEY_SCHEMAS = "MOMENTO_BOTOCORE_KEY_SCHEMAS"
ACCOUNT_ID = "MOMENTO_BOTOCORE_ACCOUNT_ID"
CACHE_QUERIES = "MOMENTO_BOTOCORE_CACHE_QUERIES"
CACHE_SCANS = "MOMENTO_BOTOCORE_CACHE_SCANS"
BACKEND = "MOMENTO_BOTOCORE_BACKEND"
MEMORY_MAX_ENTRIES = "MOMENTO_BOTOCORE_MEMORY_MAX_ENTRIES"
MEMORY_MAX_BYTES = "MOMENTO_BOTOCORE_MEMORY_MAX_BYTES"
MOMENTO_CACHE_NAME = "MOMENTO_CACHE_NAME"
MOMENTO_API_KEY = "MOMENTO_API_KEY"
NEXT_WRAPPER = "MOMENTO_BOTOCORE_NEXT_WRAPPER"
MOMENTO_ENDPOINT = "MOMENTO_ENDPOINT"
MOMENTO_REQUEST_TIMEOUT_SECONDS = "MOMENTO_BOTOCORE_MOMENTO_REQUEST_TIMEOUT_SECONDS"
BREAKER_FAILURES = "MOMENTO_BOTOCORE_BREAKER_FAILURES"
BREAKER_COOLDOWN_SECONDS = "MOMENTO_BOTOCORE_BREAKER_COOLDOWN_SECONDS"
MAX_PENDING_TOMBSTONES = "MOMENTO_BOTOCORE_MAX_PENDING_TOMBSTONES"
TOMBSTONE_RETRY_SECONDS = "MOMENTO_BOTOCORE_TOMBSTONE_RETRY_SECONDS"
NEAR_CACHE_ITEMS = "MOMENTO_BOTOCORE_NEAR_CACHE_ITEMS"
NEAR_CACHE_TTL_SECONDS = "MOMENTO_BOTOCORE_NEAR_CACHE_TTL_SECONDS"
NEAR_CACHE_BYTES = "MOMENTO_BOTOCORE_NEAR_CACHE_BYTES"
INVALIDATION_TOPIC = "MOMENTO_BOTOCORE_INVALIDATION_TOPIC"
#: Set by AWS Lambda; selects the SDK's Lambda configuration.
LAMBDA_FUNCTION_NAME = "AWS_LAMBDA_FUNCTION_NAME"

#: name -> one-line meaning, for ``doctor`` and the configuration reference.
DESCRIPTIONS: dict[str, str] = {
    ENABLED: "1/true turns on zero-code activation for every botocore session",
    TTL_SECONDS: "default TTL of cached items, seconds (required; at most 86400)",
    TABLE_TTLS: "per-table TTLs, 'orders=60,users*=300' (names or glob patterns)",
    ABSENT_TTL_SECONDS: "TTL of 'item does not exist' entries (default: min(TTL, 60))",
    TOMBSTONE_TTL_SECONDS: "how long a written item is not re-filled (default 10)",
    TABLES: "which tables are cached, comma-separated names or globs (default: all)",
    KEY_PREFIX: "prefix for every cache key (default: none)",
    KEY_SCHEMAS: "key attributes per table for write invalidation, 'orders=cust:id,users*=id'",
    ACCOUNT_ID: "12-digit AWS account of clients whose credentials do not say (skips STS)",
    CACHE_QUERIES: "cache Query pages: 1 for every cached table, or names/globs (default off)",
    CACHE_SCANS: "cache Scan pages: 1 for every cached table, or names/globs (default off)",
    BACKEND: "'memory' (default) or 'momento'",
    MEMORY_MAX_ENTRIES: "memory backend: most entries kept (default 100000)",
    MEMORY_MAX_BYTES: "memory backend: most bytes kept (default 268435456)",
    MOMENTO_CACHE_NAME: "Momento cache to use (momento backend)",
    MOMENTO_API_KEY: "Momento API key (momento backend; secret)",
    NEXT_WRAPPER: "Lambda: another AWS_LAMBDA_EXEC_WRAPPER to run with ours (OTel, ...)",
    MOMENTO_ENDPOINT: (
        "Momento endpoint for v2 keys (cell-us-east-1-1.prod.a.momentohq.com), or "
        "http://HOST:PORT: a local Momento-protocol server, plaintext, no API key"
    ),
    MOMENTO_REQUEST_TIMEOUT_SECONDS: "deadline of one Momento call, seconds (default 0.15)",
    BREAKER_FAILURES: "consecutive cache failures that open the circuit breaker (default 5)",
    BREAKER_COOLDOWN_SECONDS: "seconds the open breaker skips the cache before a probe (default 5)",
    MAX_PENDING_TOMBSTONES: "unwritten tombstones kept, then tables skip the cache (default 10000)",
    TOMBSTONE_RETRY_SECONDS: "least seconds between retries of unwritten tombstones (default 1)",
    NEAR_CACHE_ITEMS: "momento backend: entries kept in the process's near cache (default 0: off)",
    NEAR_CACHE_TTL_SECONDS: "most seconds a near cache entry lives, if a push is lost (default 5)",
    NEAR_CACHE_BYTES: "most bytes the near cache keeps (default 67108864)",
    INVALIDATION_TOPIC: (
        "Momento topic invalidations are published on (default momento-botocore-invalidations; "
        "set and empty: publish nothing)"
    ),
}

SECRETS = frozenset({MOMENTO_API_KEY})
