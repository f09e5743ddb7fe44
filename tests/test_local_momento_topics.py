"""Topics on the local Momento-protocol server, seen through the real SDK (``TopicClient``
and ``TopicClientAsync`` of momento 1.29) and through the raw ``Pubsub`` stub.

What the SDK does that a user of topics must know (pinned here so a new SDK that
changes it fails a test):

- The configuration's client timeout is the deadline of the Subscribe stream itself:
  ``TopicConfigurations.Default.v1()`` (5 s) ends every subscription after 5 s. A
  long-lived subscription needs ``.with_client_timeout(timedelta(days=...))``, which
  is also the deadline of ``publish`` on that client.
- Once a subscription's stream has ended (the connection dropped, the deadline
  passed, the server ended it, ``unsubscribe()``), the sync ``next()`` never returns:
  it retries the finished call in a loop (a core busy); the async ``__anext__`` loops
  the same way without ever awaiting anything, which holds the event loop. The SDK
  does not report it as ``TopicSubscriptionItem.Error``. The grpc call underneath
  (``subscription._client_stream``) does finish at once, with the status; the raw
  stub raises it as an ``RpcError``.
- Heartbeats and discontinuities are swallowed by the SDK; only the raw stub sees them.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import Any

import grpc
import pytest
from momento import (
    CacheClient,
    Configurations,
    TopicClient,
    TopicClientAsync,
    TopicConfigurations,
)
from momento.errors import MomentoErrorCode
from momento.responses import (
    CacheSet,
    TopicPublish,
    TopicSubscribe,
    TopicSubscriptionItem,
    TopicSubscriptionItemResponse,
)
from momento_wire_types import cachepubsub_pb2 as pb
from momento_wire_types import cachepubsub_pb2_grpc as pb_grpc

from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer

#: A subscription that lives a day: the client timeout is the stream's deadline.
LONG_LIVED = TopicConfigurations.Default.v1().with_client_timeout(timedelta(days=1))


@pytest.fixture
def topics(momento_server: LocalMomentoServer) -> Iterator[TopicClient]:
    with TopicClient(LONG_LIVED, momento_server.credential_provider()) as client:
        yield client


def subscribe(client: TopicClient, topic: str, **resume: int) -> TopicSubscribe.Subscription:
    subscription = client.subscribe(DEFAULT_CACHE, topic, **resume)
    assert isinstance(subscription, TopicSubscribe.Subscription), subscription
    return subscription


class _Abandoned(BaseException):
    """Raised into an SDK subscription's read loop (which catches only Exception)."""


class _Finished:
    def next(self) -> Any:
        raise _Abandoned

    async def read(self) -> Any:
        raise _Abandoned

    def cancel(self) -> None:
        pass


def _abandon(subscription: Any) -> None:
    """Stop whatever reads ``subscription``: its loop meets _Finished next time round."""
    stream, subscription._client_stream = subscription._client_stream, _Finished()
    stream.cancel()


def read(subscription: TopicSubscribe.Subscription, timeout: float = 5.0) -> Any:
    """The SDK's next item, or None if ``next()`` has not returned within ``timeout``
    (the subscription is then abandoned: cancelled, its reading thread ended)."""
    box: list[TopicSubscriptionItemResponse] = []

    def reader() -> None:
        with suppress(_Abandoned):
            box.append(next(subscription))

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        _abandon(subscription)
        thread.join(5)
        assert not thread.is_alive()
        return None
    return box[0]


def texts(subscription: TopicSubscribe.Subscription, count: int) -> list[tuple[str, int]]:
    found = []
    for _ in range(count):
        item = read(subscription)
        assert isinstance(item, TopicSubscriptionItem.Text), item
        found.append((item.value, item.sequence_number))
    return found


def eventually(check: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@contextmanager
def raw_stub(server: LocalMomentoServer) -> Iterator[Any]:
    with grpc.insecure_channel(server.endpoint) as channel:
        yield pb_grpc.PubsubStub(channel)  # type: ignore[no-untyped-call]


def raw_subscribe(stub: Any, topic: str, resume_at: int = 0, page: int = 0) -> Any:
    request = pb._SubscriptionRequest(
        cache_name=DEFAULT_CACHE,
        topic=topic,
        resume_at_topic_sequence_number=resume_at,
        sequence_page=page,
    )
    return stub.Subscribe(request, timeout=10)


def kind(message: Any) -> str:
    name = message.WhichOneof("kind")
    assert isinstance(name, str)
    return name


def after_heartbeats(stream: Any) -> Any:
    """The raw stream's next message that is not a heartbeat."""
    for _ in range(1000):
        message = next(stream)
        if kind(message) != "heartbeat":
            return message
    raise AssertionError("only heartbeats")


# The SDK, sync -----------------------------------------------------------------------


def test_subscribers_get_every_message_in_order_and_other_topics_none(
    topics: TopicClient, momento_server: LocalMomentoServer
) -> None:
    first, second, other = subscribe(topics, "a"), subscribe(topics, "a"), subscribe(topics, "b")
    assert momento_server.subscriptions() == 3
    assert momento_server.subscriptions("a", cache=DEFAULT_CACHE) == 2
    for n in range(5):
        assert isinstance(topics.publish(DEFAULT_CACHE, "a", f"m{n}"), TopicPublish.Success)
    assert isinstance(topics.publish(DEFAULT_CACHE, "a", b"\x00\xff"), TopicPublish.Success)
    topics.publish(DEFAULT_CACHE, "b", "only-b")
    expected = [(f"m{n}", n + 1) for n in range(5)]
    for subscriber in (first, second):
        assert texts(subscriber, 5) == expected
        binary = read(subscriber)
        assert isinstance(binary, TopicSubscriptionItem.Binary)
        assert (binary.value, binary.sequence_number) == (b"\x00\xff", 6)
    # "b" numbers its own messages; nothing of "a" came first.
    assert texts(other, 1) == [("only-b", 1)]
    assert momento_server.calls("Publish") == 7
    assert momento_server.calls("Subscribe") == 3


def test_a_topic_keeps_one_page_for_its_lifetime_and_reset_starts_a_new_one(
    topics: TopicClient, momento_server: LocalMomentoServer
) -> None:
    subscription = subscribe(topics, "t")
    topics.publish(DEFAULT_CACHE, "t", "x")
    topics.publish(DEFAULT_CACHE, "t", "y")
    pages = set()
    for _ in range(2):
        item = read(subscription)
        assert isinstance(item, TopicSubscriptionItem.Text)
        pages.add(item.sequence_page)
    assert len(pages) == 1
    assert 0 not in pages
    _abandon(subscription)
    momento_server.reset()
    assert momento_server.publish_raw("t", "z") == 1  # numbering starts again
    with raw_stub(momento_server) as stub:
        stream = raw_subscribe(stub, "t", resume_at=1)
        item = after_heartbeats(stream).item
        assert item.value.text == "z"
        assert item.sequence_page not in pages
        stream.cancel()


def test_an_unknown_cache_answers_not_found(topics: TopicClient) -> None:
    published = topics.publish("no-such-cache", "t", "x")
    assert isinstance(published, TopicPublish.Error)
    assert published.error_code is MomentoErrorCode.NOT_FOUND_ERROR
    subscribed = topics.subscribe("no-such-cache", "t")
    assert isinstance(subscribed, TopicSubscribe.Error)
    assert subscribed.error_code is MomentoErrorCode.NOT_FOUND_ERROR


def test_skipped_messages_show_as_a_gap_in_the_sequence_numbers(
    topics: TopicClient, momento_server: LocalMomentoServer
) -> None:
    subscription = subscribe(topics, "t")
    topics.publish(DEFAULT_CACHE, "t", "one")
    assert momento_server.skip_messages("t", 2) == 4  # 2 and 3 are lost
    assert momento_server.publish_raw("t", "four") == 4
    topics.publish(DEFAULT_CACHE, "t", "five")
    assert texts(subscription, 3) == [("one", 1), ("four", 4), ("five", 5)]
    assert momento_server.calls("Publish") == 2  # publish_raw is not a call
    with pytest.raises(KeyError):
        momento_server.skip_messages("t", cache="no-such-cache")


def test_heartbeats_flow_while_idle_and_keep_the_subscription(
    topics: TopicClient, momento_server: LocalMomentoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(momento_server, "heartbeat_interval", 0.1)
    subscription = subscribe(topics, "t")
    with raw_stub(momento_server) as stub:
        stream = raw_subscribe(stub, "t")
        started = time.monotonic()
        kinds = [kind(next(stream)) for _ in range(4)]
        assert kinds == ["heartbeat"] * 4
        assert 0.25 < time.monotonic() - started < 2  # the first at once, then every 0.1 s
        topics.publish(DEFAULT_CACHE, "t", "late")
        # Heartbeats take no sequence number; the SDK skips them.
        assert texts(subscription, 1) == [("late", 1)]
        assert after_heartbeats(stream).item.topic_sequence_number == 1
        stream.cancel()


def test_a_subscription_resumes_from_a_sequence_number(
    topics: TopicClient, momento_server: LocalMomentoServer
) -> None:
    first = subscribe(topics, "t")
    for value in ("a", "b", "c"):
        topics.publish(DEFAULT_CACHE, "t", value)
    items = [read(first) for _ in range(3)]
    assert all(isinstance(i, TopicSubscriptionItem.Text) for i in items)
    page = items[-1].sequence_page
    _abandon(first)
    resumed = subscribe(
        topics, "t", resume_at_topic_sequence_number=2, resume_at_topic_sequence_page=page
    )
    topics.publish(DEFAULT_CACHE, "t", "d")
    assert texts(resumed, 3) == [("b", 2), ("c", 3), ("d", 4)]
    # Another page's numbers mean nothing here: live from now on.
    elsewhere = subscribe(
        topics, "t", resume_at_topic_sequence_number=2, resume_at_topic_sequence_page=page + 1
    )
    topics.publish(DEFAULT_CACHE, "t", "e")
    assert texts(elsewhere, 1) == [("e", 5)]


def test_the_client_timeout_is_the_subscription_deadline(
    momento_server: LocalMomentoServer,
) -> None:
    short = TopicConfigurations.Default.v1().with_client_timeout(timedelta(seconds=1))
    with (
        TopicClient(short, momento_server.credential_provider()) as brief,
        TopicClient(LONG_LIVED, momento_server.credential_provider()) as lasting,
    ):
        ending, staying = subscribe(brief, "t"), subscribe(lasting, "t")
        stream = ending._client_stream
        assert eventually(stream.done, within=3)
        assert stream.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert eventually(lambda: momento_server.subscriptions() == 1, within=1)
        lasting.publish(DEFAULT_CACHE, "t", "still here")
        assert texts(staying, 1) == [("still here", 1)]


def test_a_dropped_connection_ends_the_stream_at_once_but_the_sdk_never_says_so(
    topics: TopicClient, momento_server: LocalMomentoServer
) -> None:
    subscription = subscribe(topics, "t")
    topics.publish(DEFAULT_CACHE, "t", "before")
    assert texts(subscription, 1) == [("before", 1)]
    started = time.monotonic()
    momento_server.drop_connections()
    assert momento_server.subscriptions() == 0  # its handler has returned
    stream = subscription._client_stream
    assert eventually(stream.done, within=1)
    assert time.monotonic() - started < 1.5
    assert stream.code() is grpc.StatusCode.UNAVAILABLE
    # The SDK's next() loops on the finished call instead of answering an Error.
    assert read(subscription, timeout=0.5) is None
    # A new subscription works on the listening server, numbers carrying on.
    again = subscribe(topics, "t")
    topics.publish(DEFAULT_CACHE, "t", "after")
    assert texts(again, 1) == [("after", 2)]


def test_faults_apply_to_publish_and_subscribe(
    topics: TopicClient, momento_server: LocalMomentoServer
) -> None:
    momento_server.fail("Subscribe", code=grpc.StatusCode.UNAVAILABLE, times=1)
    refused = topics.subscribe(DEFAULT_CACHE, "t")
    assert isinstance(refused, TopicSubscribe.Error)
    assert refused.error_code is MomentoErrorCode.SERVER_UNAVAILABLE
    momento_server.delay("Subscribe", seconds=0.3, times=1)
    started = time.monotonic()
    subscription = subscribe(topics, "t")
    assert time.monotonic() - started >= 0.3
    momento_server.fail("Publish", code=grpc.StatusCode.PERMISSION_DENIED, times=1)
    failed = topics.publish(DEFAULT_CACHE, "t", "lost")
    assert isinstance(failed, TopicPublish.Error)
    assert failed.error_code is MomentoErrorCode.PERMISSION_ERROR
    topics.publish(DEFAULT_CACHE, "t", "kept")
    assert texts(subscription, 1) == [("kept", 1)]
    assert momento_server.calls("Subscribe") == 2
    assert momento_server.calls("Publish") == 2
    momento_server.fail()  # without names: the cache data RPCs only
    topics.publish(DEFAULT_CACHE, "t", "still")
    assert texts(subscription, 1) == [("still", 2)]


def test_subscriptions_have_their_own_threads_and_a_limit() -> None:
    server = LocalMomentoServer(max_workers=2, max_subscriptions=3).start()
    try:
        with (
            TopicClient(LONG_LIVED, server.credential_provider()) as client,
            CacheClient(
                Configurations.Laptop.latest().with_client_timeout(timedelta(seconds=5)),
                server.credential_provider(),
                timedelta(seconds=60),
            ) as cache,
        ):
            live = [subscribe(client, f"t{n}") for n in range(3)]
            over = client.subscribe(DEFAULT_CACHE, "t3")
            assert isinstance(over, TopicSubscribe.Error)
            assert over.error_code is MomentoErrorCode.LIMIT_EXCEEDED_ERROR
            # Other calls still have their threads.
            assert isinstance(cache.set(DEFAULT_CACHE, "k", b"v"), CacheSet.Success)
            client.publish(DEFAULT_CACHE, "t0", "x")
            assert texts(live[0], 1) == [("x", 1)]
            live[0].unsubscribe()
            assert eventually(lambda: server.subscriptions() == 2, within=1)
            subscribe(client, "t3")
            server.stop()  # returns once the subscriptions' handlers have
            assert server.subscriptions() == 0
    finally:
        server.stop()


def test_end_subscriptions_leaves_the_connection(
    topics: TopicClient, momento_server: LocalMomentoServer
) -> None:
    kept, ended = subscribe(topics, "keep"), subscribe(topics, "end")
    assert momento_server.end_subscriptions("end", code=grpc.StatusCode.INTERNAL) == 1
    stream = ended._client_stream
    assert eventually(stream.done, within=1)
    assert stream.code() is grpc.StatusCode.INTERNAL
    assert eventually(lambda: momento_server.subscriptions() == 1, within=1)
    topics.publish(DEFAULT_CACHE, "keep", "x")
    assert texts(kept, 1) == [("x", 1)]


# The raw stub: what the SDK hides --------------------------------------------------


def test_the_raw_stream_fails_promptly_when_connections_drop(
    momento_server: LocalMomentoServer,
) -> None:
    with raw_stub(momento_server) as stub:
        stream = raw_subscribe(stub, "t")
        assert kind(next(stream)) == "heartbeat"
        outcome: list[Any] = []

        def drain() -> None:
            try:
                for _ in stream:
                    pass
                outcome.append("ended without an error")
            except grpc.RpcError as error:
                outcome.append(error)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        started = time.monotonic()
        momento_server.drop_connections()
        reader.join(2)
        assert not reader.is_alive()
        assert time.monotonic() - started < 1
        assert outcome[0].code() is grpc.StatusCode.UNAVAILABLE


def test_resuming_past_the_history_kept_gets_a_discontinuity() -> None:
    with LocalMomentoServer(topic_history=2) as server, raw_stub(server) as stub:
        for n in range(1, 6):
            assert server.publish_raw("t", f"m{n}") == n  # 4 and 5 kept
        stream = raw_subscribe(stub, "t", resume_at=2)  # page 0: whatever it is
        messages = [next(stream) for _ in range(4)]
        assert [kind(m) for m in messages] == ["heartbeat", "discontinuity", "item", "item"]
        page = messages[2].item.sequence_page
        gap = messages[1].discontinuity
        assert (gap.last_topic_sequence, gap.new_topic_sequence) == (1, 4)
        assert gap.new_sequence_page == page != 0
        assert [m.item.topic_sequence_number for m in messages[2:]] == [4, 5]
        assert messages[2].item.value.text == "m4"
        assert messages[3].item.sequence_page == page
        stream.cancel()

        # Kept: replayed with no discontinuity. Another page: one, then live.
        stream = raw_subscribe(stub, "t", resume_at=5, page=page)
        assert [kind(next(stream)) for _ in range(2)] == ["heartbeat", "item"]
        stream.cancel()
        stream = raw_subscribe(stub, "t", resume_at=3, page=page + 1)
        assert kind(next(stream)) == "heartbeat"
        gap = next(stream).discontinuity
        assert (gap.last_topic_sequence, gap.new_topic_sequence, gap.new_sequence_page) == (
            2,
            6,
            page,
        )
        server.publish_raw("t", b"\x01")
        item = next(stream).item
        assert (item.topic_sequence_number, item.value.binary) == (6, b"\x01")
        stream.cancel()


def test_a_subscriber_that_falls_behind_the_history_gets_a_discontinuity() -> None:
    server = LocalMomentoServer(topic_history=2)  # not started: the topics alone
    topics = server.topics
    subscription = topics.subscribe(DEFAULT_CACHE, "t", 0, 0, limit=1)
    assert subscription is not None
    assert topics.subscribe(DEFAULT_CACHE, "t", 0, 0, limit=1) is None
    for n in range(1, 6):
        server.publish_raw("t", f"m{n}")
    due = topics.take(subscription, 0, lambda: True)
    assert due is not None
    assert [m.WhichOneof("kind") for m in due] == ["discontinuity", "item", "item"]
    assert (due[0].discontinuity.last_topic_sequence, due[0].discontinuity.new_topic_sequence) == (
        0,
        4,
    )
    assert topics.take(subscription, 0, lambda: True) == []
    topics.leave(subscription)


def test_reset_and_deleting_the_cache_end_subscriptions(
    momento_server: LocalMomentoServer,
) -> None:
    momento_server.store.create("other")
    with raw_stub(momento_server) as stub:
        in_default = raw_subscribe(stub, "t")
        request = pb._SubscriptionRequest(cache_name="other", topic="t")
        in_other = stub.Subscribe(request, timeout=10)
        assert kind(next(in_default)) == kind(next(in_other)) == "heartbeat"
        with CacheClient(
            Configurations.Laptop.latest(),
            momento_server.credential_provider(),
            timedelta(seconds=60),
        ) as cache:
            cache.delete_cache("other")
        with pytest.raises(grpc.RpcError) as deleted:
            next(in_other)
        assert deleted.value.code() is grpc.StatusCode.NOT_FOUND
        momento_server.publish_raw("t", "x")
        assert kind(next(in_default)) == "item"
        momento_server.reset()
        with pytest.raises(grpc.RpcError) as reset:
            next(in_default)
        assert reset.value.code() is grpc.StatusCode.UNAVAILABLE
        assert eventually(lambda: momento_server.subscriptions() == 0, within=1)


def test_publish_checks_its_request(momento_server: LocalMomentoServer) -> None:
    with raw_stub(momento_server) as stub:
        for request in (
            pb._PublishRequest(cache_name=DEFAULT_CACHE, topic="t"),  # no value
            pb._PublishRequest(cache_name=DEFAULT_CACHE, value=pb._TopicValue(text="x")),
            pb._PublishRequest(topic="t", value=pb._TopicValue(text="x")),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                stub.Publish(request, timeout=5)
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


# The SDK, async ----------------------------------------------------------------------


async def aread(subscription: TopicSubscribe.SubscriptionAsync, timeout: float = 5.0) -> Any:
    """The SDK's next item, or None if it has not come within ``timeout``; a watchdog
    thread ends the SDK's read loop if it spins (it never awaits, so the event loop
    cannot time it out)."""
    watchdog = threading.Timer(timeout, _abandon, (subscription,))
    watchdog.start()
    try:
        return await asyncio.wait_for(subscription.__anext__(), timeout)
    except (_Abandoned, asyncio.TimeoutError):
        return None
    finally:
        watchdog.cancel()


def test_async_subscribers_get_messages_in_order_and_errors_for_an_unknown_cache(
    momento_server: LocalMomentoServer,
) -> None:
    async def main() -> None:
        async with TopicClientAsync(LONG_LIVED, momento_server.credential_provider()) as client:
            first = await client.subscribe(DEFAULT_CACHE, "t")
            second = await client.subscribe(DEFAULT_CACHE, "t")
            assert isinstance(first, TopicSubscribe.SubscriptionAsync)
            assert isinstance(second, TopicSubscribe.SubscriptionAsync)
            for n in range(3):
                assert isinstance(
                    await client.publish(DEFAULT_CACHE, "t", f"m{n}"), TopicPublish.Success
                )
            for subscription in (first, second):
                got = [await aread(subscription) for _ in range(3)]
                assert [(i.value, i.sequence_number) for i in got] == [
                    ("m0", 1),
                    ("m1", 2),
                    ("m2", 3),
                ]
            missing = await client.subscribe("no-such-cache", "t")
            assert isinstance(missing, TopicSubscribe.Error)
            assert missing.error_code is MomentoErrorCode.NOT_FOUND_ERROR
            published = await client.publish("no-such-cache", "t", "x")
            assert isinstance(published, TopicPublish.Error)
            assert published.error_code is MomentoErrorCode.NOT_FOUND_ERROR
            first.unsubscribe()
            second.unsubscribe()

    asyncio.run(main())


def test_async_after_a_dropped_connection_the_sdk_holds_the_event_loop(
    momento_server: LocalMomentoServer,
) -> None:
    async def main() -> None:
        async with TopicClientAsync(LONG_LIVED, momento_server.credential_provider()) as client:
            subscription = await client.subscribe(DEFAULT_CACHE, "t")
            assert isinstance(subscription, TopicSubscribe.SubscriptionAsync)
            await asyncio.to_thread(momento_server.drop_connections)
            stream = subscription._client_stream
            for _ in range(100):
                if stream.done():
                    break
                await asyncio.sleep(0.01)
            assert stream.done()
            assert await stream.code() is grpc.StatusCode.UNAVAILABLE
            ticks: list[float] = []

            async def tick() -> None:
                while True:
                    ticks.append(time.monotonic())
                    await asyncio.sleep(0.01)

            ticker = asyncio.ensure_future(tick())
            await asyncio.sleep(0.05)
            # No Error item: __anext__ loops on the finished call, never awaiting, until
            # the watchdog ends it; meanwhile nothing else on the loop runs.
            assert await aread(subscription, timeout=0.5) is None
            await asyncio.sleep(0.05)
            ticker.cancel()
            assert max(b - a for a, b in itertools.pairwise(ticks)) >= 0.45

    asyncio.run(main())
