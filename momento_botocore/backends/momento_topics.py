"""Momento Topics for the near cache (backends/near.py): publishing through the SDK's
``TopicClient``, the subscription over a gRPC stream of our own, and one near cache per
process for each cache, topic and store size (:func:`near_cache_for`)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Hashable, Iterator
from typing import Any

from momento_botocore.backends.base import BackendError
from momento_botocore.backends.near import _FLUSH_ALL, NearCache, NearStore, Subscription

#: A subscription's stream ends after its client's deadline (the SDK applies it to the
#: whole stream): it is made again, and the near store emptied, this often.
SUBSCRIPTION_LIFETIME = 3600.0
PUBLISH_TIMEOUT = 1.0


class MomentoTopic:
    """A topic of a Momento cache: published through the SDK's ``TopicClient``,
    subscribed to over a gRPC channel of its own. The SDK's subscription objects are
    not iterated: once their stream has ended they spin without ever reporting it
    (momento 1.29.1, tests/test_local_momento_topics.py)."""

    def __init__(self, cache_name: str, topic_name: str, credential_provider: Any) -> None:
        from datetime import timedelta

        from momento import TopicClient, TopicConfigurations

        self.cache_name = cache_name
        self.topic_name = topic_name
        self._provider = credential_provider
        self._publisher = TopicClient(
            TopicConfigurations.Default.v1().with_client_timeout(
                timedelta(seconds=PUBLISH_TIMEOUT)
            ),
            credential_provider,
        )
        self._lock = threading.Lock()
        self._channel: Any = None
        self._stub: Any = None

    def publish(self, value: bytes) -> None:
        from momento.responses import TopicPublish

        response = self._publisher.publish(self.cache_name, self.topic_name, value)
        if isinstance(response, TopicPublish.Error):
            raise BackendError(f"publish to topic {self.topic_name!r}: {response.message}")

    def subscribe(self) -> Subscription:
        from momento_wire_types import cachepubsub_pb2 as pubsub_pb

        request = pubsub_pb._SubscriptionRequest(cache_name=self.cache_name, topic=self.topic_name)
        metadata = [("authorization", str(self._provider.auth_token or ""))]
        call = self._subscription_stub().Subscribe(
            request, metadata=metadata, timeout=SUBSCRIPTION_LIFETIME
        )
        try:
            first = next(call)  # the service's first message is a heartbeat
        except Exception as error:
            call.cancel()
            raise BackendError(f"subscribe to topic {self.topic_name!r}: {error}") from error
        if first.WhichOneof("kind") != "heartbeat":
            call.cancel()
            raise BackendError(f"subscribe to topic {self.topic_name!r}: no heartbeat first")
        return _RawSubscription(call)

    def close(self) -> None:
        self._publisher.close()
        with self._lock:
            channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            channel.close()

    def _subscription_stub(self) -> Any:
        with self._lock:
            if self._stub is None:
                import grpc
                from momento_wire_types import cachepubsub_pb2_grpc as pubsub_grpc

                self._channel = _topic_channel(grpc, self._provider)
                self._stub = pubsub_grpc.PubsubStub(self._channel)  # type: ignore[no-untyped-call]
            return self._stub


def _topic_channel(grpc: Any, provider: Any) -> Any:
    """A channel to the endpoint the SDK's topic client uses (TLS on 443), with
    keepalive pings, so that a connection that dies quietly ends the subscription."""
    options = [
        ("grpc.keepalive_time_ms", 5000),
        ("grpc.keepalive_timeout_ms", 1000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    if provider.port == 443:
        return grpc.secure_channel(
            provider.cache_endpoint, grpc.ssl_channel_credentials(), options=options
        )
    return grpc.insecure_channel(f"{provider.cache_endpoint}:{provider.port}", options=options)


class _RawSubscription:
    def __init__(self, call: Any) -> None:
        self._call = call

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        for message in self._call:  # raises grpc.RpcError when the stream ends
            kind = message.WhichOneof("kind")
            if kind == "item":
                item = message.item
                value = item.value
                data = value.binary if value.WhichOneof("kind") == "binary" else value.text
                raw = data.encode() if isinstance(data, str) else bytes(data)
                yield item.sequence_page, item.topic_sequence_number, raw
            elif kind == "discontinuity":  # messages were lost: empty the store
                gap = message.discontinuity
                yield gap.new_sequence_page, gap.new_topic_sequence - 1, _FLUSH_ALL
        raise BackendError("the subscription's stream ended")

    def close(self) -> None:
        self._call.cancel()


#: The near caches of this process, by what they are for: registrations (and the sync
#: and async backends of one) on the same cache, topic and store size share one store
#: and one subscription.
_SHARED: dict[Hashable, NearCache] = {}
_SHARED_LOCK = threading.Lock()


def near_cache_for(
    config: Any, credential_provider: Any = None, *, shared: bool = True
) -> NearCache | None:
    """The near cache a configuration asks for in front of Momento (a store when
    ``near_cache_items`` > 0; publishing unless ``invalidation_topic`` is empty), or
    None when it asks for neither. The caller closes it once done: it is shared with
    the process's other users of the same one, unless ``shared`` is False (tests that
    play two processes in one)."""
    from momento_botocore.backends._momento_common import cache_name_of, credential_provider_for

    publish = bool(config.invalidation_topic)
    if config.near_cache_items <= 0 and not publish:
        return None
    provider = credential_provider or credential_provider_for(
        config.momento_api_key, config.momento_endpoint
    )
    cache_name = cache_name_of(config)
    token = str(getattr(provider, "auth_token", "") or "").encode()
    key = (
        getattr(provider, "cache_endpoint", None),
        getattr(provider, "port", None),
        hashlib.sha256(token).hexdigest(),
        cache_name,
        config.invalidation_topic,
        config.near_cache_items,
        config.near_cache_bytes,
        config.near_cache_ttl,
    )
    with _SHARED_LOCK:
        found = _SHARED.get(key) if shared else None
        again = found.share() if found is not None else None
        if again is not None:
            return again
        store = (
            NearStore(config.near_cache_items, config.near_cache_bytes, config.near_cache_ttl)
            if config.near_cache_items > 0
            else None
        )
        near = NearCache(
            MomentoTopic(cache_name, config.invalidation_topic, provider), store, publish=publish
        )
        if shared:
            near.on_close = lambda: _forget(key, near)
            _SHARED[key] = near
        return near


def _forget(key: Hashable, near: NearCache) -> None:
    with _SHARED_LOCK:
        if _SHARED.get(key) is near:
            del _SHARED[key]
