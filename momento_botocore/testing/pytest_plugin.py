"""pytest fixtures for the local Momento-protocol server.

Enable in your top-level ``conftest.py``::

    pytest_plugins = ["momento_botocore.testing.pytest_plugin"]

``momento_server`` gives a running :class:`LocalMomentoServer` on a free loopback
port, emptied, with no faults, for each test (the process starts one server per
session). A server that cannot start fails the test; it never skips.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from momento_botocore.testing.server import LocalMomentoServer


@pytest.fixture(scope="session")
def momento_local_server() -> Iterator[LocalMomentoServer]:
    """One server for the whole session (prefer ``momento_server`` in tests)."""
    server = LocalMomentoServer()
    try:
        server.start()
    except Exception as error:
        pytest.fail(f"the local Momento server could not start: {error}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def momento_server(momento_local_server: LocalMomentoServer) -> LocalMomentoServer:
    """The session's server, running, emptied, without faults or counted calls."""
    momento_local_server.reset()
    momento_local_server.start()  # again, if a previous test stopped it
    return momento_local_server
