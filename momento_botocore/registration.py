"""register() and Registration: install the read hooks, and take them out again."""

from __future__ import annotations

import sys
import threading
import weakref
from datetime import timedelta
from typing import Any

import botocore

from momento_botocore.backends.base import Backend
from momento_botocore.backends.factory import create_backend
from momento_botocore.config import CacheConfig, ConfigurationError
from momento_botocore.hooks import ReadHooks, remember_client, uninstall_any, uninstall_planning
from momento_botocore.log import logger

_LOCK = threading.RLock()
# What is installed: emitter -> the registration whose handlers it holds.
_OWNERS: weakref.WeakKeyDictionary[Any, Registration] = weakref.WeakKeyDictionary()
_GLOBAL: list[Registration] = []  # at most one registration for "every session"
_ASYNC_NOTICE_GIVEN = threading.Event()


class Registration:
    """What one :func:`register` call installed. :meth:`unregister` removes exactly that."""

    def __init__(
        self, hooks: ReadHooks, *, owns_backend: bool, backend_given: Backend | None
    ) -> None:
        self.hooks = hooks
        self._owns_backend = owns_backend
        self._backend_given = backend_given
        self._emitters: weakref.WeakSet[Any] = weakref.WeakSet()
        self._client_emitters: weakref.WeakSet[Any] = weakref.WeakSet()
        self._global = False

    @property
    def config(self) -> CacheConfig:
        return self.hooks.config

    @property
    def backend(self) -> Backend:
        return self.hooks.backend

    @property
    def active(self) -> bool:
        return self.hooks.active

    def unregister(self) -> None:
        """Remove the handlers and stop the cache path; calling it again does nothing."""
        with _LOCK:
            if not self.hooks.active:
                return
            # Clients copied our handlers when they were made; this turns those off too.
            self.hooks.active = False
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
            self.hooks.backend.close()

    def __enter__(self) -> Registration:
        return self

    def __exit__(self, *_: object) -> None:
        self.unregister()

    def _same_as(self, config: CacheConfig, backend: Backend | None) -> bool:
        return self.hooks.active and self.config == config and self._backend_given is backend

    def _install(self, emitter: Any) -> None:
        with _LOCK:
            if _OWNERS.get(emitter) is self:
                return
            self.hooks.install(emitter)
            _OWNERS[emitter] = self
            self._emitters.add(emitter)

    def _initialize_session(self, session: Any) -> None:
        """botocore initializer: called for every new botocore session."""
        emitter = session.get_component("event_emitter")
        if _is_async(session) or _is_async(emitter):
            if not _ASYNC_NOTICE_GIVEN.is_set():
                _ASYNC_NOTICE_GIVEN.set()
                logger.warning("momento-botocore: aiobotocore sessions are left uncached")
            return
        self._install(emitter)


def _is_async(obj: Any) -> bool:
    """True for aiobotocore's sessions, clients and event emitters (and aioboto3's)."""
    return type(obj).__module__.startswith(("aiobotocore", "aioboto3"))


def _emitter_of(target: Any) -> Any:
    emitter = _find_emitter(target)
    if _is_async(target) or _is_async(emitter) or _is_async(getattr(target, "_session", None)):
        # Our handlers are synchronous: on an event loop they would block it.
        raise ConfigurationError(
            "register() does not support aiobotocore/aioboto3 sessions or clients yet; "
            "leave them unregistered and they run uncached"
        )
    return emitter


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
        "register() takes a boto3 Session, a botocore Session, a DynamoDB client or None, "
        f"got {type(target).__name__}"
    )


def register(
    target: Any = None,
    *,
    ttl: float | timedelta | None = None,
    backend: Backend | None = None,
    config: CacheConfig | None = None,
    tables: tuple[str, ...] | list[str] | str | None = None,
    table_ttls: dict[str, float | timedelta] | None = None,
    key_prefix: str | None = None,
    key_schemas: dict[str, tuple[str, ...]] | None = None,
    account_id: str | None = None,
) -> Registration:
    """Cache DynamoDB reads made through ``target``.

    ``target`` is a boto3 or botocore Session, a DynamoDB client, or None for every
    botocore session created from now on (plus boto3's default session, if any).
    ``ttl`` is required unless ``config`` carries it. ``account_id`` is the AWS
    account of clients whose credentials do not say (see docs/consistency.md).
    Registering the same target again with the same settings returns the same
    registration; with other settings, the new registration replaces the old one
    on that target.
    """
    changes: dict[str, Any] = {
        name: value
        for name, value in (
            ("ttl", ttl),
            ("tables", tuple(tables) if isinstance(tables, list) else tables),
            ("table_ttls", table_ttls),
            ("key_prefix", key_prefix),
            ("key_schemas", key_schemas),
            ("account_id", account_id),
        )
        if value is not None
    }
    if config is None:
        if ttl is None:
            raise ConfigurationError("register() needs ttl= (seconds or timedelta) or config=")
        config = CacheConfig(**changes)
    elif changes:
        config = config.replace(**changes)
    if backend is not None and not all(
        callable(getattr(backend, name, None)) for name in ("get", "add", "set", "delete", "close")
    ):
        raise ConfigurationError(f"backend {type(backend).__name__} lacks get/add/set/delete/close")
    emitter = None if target is None else _emitter_of(target)
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
            ReadHooks(config, backend if backend is not None else create_backend(config)),
            owns_backend=owns_backend,
            backend_given=backend,
        )
        if target is None:
            registration._global = True
            _GLOBAL.append(registration)
            botocore.register_initializer(registration._initialize_session)
            boto3 = sys.modules.get("boto3")
            default_session = getattr(boto3, "DEFAULT_SESSION", None)
            if default_session is not None:
                registration._install(default_session.events)
        else:
            registration._install(emitter)
            if getattr(target, "meta", None) is not None:
                registration._client_emitters.add(emitter)
                remember_client(target)  # writes ask it for key schemas (DescribeTable)
        return registration


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
