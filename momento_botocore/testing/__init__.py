"""Test helpers for users of momento-botocore: a local Momento-protocol server.

Needs the ``testing`` extra (``pip install momento-botocore[testing]``) for grpcio
and momento-wire-types. For pytest, add
``pytest_plugins = ["momento_botocore.testing.pytest_plugin"]`` to your top-level
``conftest.py`` to get the ``momento_server`` fixture.
"""

from momento_botocore.testing.server import DEFAULT_CACHE, LocalMomentoServer

__all__ = ["DEFAULT_CACHE", "LocalMomentoServer"]
