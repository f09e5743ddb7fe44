"""register() and Registration: install the read hooks, and take them out again."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
import threading
import weakref
from datetime import timedelta
from typing import Any

import botocore

from momento_botocore.backends.base import AsyncBackend, Backend
from momento_botocore.backends.factory import create_async_backend, create_backend
from momento_botocore.backends.memory import AsyncMemoryBackend, MemoryBackend
from momento_botocore.config import CacheConfig, ConfigurationError
from momento_botocore.core.engine import Engine, identity_of
from momento_botocore.drivers.aio import AsyncDriver, ThreadedAsyncBackend
from momento_botocore.drivers.sync import SyncDriver
from momento_botocore.hooks import client_for, remember_client, uninstall_any, uninstall_planning

_LOCK = threading.RLock()
# What is installed: emitter -> the registration whose handlers it holds.
_OWNERS: weakref.WeakKeyDictionary[Any, Registration] = weakref.WeakKeyDictionary()
_GLOBAL: list[Registration] = []  # at most one registration for "every session"


class Registration:
    """What one :func:`register` call installed. :meth:`unregister` removes exactly that.

    One engine (and so one set of counters, fences and pending tombstones) serves
    botocore sessions through a :class:`SyncDriver` and aiobotocore sessions through
    an :class:`AsyncDriver`, each made on first use, over one cache.
    """

    def __init__(
        self,
        config: CacheConfig,
        backend: Any,
        *,
        owns_backend: bool,
        backend_given: Any,
    ) -> None:
        self._owns_backend = owns_backend
        self._backend_given = backend_given
        asynchronous = _is_async_backend(backend)
        self._backend: Backend | None = None if asynchronous else backend
        self._async_backend: AsyncBackend | None = backend if asynchronous else None
        self.engine = Engine(config, identity_of(backend), find_client=client_for)
        self._driver: SyncDriver | None = None
        self._async_driver: AsyncDriver | None = None
        self._emitters: weakref.WeakSet[Any] = weakref.WeakSet()
        self._client_emitters: weakref.WeakSet[Any] = weakref.WeakSet()
        self._global = False

    @property
    def config(self) -> CacheConfig:
        return self.engine.config

    @property
    def backend(self) -> Any:
        """The cache backend (the async one when only that was given)."""
        return self._backend if self._backend is not None else self._async_backend

    @property
    def hooks(self) -> SyncDriver:
        """The botocore driver."""
        return self._sync_driver()

    @property
    def active(self) -> bool:
        return self.engine.active

    def unregister(self) -> None:
        """Remove the handlers and stop the cache path; calling it again does nothing."""
        with _LOCK:
            if not self.engine.active:
                return
            # Clients copied our handlers when they were made; this turns those off too.
            self.engine.active = False
            for emitter in list(self._emitters):
                if _OWNERS.get(emitter) is self:
                    if emitter in self._client_emitters:
                        # Calls may be in flight on a client's own emitter: keep what
                        # finishes them (inert on calls without a plan).
                        uninstall_planning(emitter)
                    else:  # a session's: calls run on the clients' copies
                        uninstall_any(emitter)
                    del _OWNERS[emitter]
            self._emitters.clear()
            if self._global:
                botocore.unregister_initializer(self._initialize_session)
                _GLOBAL.remove(self)
        if self._owns_backend:
            if self._backend is not None:
                self._backend.close()
            if self._async_backend is not None:
                _close_async(self._async_backend)

    def __enter__(self) -> Registration:
        return self

    def __exit__(self, *_: object) -> None:
        self.unregister()

    def _same_as(self, config: CacheConfig, backend: Any) -> bool:
        return self.engine.active and self.config == config and self._backend_given is backend

    def _sync_driver(self) -> SyncDriver:
        if self._driver is None:
            if self._backend is None:
                raise ConfigurationError(
                    "an async backend serves aiobotocore sessions only; give a Backend "
                    "(or none) to register botocore sessions and clients"
                )
            self._driver = SyncDriver(self.config, self._backend, engine=self.engine)
        return self._driver

    def _aio_driver(self) -> AsyncDriver:
        if self._async_driver is None:
            if self._async_backend is None:
                self._async_backend = self._async_twin()
            self._async_driver = AsyncDriver(self.engine, self._async_backend)
        return self._async_driver

    def _async_twin(self) -> AsyncBackend:
        """An async backend on the sync one's cache: the same store for memory, a new
        client of the same cache for Momento, else the given backend in worker threads."""
        backend = self._backend
        if type(backend) is MemoryBackend:  # in-process: called on the loop (a subclass
            return AsyncMemoryBackend(backend)  # may do anything: it gets threads)
        if self._owns_backend:  # a near cache's store and subscription are shared
            return create_async_backend(self.config, shared_near=getattr(backend, "near", None))
        assert backend is not None
        return ThreadedAsyncBackend(backend)

    def _install(self, emitter: Any) -> None:
        with _LOCK:
            if _OWNERS.get(emitter) is self:
                return
            if self._backend is None and not _is_async(emitter):
                return  # an async backend only: botocore sessions are left alone
            driver: Any = self._aio_driver() if _is_async(emitter) else self._sync_driver()
            driver.install(emitter)
            _OWNERS[emitter] = self
            self._emitters.add(emitter)

    def _initialize_session(self, session: Any) -> None:
        """botocore initializer: called for every new botocore (and aiobotocore) session."""
        self._install(session.get_component("event_emitter"))


def _is_async(obj: Any) -> bool:
    """True for aiobotocore's sessions, clients and event emitters (and aioboto3's),
    also behind botocore's EventAliaser (a session's emitter component)."""
    inner = getattr(obj, "_emitter", None)
    return any(
        type(found).__module__.startswith(("aiobotocore", "aioboto3")) for found in (obj, inner)
    )


def _is_async_backend(backend: Any) -> bool:
    return inspect.iscoroutinefunction(getattr(backend, "get", None))


def _close_async(backend: AsyncBackend) -> None:
    """Close an async backend from synchronous code: on the running loop if there is
    one (as a task), else on a loop of its own."""
    with contextlib.suppress(Exception):
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(backend.close())
        else:
            task = loop.create_task(backend.close())
            _CLOSING.add(task)
            task.add_done_callback(_CLOSING.discard)


_CLOSING: set[Any] = set()  # close() tasks, kept until done


def _find_emitter(target: Any) -> Any:
    meta = getattr(target, "meta", None)
    if meta is not None and hasattr(meta, "events") and hasattr(meta, "service_model"):
        if meta.service_model.service_name != "dynamodb":
            raise ConfigurationError(
                f"register() takes a DynamoDB client, got a {meta.service_model.service_name!r} one"
            )
        return meta.events  # a botocore client (boto3.client(...) is one too)
    if hasattr(target, "get_component"):
        return target.get_component("event_emitter")  # botocore.session.Session
    if hasattr(target, "events") and hasattr(target, "_session"):
        return target.events  # boto3.Session
    raise ConfigurationError(
        "register() takes a boto3, botocore, aioboto3 or aiobotocore Session, a DynamoDB "
        "client (botocore or aiobotocore) or None, "
        f"got {type(target).__name__}"
    )


def register(
    target: Any = None,
    *,
    ttl: float | timedelta | None = None,
    backend: Backend | AsyncBackend | None = None,
    config: CacheConfig | None = None,
    tables: tuple[str, ...] | list[str] | str | None = None,
    table_ttls: dict[str, float | timedelta] | None = None,
    key_prefix: str | None = None,
    key_schemas: dict[str, tuple[str, ...]] | None = None,
    account_id: str | None = None,
    cache_queries: bool | str | list[str] | tuple[str, ...] | None = None,
    cache_scans: bool | str | list[str] | tuple[str, ...] | None = None,
) -> Registration:
    """Cache DynamoDB reads made through ``target``.

    ``target`` is a boto3 or botocore Session, a DynamoDB client, an aiobotocore
    Session or client, an aioboto3 Session, or None for every botocore and
    aiobotocore session created from now on (plus boto3's default session, if any).
    ``backend`` is a :class:`Backend`, or an :class:`AsyncBackend` (aiobotocore only).
    ``ttl`` is required unless ``config`` carries it. ``account_id`` is the AWS
    account of clients whose credentials do not say (see docs/consistency.md).
    ``cache_queries`` and ``cache_scans`` (True, or table names and patterns) cache
    Query and Scan pages too (docs/queries.md).
    Registering the same target again with the same settings returns the same
    registration; with other settings, the new registration replaces the old one
    on that target.
    """
    config = _merged_config(
        config,
        {
            "ttl": ttl,
            "tables": tuple(tables) if isinstance(tables, list) else tables,
            "table_ttls": table_ttls,
            "key_prefix": key_prefix,
            "key_schemas": key_schemas,
            "account_id": account_id,
            "cache_queries": tuple(cache_queries)
            if isinstance(cache_queries, list)
            else cache_queries,
            "cache_scans": tuple(cache_scans) if isinstance(cache_scans, list) else cache_scans,
        },
    )
    if backend is not None and not all(
        callable(getattr(backend, name, None)) for name in ("get", "add", "set", "delete", "close")
    ):
        raise ConfigurationError(f"backend {type(backend).__name__} lacks get/add/set/delete/close")
    emitter = None if target is None else _find_emitter(target)
    if _is_async_backend(backend) and emitter is not None and not _is_async(emitter):
        raise ConfigurationError(
            f"an async backend ({type(backend).__name__}) serves aiobotocore sessions and "
            "clients only; give a Backend (or none) for botocore and boto3"
        )
    with _LOCK:
        if target is None:
            existing = _GLOBAL[0] if _GLOBAL else None
        else:
            existing = _OWNERS.get(emitter)
        if existing is not None and existing._same_as(config, backend):
            return existing
        if target is None and existing is not None:
            existing.unregister()
        owns_backend = backend is None
        registration = Registration(
            config,
            backend if backend is not None else create_backend(config),
            owns_backend=owns_backend,
            backend_given=backend,
        )
        if target is None:
            _install_globally(registration)
        else:
            registration._install(emitter)
            if getattr(target, "meta", None) is not None:
                registration._client_emitters.add(emitter)
                remember_client(target)  # writes ask it for key schemas (DescribeTable)
        return registration


def _merged_config(config: CacheConfig | None, settings: dict[str, Any]) -> CacheConfig:
    """``config`` with the settings given to register() (None: not given), or a new
    CacheConfig of them when there is no ``config``."""
    changes = {name: value for name, value in settings.items() if value is not None}
    if config is None:
        if "ttl" not in changes:
            raise ConfigurationError("register() needs ttl= (seconds or timedelta) or config=")
        return CacheConfig(**changes)
    return config.replace(**changes) if changes else config


def _install_globally(registration: Registration) -> None:
    """``registration`` for every botocore session from now on, and for boto3's default
    session if there is one. Called with _LOCK held."""
    registration._global = True
    _GLOBAL.append(registration)
    botocore.register_initializer(registration._initialize_session)
    boto3 = sys.modules.get("boto3")
    default_session = getattr(boto3, "DEFAULT_SESSION", None)
    if default_session is not None:
        registration._install(default_session.events)


def global_registration() -> Registration | None:
    """The active registration for every session (``register(None, ...)``), if any."""
    with _LOCK:
        return _GLOBAL[0] if _GLOBAL else None


def unregister_all() -> None:
    """Remove every registration made in this process."""
    with _LOCK:
        registrations = set(_OWNERS.values()) | set(_GLOBAL)
    for registration in registrations:
        registration.unregister()
