"""Configuration: validated when built, from the environment, clear errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import pytest

import momento_botocore
from momento_botocore import CacheConfig, ConfigurationError


def test_ttl_accepts_seconds_and_timedelta() -> None:
    assert CacheConfig(ttl=timedelta(minutes=5)).ttl == 300.0
    assert CacheConfig(ttl=30).ttl == 30.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ttl": None}, "ttl is required"),
        ({"ttl": 0}, "more than 0"),
        ({"ttl": -1}, "more than 0"),
        ({"ttl": 86401}, "24 h"),
        ({"ttl": "60"}, "seconds or a timedelta"),
        ({"ttl": 60, "table_ttls": {"t": 100_000}}, "24 h"),
        ({"ttl": 60, "tables": ("orders|users",)}, "glob pattern"),
        ({"ttl": 60, "tables": ("^orders$",)}, "glob pattern"),
        ({"ttl": 60, "tables": ()}, "nothing would be cached"),
        ({"ttl": 60, "backend": "redis"}, "unknown backend 'redis'"),
        ({"ttl": 60, "key_prefix": "a b"}, "key_prefix"),
        ({"ttl": 60, "memory_max_entries": 0}, "memory_max_entries"),
    ],
)
def test_bad_settings_raise_clear_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CacheConfig(**kwargs)


def test_tables_and_per_table_ttls_match_names_and_globs_in_order() -> None:
    config = CacheConfig(
        ttl=60, tables=("orders-*", "users"), table_ttls={"orders-eu": 5, "orders-*": 30}
    )
    assert config.settings_for("audit") is None
    users = config.settings_for("users")
    assert users is not None
    assert users.ttl == 60.0
    assert users.absent_ttl == 60.0
    eu = config.settings_for("orders-eu")
    assert eu is not None
    assert eu.ttl == 5.0
    assert eu.absent_ttl == 5.0
    us = config.settings_for("orders-us")
    assert us is not None
    assert us.ttl == 30.0


def test_absent_ttl_defaults_shorter_than_the_item_ttl() -> None:
    config = CacheConfig(ttl=600)
    settings = config.settings_for("t")
    assert settings is not None
    assert settings.absent_ttl == 60.0


def test_from_env_reads_every_setting() -> None:
    config = CacheConfig.from_env(
        {
            "MOMENTO_BOTOCORE_TTL_SECONDS": "120",
            "MOMENTO_BOTOCORE_TABLE_TTLS": "orders=10, users*=20",
            "MOMENTO_BOTOCORE_ABSENT_TTL_SECONDS": "7",
            "MOMENTO_BOTOCORE_TOMBSTONE_TTL_SECONDS": "3",
            "MOMENTO_BOTOCORE_TABLES": "orders, users*",
            "MOMENTO_BOTOCORE_KEY_PREFIX": "app:",
            "MOMENTO_BOTOCORE_BACKEND": "memory",
            "MOMENTO_CACHE_NAME": "cache",
            "MOMENTO_API_KEY": "secret-key",
        }
    )
    assert config.ttl == 120.0
    assert config.table_ttls == {"orders": 10.0, "users*": 20.0}
    assert config.absent_ttl == 7.0
    assert config.tombstone_ttl == 3.0
    assert config.tables == ("orders", "users*")
    assert config.key_prefix == "app:"
    assert config.momento_cache_name == "cache"
    assert "secret-key" not in repr(config)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "MOMENTO_BOTOCORE_TTL_SECONDS is not set"),
        ({"MOMENTO_BOTOCORE_TTL_SECONDS": "soon"}, "is not a number"),
        (
            {"MOMENTO_BOTOCORE_TTL_SECONDS": "60", "MOMENTO_BOTOCORE_BACKEND": "x"},
            "unknown backend",
        ),
        (
            {"MOMENTO_BOTOCORE_TTL_SECONDS": "60", "MOMENTO_BOTOCORE_TABLE_TTLS": "a:5"},
            "table=seconds",
        ),
    ],
)
def test_from_env_errors_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CacheConfig.from_env(environ)


def test_keyword_overrides_win_over_the_environment() -> None:
    config = CacheConfig.from_env({"MOMENTO_BOTOCORE_TTL_SECONDS": "60"}, ttl=5)
    assert config.ttl == 5.0


@pytest.mark.parametrize("account", ["12345678901", "1234567890123", "12345678901a", 123456789012])
def test_account_id_must_be_twelve_digits(account: Any) -> None:
    with pytest.raises(ConfigurationError, match="account_id must be a 12-digit"):
        CacheConfig(ttl=1, account_id=account)


def test_account_id_comes_from_the_environment_or_register() -> None:
    environ = {"MOMENTO_BOTOCORE_TTL_SECONDS": "1", "MOMENTO_BOTOCORE_ACCOUNT_ID": "111111111111"}
    assert CacheConfig.from_env(environ).account_id == "111111111111"
    with pytest.raises(ConfigurationError, match="MOMENTO_BOTOCORE_ACCOUNT_ID"):
        CacheConfig.from_env({**environ, "MOMENTO_BOTOCORE_ACCOUNT_ID": "1111-1111-1111"})
    registration = momento_botocore.register(
        boto3.Session(region_name="us-east-1"), ttl=1, account_id="222222222222"
    )
    assert registration.config.account_id == "222222222222"
