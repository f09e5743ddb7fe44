"""Run the local Momento-protocol server: ``python -m momento_botocore.testing``.

Prints ``listening on HOST:PORT`` once it accepts calls, then serves until
interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import threading

from momento_botocore.testing.server import DEFAULT_CACHE, LocalMomentoServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m momento_botocore.testing")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--cache", action="append", help=f"cache to create (repeatable; default {DEFAULT_CACHE})"
    )
    parser.add_argument(
        "--get-delay-ms",
        type=float,
        default=0.0,
        help="hold every Get (and every GetBatch, once for all its keys) this long before "
        "answering (a stand-in for the network round trip)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=float,
        default=1.0,
        help="seconds an idle topic subscription waits between heartbeats (default 1.0)",
    )
    args = parser.parse_args(argv)
    server = LocalMomentoServer(
        args.host,
        args.port,
        caches=args.cache or (DEFAULT_CACHE,),
        heartbeat_interval=args.heartbeat_interval,
    )
    if args.get_delay_ms > 0:
        server.delay("Get", "GetBatch", seconds=args.get_delay_ms / 1000)
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(f"listening on {server.endpoint}", flush=True)
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
