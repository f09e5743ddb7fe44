"""``momento-botocore doctor``: the report, the verdict and the exit code."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable, Sequence

import pytest

from momento_botocore.backends.base import Backend, BackendError
from momento_botocore.backends.factory import create_backend
from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.config import CacheConfig
from momento_botocore.doctor import run
from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer

GOOD = {
    "MOMENTO_BOTOCORE_TTL_SECONDS": "60",
    "MOMENTO_BOTOCORE_TABLES": "orders*,users",
    "MOMENTO_BOTOCORE_TABLE_TTLS": "orders-eu=30",
    "MOMENTO_API_KEY": "super-secret-api-key",
}


def doctor(
    environ: dict[str, str],
    tables: Sequence[str] = (),
    backend_factory: Callable[[CacheConfig], Backend] = create_backend,
) -> tuple[int, str]:
    out = io.StringIO()
    code = run(out, environ=environ, tables=tables, backend_factory=backend_factory)
    return code, out.getvalue()


class UnreachableBackend:
    """A cache that cannot be reached: every call fails."""

    def get(self, key: str) -> bytes | None:
        raise BackendError("connection refused")

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        raise BackendError("connection refused")

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        raise BackendError("connection refused")

    def delete(self, key: str) -> None:
        raise BackendError("connection refused")

    def close(self) -> None:
        pass


class ForgetfulBackend(MemoryBackend):
    """Accepts writes and keeps nothing."""

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        pass


def test_working_configuration_is_reported_with_tables_and_ttls() -> None:
    code, report = doctor(GOOD, tables=["orders-eu", "orders-us", "logs"])
    assert code == 0, report
    assert report.rstrip().endswith("Verdict: OK")
    assert "Configuration: valid, backend memory" in report
    assert "orders-eu: cached, TTL 30 s, absent TTL 30 s" in report
    assert "orders-us: cached, TTL 60 s, absent TTL 60 s" in report
    assert "logs: not cached" in report
    assert "Backend round trip (memory): write, read, delete OK" in report


def test_secrets_are_never_printed() -> None:
    _, report = doctor(GOOD)
    assert "super-secret-api-key" not in report
    assert "(set, 20 characters, hidden)" in report


def test_missing_ttl_is_a_problem_with_exit_code_1() -> None:
    code, report = doctor({"MOMENTO_BOTOCORE_TABLES": "orders"})
    assert code == 1
    assert "Configuration: INVALID: MOMENTO_BOTOCORE_TTL_SECONDS is not set" in report
    assert "Backend round trip: not tried" in report
    assert "Verdict: PROBLEM (1)" in report


def test_unreachable_backend_fails_the_round_trip() -> None:
    code, report = doctor(GOOD, backend_factory=lambda config: UnreachableBackend())
    assert code == 1
    assert "Backend round trip (memory): FAILED at write: connection refused" in report


def test_backend_that_loses_writes_fails_the_round_trip() -> None:
    def forgetful(config: CacheConfig) -> ForgetfulBackend:
        return ForgetfulBackend()

    code, report = doctor(GOOD, backend_factory=forgetful)
    assert code == 1
    assert "FAILED at read: read back None" in report


def test_enabled_without_the_startup_hook_in_this_interpreter_is_a_problem() -> None:
    code, report = doctor({**GOOD, "MOMENTO_BOTOCORE_ENABLED": "1"})
    assert code == 1
    assert "the start-up hook did not run in this interpreter" in report


def test_command_line_shows_activation_on_in_its_own_interpreter() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "momento_botocore.cli", "doctor", "--table", "users"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("MOMENTO")},
            **GOOD,
            "MOMENTO_BOTOCORE_ENABLED": "true",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "state: ACTIVE by the start-up hook (.pth)" in result.stdout
    assert "users: cached, TTL 60 s" in result.stdout
    assert result.stderr == ""


def test_command_line_exit_code_is_1_when_activation_fails() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "momento_botocore.cli", "doctor"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("MOMENTO")},
            **GOOD,
            "MOMENTO_BOTOCORE_ENABLED": "1",
            "MOMENTO_BOTOCORE_BACKEND": "valkey",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "unknown backend 'valkey'" in result.stdout
    assert "Verdict: PROBLEM" in result.stdout


def near_cache_environment(server: LocalMomentoServer) -> dict[str, str]:
    return {
        "MOMENTO_BOTOCORE_TTL_SECONDS": "60",
        "MOMENTO_BOTOCORE_BACKEND": "momento",
        "MOMENTO_CACHE_NAME": DEFAULT_CACHE,
        "MOMENTO_ENDPOINT": f"http://{server.host}:{server.port}",
        "MOMENTO_BOTOCORE_NEAR_CACHE_ITEMS": "500",
    }


def test_a_near_cache_shows_its_settings_and_a_live_subscription(
    momento_server: LocalMomentoServer,
) -> None:
    environ = near_cache_environment(momento_server)
    code, report = doctor({**environ, "MOMENTO_BOTOCORE_NEAR_CACHE_TTL_SECONDS": "2"})
    assert code == 0, report
    assert "invalidation topic: momento-botocore-invalidations" in report
    assert "near cache: 500 entries" in report
    assert "entries live at most 2 s" in report
    assert "Near cache subscription: live" in report


def test_a_subscription_that_never_goes_live_is_a_problem(
    momento_server: LocalMomentoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from momento_botocore import doctor as doctor_module

    monkeypatch.setattr(doctor_module, "NEAR_WAIT_SECONDS", 0.5)
    momento_server.fail("Subscribe")
    code, report = doctor(near_cache_environment(momento_server))
    assert code == 1
    assert "Near cache subscription: NOT LIVE" in report
    assert "near cache subscription: reconnecting" in report
