"""botocore's events, and which handler of a driver each one calls.

One GetItem goes through three handlers that share the call's ``context`` dict:

* ``before-parameter-build.dynamodb`` (registered last, so boto3's ``Table`` layer
  has already turned Python values into wire format): plan, and compute the key;
* ``before-call.dynamodb.GetItem``: look the key up; on a hit, return a response
  built fresh from the entry, and botocore sends nothing;
* ``after-call.dynamodb.GetItem`` (the exact name, so it runs before boto3's
  resource layer converts the answer in place): after a miss answered by
  DynamoDB over the wire, fill with add-if-absent (Contract 3), then project.

BatchGetItem is looked up in ``before-parameter-build`` (only the misses are left in
the request), answered in ``before-call`` when every key was a hit, and merged and
filled in ``after-call``. Writes tombstone their items in ``after-call`` (and
``after-call-error``), unless DynamoDB rejected them. ``request-created`` says a
request really went out (only such answers are filled or invalidate).

The decisions are the engine's (core/engine.py); the handlers are a driver's
methods: drivers/sync.py for botocore, drivers/aio.py (coroutines, which
aiobotocore's emitter awaits) for aiobotocore. Both have the same method names.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

from botocore.awsrequest import AWSResponse

from momento_botocore.core.queries import PAGE_OPERATIONS
from momento_botocore.core.reads import CACHE_HEADER
from momento_botocore.core.writes import WRITE_OPERATIONS

# botocore reads only ``status_code`` from it; one shared instance saves ~2 us a hit.
HIT_HTTP_RESPONSE = AWSResponse(None, 200, {CACHE_HEADER: "hit"}, None)

# (event, driver method, unique id, registered last). botocore keeps one handler per
# unique id and emitter, whatever the event: every id here must be different.
HANDLERS = (
    ("before-parameter-build.dynamodb", "plan_request", "momento-botocore.plan", True),
    ("before-call.dynamodb.GetItem", "serve_from_cache", "momento-botocore.serve", False),
    # request-created, not before-send: its request carries the call's context on every
    # botocore (before-send's has it only from ~1.43.7x), and it fires once per attempt
    # actually built, never on a short-circuited call (a hit, a Stubber's answer).
    ("request-created.dynamodb.GetItem", "mark_sent", "momento-botocore.sent", False),
    # Fills, then projects (the fill needs the full item): one handler, as it runs on
    # every GetItem, hits included.
    ("after-call.dynamodb.GetItem", "fill_after_miss", "momento-botocore.fill", False),
    ("before-call.dynamodb.BatchGetItem", "serve_batch", "momento-botocore.batch-serve", False),
    ("request-created.dynamodb.BatchGetItem", "count_send", "momento-botocore.batch-sent", False),
    ("after-call.dynamodb.BatchGetItem", "merge_batch", "momento-botocore.batch-merge", False),
    ("creating-client-class.dynamodb", "remember_clients", "momento-botocore.clients", False),
    *(
        entry
        for operation in PAGE_OPERATIONS
        for entry in (
            (
                f"before-call.dynamodb.{operation}",
                "serve_page",
                f"momento-botocore.page-{operation}",
                False,
            ),
            (
                f"request-created.dynamodb.{operation}",
                "mark_sent",
                f"momento-botocore.page-sent-{operation}",
                False,
            ),
            (
                f"after-call.dynamodb.{operation}",
                "fill_page",
                f"momento-botocore.page-fill-{operation}",
                False,
            ),
        )
    ),
    *(
        entry
        for operation in WRITE_OPERATIONS
        for entry in (
            (
                f"request-created.dynamodb.{operation}",
                "count_send",
                f"momento-botocore.sent-{operation}",
                False,
            ),
            (
                f"after-call.dynamodb.{operation}",
                "write_answered",
                f"momento-botocore.written-{operation}",
                False,
            ),
            (
                f"after-call-error.dynamodb.{operation}",
                "write_failed",
                f"momento-botocore.write-error-{operation}",
                False,
            ),
        )
    ),
)

# The handlers that start our work on a call; the others only finish what a plan
# began (and do nothing on a call without one).
_PLANNING = frozenset({"plan_request", "remember_clients"})


def install(driver: Any, events: Any) -> None:
    """Add ``driver``'s handlers to an event emitter, replacing any of ours already there."""
    uninstall_any(events)
    for event, method, unique_id, last in HANDLERS:
        register = events.register_last if last else events.register
        register(event, getattr(driver, method), unique_id=unique_id)


def uninstall_any(events: Any) -> None:
    """Remove every handler of ours from an event emitter (whichever driver put it there)."""
    for event, _, unique_id, _ in HANDLERS:
        events.unregister(event, unique_id=unique_id)


def uninstall_planning(events: Any) -> None:
    """Remove the handlers that plan new calls, and leave those that finish calls
    already planned: a call in flight on this emitter (another thread's) may have
    had its request changed (misses only, no projection, a placeholder) and still
    needs its answer merged, projected or served."""
    for event, method, unique_id, _ in HANDLERS:
        if method in _PLANNING:
            events.unregister(event, unique_id=unique_id)


# Clients, found from a call's context by their (per-client) Config object. A
# handler is not told which client emitted the event; the key schema of a table
# is asked of that same client, with its credentials and endpoint.
_CLIENTS: weakref.WeakKeyDictionary[Any, weakref.ReferenceType[Any]] = weakref.WeakKeyDictionary()


def remember_client(client: Any) -> None:
    """Make ``client`` findable from the context of its calls."""
    with contextlib.suppress(AttributeError, TypeError):
        _CLIENTS[client.meta.config] = weakref.ref(client)


def client_for(context: Any) -> Any:
    """The client whose call ``context`` is (None when not known)."""
    try:
        ref = _CLIENTS.get(context.get("client_config"))
    except TypeError:
        return None
    return None if ref is None else ref()


class RemembersItself:
    """Mixed into DynamoDB client classes made by a registered session."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        with contextlib.suppress(Exception):  # never break making a client
            remember_client(self)


def remember_clients(base_classes: Any) -> None:
    """creating-client-class: make new DynamoDB clients findable from a call's context."""
    if RemembersItself not in base_classes:
        base_classes.insert(0, RemembersItself)
