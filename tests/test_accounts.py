"""The account rule: one process, two AWS accounts, one cache, never each other's items.

moto's server maps the credentials of ``sts.assume_role`` into the role's account, so
two sessions in one process read two tables ``orders`` of two accounts.
"""

from __future__ import annotations

import logging
import uuid
from collections import namedtuple
from typing import Any

import botocore
import pytest
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import ClientError
from conftest import ACCOUNT, REGION, RequestCounter, create_table, new_session

import momento_botocore
from momento_botocore.accounts import CallerAccounts, ClientAccounts
from momento_botocore.backends import MemoryBackend
from momento_botocore.core.entries import EntryKind, decode
from momento_botocore.core.keys import cache_key
from momento_botocore.streams import make_handler
from momento_botocore.tailer import TRIM_HORIZON, StreamTailer

A, B = "111111111111", "222222222222"
KEY = {"id": {"S": "order-1"}}
NOWHERE = "http://127.0.0.1:9"  # nothing listens: an STS call there fails at once


def role_credentials(endpoint: str, account: str) -> dict[str, str]:
    """Assume-role credentials of ``account``, to pass explicitly (so they do not
    name their account: it is found with STS)."""
    sts = new_session().client("sts", endpoint_url=endpoint)
    role = f"arn:aws:iam::{account}:role/reader"
    credentials = sts.assume_role(RoleArn=role, RoleSessionName="test")["Credentials"]
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


def seed_orders(endpoint: str, credentials: dict[str, str], owner: str, **extra: Any) -> None:
    """The account's own table ``orders`` with one item, written uncached (call before
    registering: a write through a cached client leaves a tombstone, no fills for a while)."""
    client = new_session(**credentials).client("dynamodb", endpoint_url=endpoint)
    create_table(client, "orders", hash_key=("id", "S"), **extra)
    client.put_item(TableName="orders", Item={**KEY, "owner": {"S": owner}})


def client_of(endpoint: str, credentials: dict[str, str]) -> Any:
    return new_session(**credentials).client("dynamodb", endpoint_url=endpoint)


def owner_of(answer: dict[str, Any]) -> str | None:
    item = answer.get("Item")
    return None if item is None else item["owner"]["S"]


@pytest.fixture
def two_accounts(endpoint: str) -> tuple[Any, Any]:
    """Clients of accounts A and B, registered the zero-code way: one shared backend."""
    credentials_a, credentials_b = role_credentials(endpoint, A), role_credentials(endpoint, B)
    seed_orders(endpoint, credentials_a, "A")
    seed_orders(endpoint, credentials_b, "B")
    momento_botocore.register(None, ttl=60, backend=MemoryBackend())
    return client_of(endpoint, credentials_a), client_of(endpoint, credentials_b)


def test_get_item_of_each_account_returns_its_own_item(two_accounts: tuple[Any, Any]) -> None:
    client_a, client_b = two_accounts
    sent_a, sent_b = RequestCounter(client_a, "GetItem"), RequestCounter(client_b, "GetItem")
    for _ in range(3):
        assert owner_of(client_a.get_item(TableName="orders", Key=KEY)) == "A"
        assert owner_of(client_b.get_item(TableName="orders", Key=KEY)) == "B"
    assert (sent_a.count, sent_b.count) == (1, 1), "each account's reads are cached"


def test_batch_get_item_of_each_account_returns_its_own_item(
    two_accounts: tuple[Any, Any],
) -> None:
    client_a, client_b = two_accounts
    sent_b = RequestCounter(client_b, "BatchGetItem")
    request = {"orders": {"Keys": [KEY]}}
    for _ in range(3):
        answer_a = client_a.batch_get_item(RequestItems=request)["Responses"]["orders"]
        answer_b = client_b.batch_get_item(RequestItems=request)["Responses"]["orders"]
        assert [item["owner"]["S"] for item in answer_a] == ["A"]
        assert [item["owner"]["S"] for item in answer_b] == ["B"]
    assert sent_b.count == 1, "the second and third batches are served from the cache"


def test_get_item_by_a_foreign_table_arn_is_answered_by_dynamodb(
    two_accounts: tuple[Any, Any],
) -> None:
    client_a, client_b = two_accounts
    assert owner_of(client_a.get_item(TableName="orders", Key=KEY)) == "A"  # A's entry filled
    assert owner_of(client_b.get_item(TableName="orders", Key=KEY)) == "B"  # B's entry filled
    foreign = f"arn:aws:dynamodb:{REGION}:{B}:table/orders"
    for _ in range(2):
        with pytest.raises(ClientError) as raised:
            client_a.get_item(TableName=foreign, Key=KEY)
        assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError):
        client_a.batch_get_item(RequestItems={foreign: {"Keys": [KEY]}})


def test_get_item_by_the_own_table_arn_shares_the_plain_names_entry(
    two_accounts: tuple[Any, Any],
) -> None:
    client_a, _ = two_accounts
    sent = RequestCounter(client_a, "GetItem")
    assert owner_of(client_a.get_item(TableName="orders", Key=KEY)) == "A"
    own = f"arn:aws:dynamodb:{REGION}:{A}:table/orders"
    assert owner_of(client_a.get_item(TableName=own, Key=KEY)) == "A"
    assert sent.count == 1


def test_a_write_in_one_account_invalidates_only_that_accounts_entry(
    two_accounts: tuple[Any, Any],
) -> None:
    client_a, client_b = two_accounts
    sent_b = RequestCounter(client_b, "GetItem")
    client_a.get_item(TableName="orders", Key=KEY)
    client_b.get_item(TableName="orders", Key=KEY)
    client_a.put_item(TableName="orders", Item={**KEY, "owner": {"S": "A2"}})
    assert owner_of(client_a.get_item(TableName="orders", Key=KEY)) == "A2"
    assert owner_of(client_b.get_item(TableName="orders", Key=KEY)) == "B"
    assert sent_b.count == 1, "B's entry was not touched by A's write"


def test_the_stream_side_keys_records_by_the_account_of_their_table(endpoint: str) -> None:
    credentials_a, credentials_b = role_credentials(endpoint, A), role_credentials(endpoint, B)
    seed_orders(endpoint, credentials_a, "A", stream_view="NEW_IMAGE")
    seed_orders(endpoint, credentials_b, "B")
    backend = momento_botocore.MemoryBackend()
    registration = momento_botocore.register(None, ttl=60, backend=backend)
    client_a = client_of(endpoint, credentials_a)
    session_a = new_session(**credentials_a)
    tailer = StreamTailer(
        make_handler(registration.config, backend=backend),
        table="orders",
        client=session_a.client("dynamodbstreams", endpoint_url=endpoint),
        start=TRIM_HORIZON,
    )
    assert f":{A}:table/orders/stream/" in tailer.resolve_stream()
    tailer.drain()
    entry = decode(backend.get(cache_key(A, REGION, "orders", KEY)))
    assert entry is not None
    assert entry.kind is EntryKind.ITEM
    assert entry.item is not None
    assert entry.item["owner"] == {"S": "A"}
    assert backend.get(cache_key(B, REGION, "orders", KEY)) is None
    sent = RequestCounter(client_a, "GetItem")
    assert owner_of(client_a.get_item(TableName="orders", Key=KEY)) == "A"
    assert sent.count == 0, "the stream's refresh answers A's read"


# Finding a client's account ----------------------------------------------------------


def unique_credentials() -> dict[str, str]:
    """Access keys no other test has used (STS answers are remembered per access key)."""
    return {
        "aws_access_key_id": f"AKIA{uuid.uuid4().hex[:16].upper()}",
        "aws_secret_access_key": "testing",
    }


def test_a_client_whose_account_cannot_be_found_runs_uncached_and_says_so_once(
    endpoint: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", NOWHERE)  # STS unreachable
    session = new_session(**unique_credentials())
    registration = momento_botocore.register(session, ttl=60, backend=MemoryBackend())
    client = session.client("dynamodb", endpoint_url=endpoint)
    create_table(client, "items")
    client.put_item(TableName="items", Item={"pk": {"S": "a"}})
    sent = RequestCounter(client, "GetItem")
    with caplog.at_level(logging.WARNING, logger="momento_botocore"):
        for _ in range(3):
            assert client.get_item(TableName="items", Key={"pk": {"S": "a"}})["Item"]
        client.batch_get_item(RequestItems={"items": {"Keys": [{"pk": {"S": "a"}}]}})
    assert sent.count == 3, "every read went to DynamoDB"
    assert len(registration.backend) == 0, "nothing was cached"  # type: ignore[arg-type]
    assert momento_botocore.stats()["items"]["bypasses"] >= 4
    unknown = [r for r in caplog.records if "account of a DynamoDB client is unknown" in r.message]
    assert len(unknown) == 1


def test_a_write_by_a_client_of_unknown_account_leaves_no_stale_entry(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", NOWHERE)  # STS unreachable
    backend = MemoryBackend()
    known = new_session(**unique_credentials())
    momento_botocore.register(known, ttl=60, backend=backend, account_id=ACCOUNT)
    reader = known.client("dynamodb", endpoint_url=endpoint)
    create_table(reader, "items")
    reader.put_item(TableName="items", Item={"pk": {"S": "a"}, "v": {"S": "old"}})
    reader.get_item(TableName="items", Key={"pk": {"S": "a"}})  # cached
    unknown = new_session(**unique_credentials())
    momento_botocore.register(unknown, ttl=60, backend=backend)
    writer = unknown.client("dynamodb", endpoint_url=endpoint)
    writer.put_item(TableName="items", Item={"pk": {"S": "a"}, "v": {"S": "new"}})
    # Its key has no account, so no tombstone: the write fences the table instead.
    answer = reader.get_item(TableName="items", Key={"pk": {"S": "a"}})
    assert answer["Item"]["v"] == {"S": "new"}
    assert momento_botocore.stats()["items"]["tables_fenced"] == 1


def test_the_account_id_setting_needs_no_sts(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", NOWHERE)
    session = new_session(**unique_credentials())
    backend = MemoryBackend()
    momento_botocore.register(session, ttl=60, backend=backend, account_id=ACCOUNT)
    client = session.client("dynamodb", endpoint_url=endpoint)
    create_table(client, "items")
    sent = RequestCounter(client, "GetItem")
    for _ in range(2):
        client.get_item(TableName="items", Key={"pk": {"S": "a"}})
    assert sent.count == 1
    assert backend.get(cache_key(ACCOUNT, REGION, "items", {"pk": {"S": "a"}})) is not None


def test_the_account_botocores_credentials_carry_needs_no_sts(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_ACCOUNT_ID beside environment credentials: botocore 1.37 and later put it
    on the credentials; older botocore does not know it (then: STS, here unreachable)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", NOWHERE)
    for name, value in unique_credentials().items():
        monkeypatch.setenv(name.upper(), value)
    monkeypatch.setenv("AWS_ACCOUNT_ID", ACCOUNT)
    session = new_session(from_environment=True)
    backend = MemoryBackend()
    momento_botocore.register(session, ttl=60, backend=backend)
    client = session.client("dynamodb", endpoint_url=endpoint)
    create_table(client, "items")
    sent = RequestCounter(client, "GetItem")
    for _ in range(2):
        client.get_item(TableName="items", Key={"pk": {"S": "a"}})
    carries_account = "account_id" in ReadOnlyCredentials._fields
    assert sent.count == (1 if carries_account else 2), botocore.__version__
    key = cache_key(ACCOUNT, REGION, "items", {"pk": {"S": "a"}})
    assert (backend.get(key) is not None) is carries_account


# Unit tests: old botocore's credentials, remembered answers and failures ------------

OldReadOnlyCredentials = namedtuple("OldReadOnlyCredentials", ["access_key", "secret_key", "token"])


class OldCredentials:
    """botocore 1.34's credentials: no ``account_id`` anywhere."""

    def __init__(self, access_key: str) -> None:
        self.frozen = OldReadOnlyCredentials(access_key, "secret", None)

    def get_frozen_credentials(self) -> Any:
        return self.frozen


NewReadOnlyCredentials = namedtuple(
    "NewReadOnlyCredentials", ["access_key", "secret_key", "token", "account_id"]
)


class NewCredentials:
    """botocore 1.37's credentials, which may carry their account."""

    def __init__(self, access_key: str, account: str) -> None:
        self.frozen = NewReadOnlyCredentials(access_key, "secret", None, account)

    def get_frozen_credentials(self) -> Any:
        return self.frozen


class FakeConfig:
    """Stands for a client's botocore Config: one per client, weakly referenced."""


class FakeClient:
    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials
        self.meta = type("Meta", (), {"region_name": REGION, "config": FakeConfig()})()

    def _get_credentials(self) -> Any:
        return self._credentials


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def accounts_for(
    answers: dict[str, str], asked: list[str], clock: Clock, configured: str | None = None
) -> ClientAccounts:
    def ask(frozen: Any, region: str | None) -> str:
        asked.append(frozen.access_key)
        if frozen.access_key not in answers:
            raise ConnectionError("STS unreachable")
        return answers[frozen.access_key]

    callers = CallerAccounts(ask, retry_after=300, clock=clock)
    return ClientAccounts(
        configured,
        lambda context: context["client"],
        callers=callers,
        retry_after=300,
        clock=clock,
    )


def context_of(client: FakeClient) -> dict[str, Any]:
    return {"client_config": client.meta.config, "client": client}


def test_old_botocore_credentials_are_resolved_once_per_access_key() -> None:
    asked: list[str] = []
    accounts = accounts_for({"K1": A, "K2": B}, asked, Clock())
    first, second = FakeClient(OldCredentials("K1")), FakeClient(OldCredentials("K1"))
    other = FakeClient(OldCredentials("K2"))
    for _ in range(3):
        assert accounts.of(context_of(first)) == A
        assert accounts.of(context_of(second)) == A
        assert accounts.of(context_of(other)) == B
    assert asked == ["K1", "K2"], "one STS call per access key, none on later calls"


def test_a_failed_lookup_is_remembered_for_a_while_not_retried_per_call() -> None:
    asked: list[str] = []
    clock = Clock()
    accounts = accounts_for({}, asked, clock)
    client = FakeClient(OldCredentials("K1"))
    for _ in range(5):
        assert accounts.of(context_of(client)) is None
    assert asked == ["K1"]
    clock.now = 301.0
    assert accounts.of(context_of(client)) is None
    assert asked == ["K1", "K1"], "tried again once the while is over"


def test_the_setting_is_used_before_sts_and_credentials_own_account_before_both() -> None:
    asked: list[str] = []
    accounts = accounts_for({"K1": A}, asked, Clock(), configured=B)
    assert accounts.of(context_of(FakeClient(OldCredentials("K1")))) == B
    assert asked == []
    carrying = FakeClient(NewCredentials("K2", A))  # botocore 1.37+: they name it
    assert accounts.of(context_of(carrying)) == A
    assert asked == []


def test_a_call_without_a_client_config_uses_the_setting() -> None:
    accounts = accounts_for({}, [], Clock(), configured=A)
    assert accounts.of({}) == A
    assert accounts_for({}, [], Clock()).of({}) is None
