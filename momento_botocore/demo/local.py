"""Local stand-ins used by the demo and the benchmarks: moto's server, the local Momento
server, sessions, tables."""

from __future__ import annotations

import logging
import multiprocessing
import sys
import time
import urllib.request
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TextIO

REGION = "us-east-1"
#: moto's account for plain dummy credentials; given to register() as account_id.
ACCOUNT = "123456789012"
_CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


_NEEDS_MOTO = "this needs moto's server: pip install 'momento-botocore[demo]'"


def _threaded_moto_server() -> Any:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:  # depends on the install
        raise SystemExit(_NEEDS_MOTO) from error
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on the console
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return server


def _endpoint(server: Any) -> str:
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}"


def _reset(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


class MotoServer:
    """moto's server in this process, on a free loopback port."""

    def __init__(self) -> None:
        self._server = _threaded_moto_server()
        self.endpoint = _endpoint(self._server)

    def reset(self) -> None:
        _reset(self.endpoint)

    def stop(self) -> None:
        self._server.stop()


class _ServerProcess:
    """A server in a process of its own (``spawn``): ``serve(conn, stop)`` sends
    ``("endpoint", endpoint, extra)`` once it listens, or ``("error", why, "")``, then
    serves until ``stop`` is set."""

    def __init__(
        self, serve: Callable[[Connection, Any], None], name: str, needs: str, timeout: float
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=serve, args=(sender, self._stop), name=name, daemon=True
        )
        self._process.start()
        sender.close()
        what = name.replace("-", " ")
        try:
            if not receiver.poll(timeout):
                raise RuntimeError(f"the {what} did not start in {timeout:g} s")
            kind, text, extra = receiver.recv()
        except EOFError:
            kind, text, extra = "error", "its process ended", ""
        finally:
            receiver.close()
        if kind != "endpoint":
            self.stop()
            if text == needs:
                raise SystemExit(text)
            raise RuntimeError(f"the {what} did not start: {text}")
        self.endpoint: str = text
        self._extra: str = extra

    def stop(self) -> None:
        self._stop.set()
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


class MotoProcess(_ServerProcess):
    """moto's server in a process of its own, on a free loopback port: serving other
    clients (a writer, a stream tailer) takes no share of this process's interpreter
    lock, as DynamoDB's work would not."""

    def __init__(self, timeout: float = 120.0) -> None:
        super().__init__(_serve_moto, "moto-server", _NEEDS_MOTO, timeout)

    def reset(self) -> None:
        _reset(self.endpoint)


def _serve_moto(conn: Connection, stop: Any) -> None:
    try:
        server = _threaded_moto_server()
    except BaseException as error:
        conn.send(("error", str(error) if isinstance(error, SystemExit) else repr(error), ""))
        conn.close()
        return
    conn.send(("endpoint", _endpoint(server), ""))
    conn.close()
    stop.wait()
    server.stop()


_NEEDS_MOMENTO_SERVER = (
    "this needs the local Momento server's grpcio and momento-wire-types: "
    "pip install 'momento-botocore[testing]'"
)


class MomentoProcess(_ServerProcess):
    """The local Momento-protocol server (:mod:`momento_botocore.testing`) in a process
    of its own, on a free loopback port, with its default cache: the cache calls and
    Topics, reached in plaintext with no API key at :attr:`endpoint` (``http://HOST:PORT``,
    as ``momento_endpoint`` and ``MOMENTO_ENDPOINT`` take it)."""

    def __init__(self, timeout: float = 120.0) -> None:
        super().__init__(_serve_momento, "local-Momento-server", _NEEDS_MOMENTO_SERVER, timeout)
        self.cache_name: str = self._extra


def _serve_momento(conn: Connection, stop: Any) -> None:
    try:
        try:
            from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer
        except ImportError:
            raise SystemExit(_NEEDS_MOMENTO_SERVER) from None
        server = LocalMomentoServer("127.0.0.1", 0, caches=(DEFAULT_CACHE,))
        server.start()
    except BaseException as error:
        conn.send(("error", str(error) if isinstance(error, SystemExit) else repr(error), ""))
        conn.close()
        return
    conn.send(("endpoint", f"http://{server.endpoint}", DEFAULT_CACHE))
    conn.close()
    stop.wait()
    server.stop()


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
