"""Local stand-ins used by the demo and the benchmarks: moto's server, sessions, tables."""

from __future__ import annotations

import logging
import sys
import time
import urllib.request
from typing import Any, TextIO

REGION = "us-east-1"
#: moto's account for plain dummy credentials; given to register() as account_id.
ACCOUNT = "123456789012"
_CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


class MotoServer:
    """moto's server in this process, on a free loopback port."""

    def __init__(self) -> None:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as error:  # depends on the install
            raise SystemExit(
                "this needs moto's server: pip install 'momento-botocore[demo]'"
            ) from error
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on the console
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        self._server.stop()


def new_session() -> Any:
    import boto3

    return boto3.Session(region_name=REGION, **_CREDENTIALS)


def create_table(client: Any, name: str, *, stream: bool = False) -> None:
    """A pay-per-request table keyed by ``pk`` (S), with a NEW_AND_OLD_IMAGES stream."""
    extra: dict[str, Any] = {}
    if stream:
        extra["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


def sample_item(pk: str, version: int = 0) -> dict[str, Any]:
    """A typical small item (9 attributes, ~300 bytes as JSON) in wire format."""
    return {
        "pk": {"S": pk},
        "name": {"S": "Ada Lovelace"},
        "email": {"S": "ada@example.com"},
        "age": {"N": "36"},
        "balance": {"N": "1024.50"},
        "active": {"BOOL": True},
        "tags": {"SS": ["analyst", "engine", "poet"]},
        "address": {"M": {"street": {"S": "12 St James's Sq"}, "city": {"S": "London"}}},
        "v": {"N": str(version)},
    }


class Progress:
    """One-line progress on a terminal (or plain lines elsewhere)."""

    def __init__(self, out: TextIO = sys.stdout, every: float = 5.0) -> None:
        self.out = out
        self._tty = bool(getattr(out, "isatty", lambda: False)())
        self._open = False
        self._every = every
        self._last = time.monotonic()

    def update(self, text: str) -> None:
        """Overwrite the status line on a terminal; elsewhere a line every few seconds."""
        if self._tty:
            self.out.write(f"\r\033[K  {text}")
            self.out.flush()
            self._open = True
        elif time.monotonic() - self._last >= self._every:
            self._last = time.monotonic()
            self.out.write(f"  ... {text}\n")
            self.out.flush()

    def line(self, text: str) -> None:
        if self._open:
            self.out.write("\r\033[K")
            self._open = False
        self.out.write(f"  {text}\n")
        self.out.flush()
