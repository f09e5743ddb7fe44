"""A loopback HTTP proxy in front of moto that can lose DynamoDB's answers.

It forwards each request to moto (so the write happens), then, for the
operations told to, closes the connection without answering, answers late, or
answers HTTP 500: what a client sees when a write's outcome is unknown.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager


class LossyProxy:
    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        #: operation -> how many of its next answers to lose ("drop") or delay ("slow").
        self.drop: dict[str, int] = {}
        self.slow: dict[str, int] = {}
        self.fail: dict[str, int] = {}  # ... or replace with an HTTP 500 (after writing)
        self.delay = 1.0
        #: The X-Amz-Target of every request forwarded, in order.
        self.targets: list[str] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _serve(self) -> None:
        while not self._closed:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _take(self, table: dict[str, int], operation: str) -> bool:
        with self._lock:
            if table.get(operation, 0) > 0:
                table[operation] -= 1
                return True
            return False

    def _handle(self, connection: socket.socket) -> None:
        with connection:
            reader = connection.makefile("rb")
            while True:
                request_line = reader.readline()
                if not request_line:
                    return
                headers: dict[str, str] = {}
                while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip()] = value.strip()
                body = reader.read(int(headers.get("Content-Length", "0")))
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                with self._lock:
                    self.targets.append(headers.get("X-Amz-Target", ""))
                upstream = http.client.HTTPConnection(*self._upstream, timeout=10)
                upstream.request(method, path, body=body, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
                status, reason, answer_headers = answer.status, answer.reason, answer.getheaders()
                upstream.close()
                operation = headers.get("X-Amz-Target", "").rpartition(".")[2]
                if self._take(self.drop, operation):
                    return  # the write happened; its answer is lost
                if self._take(self.slow, operation):
                    time.sleep(self.delay)
                if self._take(self.fail, operation):
                    status, reason, answer_headers = 500, "Internal Server Error", []
                    payload = (
                        b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError",'
                        b'"message":"Internal server error"}'
                    )
                head = f"HTTP/1.1 {status} {reason}\r\n"
                for name, value in answer_headers:
                    if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                        head += f"{name}: {value}\r\n"
                head += f"Content-Length: {len(payload)}\r\nConnection: keep-alive\r\n\r\n"
                try:
                    connection.sendall(head.encode("latin-1") + payload)
                except OSError:
                    return


@contextmanager
def lossy_proxy(upstream: str) -> Iterator[LossyProxy]:
    proxy = LossyProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
