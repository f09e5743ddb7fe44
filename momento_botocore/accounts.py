"""The AWS account a client's calls are made in: the owner of the tables it names.

Cache keys hold the account of the table (Contract 1), so two accounts' tables of
one name never share entries. For a plain table name, a client's account is the
first found of:

1. the account botocore's credentials carry (botocore 1.37 and later:
   ``AWS_ACCOUNT_ID``, ``aws_account_id``, assume-role, SSO, credential_process...);
2. the ``account_id`` setting (``MOMENTO_BOTOCORE_ACCOUNT_ID``): no STS call then;
3. STS ``GetCallerIdentity`` with the client's credentials, asked once per access
   key through botocore's own endpoint settings (``AWS_ENDPOINT_URL_STS``...);
   a failure is remembered for ``retry_after`` seconds.

A table ARN names its owner and wins over all of these (see core/reads.py). It is
found on a client's first call and remembered per client: never a network call
on the hit path. A client whose account cannot be found runs uncached.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from momento_botocore.core.keys import is_account
from momento_botocore.log import logger

#: Seconds before a client (or access key) whose account could not be found is tried again.
DEFAULT_RETRY_AFTER = 300.0
_STS_TIMEOUT = 2.0


def own_account(credentials: Any) -> str | None:
    """The account botocore's credentials say they belong to, if any (botocore >= 1.37)."""
    account = getattr(credentials, "account_id", None)
    return account if is_account(account) else None


def credentials_of(client: Any) -> Any:
    """A botocore client's credentials (None for an unsigned client)."""
    get = getattr(client, "_get_credentials", None)  # botocore 1.34 and later
    if callable(get):
        return get()
    signer = getattr(client, "_request_signer", None)
    return getattr(signer, "_credentials", None)


_STS_SESSION: list[Any] = []  # one botocore session: it keeps the loaded models


def ask_sts(frozen: Any, region: str | None) -> str:
    """The account of ``frozen`` credentials, from STS GetCallerIdentity."""
    import botocore.session
    from botocore.config import Config

    if not _STS_SESSION:
        _STS_SESSION.append(botocore.session.Session())
    client = _STS_SESSION[0].create_client(
        "sts",
        region_name=region or "us-east-1",
        aws_access_key_id=frozen.access_key,
        aws_secret_access_key=frozen.secret_key,
        aws_session_token=frozen.token,
        config=Config(
            connect_timeout=_STS_TIMEOUT,
            read_timeout=_STS_TIMEOUT,
            retries={"total_max_attempts": 1},
        ),
    )
    try:
        account = client.get_caller_identity().get("Account")
    finally:
        client.close()
    if not is_account(account):
        raise ValueError(f"STS GetCallerIdentity gave no 12-digit account: {account!r}")
    return str(account)


class CallerAccounts:
    """STS answers per access key, shared by the process. A failure is remembered
    for ``retry_after`` seconds: not retried on every call."""

    def __init__(
        self,
        ask: Callable[[Any, str | None], str] = ask_sts,
        *,
        retry_after: float = DEFAULT_RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ask = ask
        self._retry_after = retry_after
        self._clock = clock
        self._known: dict[str, str] = {}
        self._failed: dict[str, float] = {}
        self._lock = threading.Lock()

    def account(self, frozen: Any, region: str | None) -> str | None:
        key = getattr(frozen, "access_key", None)
        if not isinstance(key, str) or not key:
            return None
        with self._lock:  # one STS call per access key, even when threads start together
            found = self._known.get(key)
            if found is not None:
                return found
            failed_at = self._failed.get(key)
            if failed_at is not None and self._clock() - failed_at < self._retry_after:
                return None
            try:
                account = self._ask(frozen, region)  # under the lock: CALLERS serializes
            except Exception as error:
                self._failed[key] = self._clock()
                logger.warning(
                    "momento-botocore: STS GetCallerIdentity failed (%s: %s); calls with "
                    "these credentials run uncached; set account_id "
                    "(MOMENTO_BOTOCORE_ACCOUNT_ID) or AWS_ACCOUNT_ID to avoid the lookup",
                    type(error).__name__,
                    error,
                )
                return None
            self._failed.pop(key, None)
            self._known[key] = account
            return account

    def forget(self, *, failures_only: bool = False) -> None:
        with self._lock:
            if not failures_only:
                self._known.clear()
            self._failed.clear()


#: The process's STS answers.
CALLERS = CallerAccounts()


def forget_accounts(*, failures_only: bool = False) -> None:
    """Forget the STS answers (or only the failures) of this process (for tests)."""
    CALLERS.forget(failures_only=failures_only)


class ClientAccounts:
    """The account of each client, found on its first call and then remembered.

    ``of(context)`` is on every call's path: one weak-dict lookup once known.
    ``find_client(context)`` gives the client of a call (or None).
    """

    def __init__(
        self,
        configured: str | None,
        find_client: Callable[[Any], Any],
        *,
        callers: CallerAccounts | None = None,
        retry_after: float = DEFAULT_RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._configured = configured
        self._find_client = find_client
        self._callers = callers if callers is not None else CALLERS
        self._retry_after = retry_after
        self._clock = clock
        # id of a client's Config (one per client) -> (a weak reference to it, its
        # account or when finding it failed). Keyed by id, not weakly by the object: a
        # WeakKeyDictionary makes a new weak reference on every lookup (every call).
        self._known: dict[int, tuple[weakref.ReferenceType[Any], str | float]] = {}
        self._warned = False

    def of(self, context: Any) -> str | None:
        """The account of the call's client; None when it cannot be known."""
        found = self.known(context)
        if found is not UNKNOWN:
            return found  # type: ignore[return-value]
        account = self._find(context)
        self.remember(context, account)
        return account

    async def of_async(self, context: Any) -> str | None:
        """:meth:`of` for an aiobotocore client: its credentials are awaited, and an
        STS lookup runs in a worker thread (never on the event loop)."""
        found = self.known(context)
        if found is not UNKNOWN:
            return found  # type: ignore[return-value]
        frozen = None
        try:
            client = self._find_client(context)
            credentials = None if client is None else credentials_of(client)
            if credentials is not None:
                frozen = credentials.get_frozen_credentials()
                if inspect.isawaitable(frozen):
                    frozen = await frozen
            account = own_account(frozen) or self._configured
            if account is None and frozen is not None:
                account = await asyncio.to_thread(
                    self._callers.account, frozen, client.meta.region_name
                )
        except Exception as error:
            account, reason = self._configured, f"{type(error).__name__}: {error}"
        else:
            reason = _why_unknown(client, frozen)
        if account is None:
            self._unknown(reason)
        self.remember(context, account)
        return account

    def known(self, context: Any) -> str | object | None:
        """The account remembered for the call's client, None while a failed lookup is
        recent, or UNKNOWN when it must be looked up."""
        config = context.get("client_config")
        if config is None:  # no client config to remember it by
            return self._configured
        known = self._known.get(id(config))
        if known is None or known[0]() is not config:
            return UNKNOWN
        found = known[1]
        if isinstance(found, str):
            return found
        if self._clock() - found < self._retry_after:  # found: when finding it failed
            return None
        return UNKNOWN

    def remember(self, context: Any, account: str | None) -> None:
        config = context.get("client_config")
        if config is None:
            return
        key = id(config)
        known = self._known

        def forget(ref: weakref.ReferenceType[Any]) -> None:
            # The config is gone: its id may be reused, but not before this runs.
            if known.get(key, (None,))[0] is ref:
                known.pop(key, None)

        with contextlib.suppress(TypeError):  # not weakly referenceable: not remembered
            known[key] = (
                weakref.ref(config, forget),
                self._clock() if account is None else account,
            )

    def _find(self, context: Any) -> str | None:
        frozen = None
        try:
            client = self._find_client(context)
            credentials = None if client is None else credentials_of(client)
            frozen = None if credentials is None else credentials.get_frozen_credentials()
            account = own_account(frozen) or self._configured
            if account is None and frozen is not None:
                account = self._callers.account(frozen, client.meta.region_name)
        except Exception as error:
            account, reason = self._configured, f"{type(error).__name__}: {error}"
        else:
            reason = _why_unknown(client, frozen)
        if account is None:
            self._unknown(reason)
        return account

    def _unknown(self, reason: str) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "momento-botocore: the AWS account of a DynamoDB client is unknown (%s); "
                "its calls run uncached. Set account_id (MOMENTO_BOTOCORE_ACCOUNT_ID) "
                "or AWS_ACCOUNT_ID, or let STS GetCallerIdentity answer",
                reason,
            )


#: What :meth:`ClientAccounts.known` returns when the account must be looked up.
UNKNOWN = object()


def _why_unknown(client: Any, frozen: Any) -> str:
    if client is None:
        return "its client is not known to momento-botocore"
    return "no credentials" if frozen is None else "STS did not say"
