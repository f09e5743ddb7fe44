"""`momento-botocore tail` as a user runs it: a real process, real signals, moto's server."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import pytest
from conftest import create_table, new_session

from momento_botocore.cli import main

ROOT = Path(__file__).resolve().parent.parent
WAIT = 30.0


class TailProcess:
    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "momento_botocore.cli", "tail", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert self.process.stdout is not None
        threading.Thread(target=self._pump, args=(self.process.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str) -> str:
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                self.process.kill()
                raise AssertionError(f"never printed {text!r}; printed: {self.seen}") from None
            self.seen.append(line)
            if text in line:
                return line

    def finish(self, signum: int) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(WAIT)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_tail_applies_writes_and_stops_cleanly_on_a_signal(endpoint: str, signum: int) -> None:
    client = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(client, "items", stream_view="NEW_IMAGE")
    client.put_item(TableName="items", Item={"pk": {"S": "before"}})
    tail = TailProcess(
        "--table",
        "items",
        "--endpoint-url",
        endpoint,
        "--start",
        "trim-horizon",
        "--poll-interval",
        "0.05",
        "--verbose",
        env={"MOMENTO_BOTOCORE_TTL_SECONDS": "60"},
    )
    tail.wait_for("tailing arn:aws:dynamodb:us-east-1:123456789012:table/items/stream/")
    tail.wait_for("batch of 1: 1 cache writes (ITEM 1)")
    client.delete_item(TableName="items", Key={"pk": {"S": "before"}})
    tail.wait_for("batch of 1: 1 cache writes (ABSENT 1)")

    assert tail.finish(signum) == 0
    tail.wait_for("stopped; 2 records read, 2 applied")
    assert not any("Traceback" in line for line in tail.seen)


def test_tail_without_a_ttl_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MOMENTO_BOTOCORE_TTL_SECONDS", raising=False)
    assert main(["tail", "--table", "items"]) == 2
    assert "MOMENTO_BOTOCORE_TTL_SECONDS is not set" in capsys.readouterr().err


def test_tail_of_a_table_without_a_stream_says_so(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    create_table(new_session().client("dynamodb", endpoint_url=endpoint), "plain")
    code = main(["tail", "--table", "plain", "--endpoint-url", endpoint, "--ttl", "60"])
    assert code == 1
    assert "table 'plain' has no stream: enable one" in capsys.readouterr().err


def test_tail_needs_a_table_or_a_stream(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["tail"])
    assert exit_info.value.code == 2
    assert "one of the arguments --table --stream-arn is required" in capsys.readouterr().err
