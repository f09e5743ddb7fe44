"""``momento-botocore doctor``: what this environment would do, and whether it works.

Prints the settings read from the environment (secrets masked), whether zero-code
activation is on in this interpreter, which tables are cached with which TTLs, and
checks the backend with a write, read and delete of a probe key. Exit code 0 when
all is well, 1 when something needs fixing.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

import botocore

import momento_botocore
from momento_botocore import activation
from momento_botocore import environment as env
from momento_botocore.backends.base import Backend
from momento_botocore.backends.factory import create_backend
from momento_botocore.config import CacheConfig, ConfigurationError

PROBE_TTL_SECONDS = 30.0
NEAR_WAIT_SECONDS = 5.0


def run(
    out: TextIO,
    *,
    environ: Mapping[str, str] | None = None,
    tables: Sequence[str] = (),
    backend_factory: Callable[[CacheConfig], Backend] = create_backend,
) -> int:
    """Write the report to ``out``; return the exit code."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []

    def say(line: str = "") -> None:
        print(line, file=out)

    say("momento-botocore doctor")
    say(f"  momento-botocore {momento_botocore.__version__}, botocore {botocore.__version__}")
    say(f"  python: {activation.python_description()}")

    say()
    say("Settings (environment):")
    width = max(len(name) for name in env.DESCRIPTIONS)
    for name, meaning in env.DESCRIPTIONS.items():
        say(f"  {name:<{width}}  {_shown(name, environ.get(name)):<14}  {meaning}")

    config: CacheConfig | None = None
    try:
        config = CacheConfig.from_env(environ)
    except ConfigurationError as error:
        problems.append(f"configuration: {error}")
        say()
        say(f"Configuration: INVALID: {error}")
    if config is not None:
        _describe_config(say, config, tables)

    say()
    _describe_activation(say, environ, problems)

    say()
    if config is None:
        say("Backend round trip: not tried (the configuration is invalid)")
    else:
        _round_trip(say, config, backend_factory, problems)

    say()
    if problems:
        say(f"Verdict: PROBLEM ({len(problems)})")
        for problem in problems:
            say(f"  - {problem}")
        return 1
    say("Verdict: OK")
    return 0


def _shown(name: str, value: str | None) -> str:
    if value is None or not value.strip():
        return "(not set)"
    if name in env.SECRETS:
        return f"(set, {len(value)} characters, hidden)"
    return value


def _describe_config(
    say: Callable[[str], None], config: CacheConfig, tables: Sequence[str]
) -> None:
    say("")
    say(f"Configuration: valid, backend {config.backend}")
    say(f"  default TTL {config.ttl_seconds:g} s; item-absent TTL {config.absent_ttl:g} s")
    say(f"  tombstone TTL {config.tombstone_ttl_seconds:g} s; key prefix {config.key_prefix!r}")
    if config.backend == "memory":
        say("  memory backend: a cache inside each process (processes do not share it)")
    elif config.backend == "momento":
        say(f"  Momento cache: {config.momento_cache_name or '(not set)'}")
        topic = config.invalidation_topic or "(none: publishing off)"
        say(f"  invalidation topic: {topic}")
        if config.near_cache_items:
            say(
                f"  near cache: {config.near_cache_items} entries, {config.near_cache_bytes} "
                f"bytes, entries live at most {config.near_cache_ttl:g} s"
            )
        else:
            say(f"  near cache: off ({env.NEAR_CACHE_ITEMS})")
    say("Tables cached:")
    say(f"  {', '.join(config.tables)}  (names or patterns, from {env.TABLES})")
    for pattern, ttl in config.table_ttls.items():
        say(f"  {pattern}: TTL {ttl:g} s (from {env.TABLE_TTLS})")
    for table in tables:
        settings = config.settings_for(table)
        if settings is None:
            say(f"  {table}: not cached")
        else:
            say(f"  {table}: cached, TTL {settings.ttl:g} s, absent TTL {settings.absent_ttl:g} s")


def _describe_activation(
    say: Callable[[str], None], environ: Mapping[str, str], problems: list[str]
) -> None:
    status = activation.status(environ)
    if status.state.startswith("waiting"):
        import botocore.session

        botocore.session.Session()  # the first session is what activates: try it
        status = activation.status(environ)
    say("Zero-code activation in this interpreter:")
    if status.pth_files:
        say(f"  start-up hook: installed ({', '.join(status.pth_files)})")
    else:
        say("  start-up hook: not installed in this interpreter's site-packages")
    if status.enabled is None:
        problems.append(f"{env.ENABLED}={status.enabled_value!r} is not one of 1, true, 0, false")
        say(f"  {env.ENABLED}: not understood ({status.enabled_value!r})")
    elif not status.enabled:
        say(f"  {env.ENABLED}: off; call momento_botocore.register() in code, or set it to 1")
    else:
        say(f"  {env.ENABLED}: on")
        if status.state == "failed":
            problems.append(f"activation: {status.detail}")
        elif not status.started_by:
            problems.append(
                f"{env.ENABLED} is on but the start-up hook did not run in this interpreter "
                "(not installed here? on Lambda, use the exec wrapper)"
            )
        elif status.registration is None:
            problems.append(f"the start-up hook ran but did not activate (state: {status.state})")
    registration = status.registration
    if registration is not None and registration.active:
        how = f"by the start-up hook ({status.started_by})" if status.started_by else "in code"
        say(
            f"  state: ACTIVE {how}: every botocore session is cached "
            f"(backend {registration.config.backend})"
        )
    elif status.state == "failed":
        say(f"  state: FAILED: {status.detail}")
    else:
        say("  state: not active (DynamoDB reads in this interpreter are not cached)")


def _describe_subscription(say: Callable[[str], None], backend: Any, problems: list[str]) -> None:
    """The near cache's subscription: live within a few seconds, or a problem."""
    near = getattr(backend, "near", None)
    if near is None or near.subscriber is None:
        return
    if near.subscriber.wait_live(NEAR_WAIT_SECONDS):
        say(f"Near cache subscription: live (topic {near.topic.topic_name})")
        return
    detail = near.subscriber.last_error or "no answer"
    problems.append(f"near cache subscription: {near.state}: {detail}")
    say(f"Near cache subscription: NOT LIVE after {NEAR_WAIT_SECONDS:g} s ({near.state}: {detail})")


def _round_trip(
    say: Callable[[str], None],
    config: CacheConfig,
    backend_factory: Callable[[CacheConfig], Backend],
    problems: list[str],
) -> None:
    key = f"{config.key_prefix}momento-botocore:doctor:{uuid.uuid4().hex}"
    value = os.urandom(16)
    step = "connect"
    started = time.perf_counter()
    backend: Backend | None = None
    try:
        backend = backend_factory(config)
        step = "write"
        backend.set(key, value, PROBE_TTL_SECONDS)
        step = "read"
        got = backend.get(key)
        if got != value:
            raise RuntimeError(f"read back {got!r}, wrote {value!r}")
        step = "delete"
        backend.delete(key)
        if backend.get(key) is not None:
            raise RuntimeError("the probe key is still there after delete")
    except Exception as error:
        problems.append(f"backend {config.backend}: {step} failed: {type(error).__name__}: {error}")
        say(f"Backend round trip ({config.backend}): FAILED at {step}: {error}")
    else:
        elapsed_ms = (time.perf_counter() - started) * 1000
        say(f"Backend round trip ({config.backend}): write, read, delete OK ({elapsed_ms:.1f} ms)")
        _describe_subscription(say, backend, problems)
    finally:
        if backend is not None:
            try:
                backend.close()
            except Exception as error:
                say(f"  (closing the backend failed: {error})")
