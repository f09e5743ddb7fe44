"""The ``momento-botocore`` command: one subcommand per tool."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from momento_botocore.config import CacheConfig, ConfigurationError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="momento-botocore", description="A Momento cache in front of DynamoDB reads."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_demo_parser(commands)
    _add_tail_parser(commands)
    _add_doctor_parser(commands)
    _add_bench_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


# demo ----------------------------------------------------------------------------------


def _add_demo_parser(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the demo on the embedded defaults (moto, memory backend, stream tailer)",
    )
    demo.add_argument("--items", type=int, default=1000, help="items in the demo table")
    demo.add_argument(
        "--seconds",
        type=float,
        default=30.0,
        help="workload time (reads without and with the cache side by side)",
    )
    demo.add_argument(
        "--out", default="demo-output", help="folder for the plot (default: %(default)s)"
    )
    demo.add_argument(
        "--near-cache",
        action="store_true",
        help="the near cache instead, offline: a local Momento server in a process of its "
        "own, the reader on Momento with a near cache kept fresh by the tailer's pushes, "
        "beside Momento alone and no cache",
    )
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    if args.items < 1 or args.seconds <= 0:
        print("momento-botocore demo: --items and --seconds must be positive", file=sys.stderr)
        return 2
    if args.near_cache:
        from momento_botocore.demo.near import run_near_demo

        run_near_demo(items=args.items, seconds=args.seconds, out_dir=args.out)
        return 0
    from momento_botocore.demo import run_demo

    run_demo(items=args.items, seconds=args.seconds, out_dir=args.out)
    return 0


# tail ----------------------------------------------------------------------------------


def _add_tail_parser(commands: Any) -> None:
    tail = commands.add_parser(
        "tail",
        help="apply a table's DynamoDB stream to the cache (the invalidator, outside Lambda)",
        description=(
            "Read a table's DynamoDB stream and refresh or invalidate cache entries, as the "
            "Lambda handler momento_botocore.streams.handler does. Configured from "
            "MOMENTO_BOTOCORE_* environment variables. Stops cleanly on Ctrl-C or SIGTERM."
        ),
    )
    which = tail.add_mutually_exclusive_group(required=True)
    which.add_argument("--table", help="the table whose latest stream to read")
    which.add_argument("--stream-arn", help="the stream to read, by ARN")
    tail.add_argument(
        "--start",
        choices=("latest", "trim-horizon"),
        default="latest",
        help="latest: changes from now on (default); trim-horizon: all the stream holds (24 h)",
    )
    tail.add_argument("--region", help="AWS region (default: the usual AWS configuration)")
    tail.add_argument("--endpoint-url", help="DynamoDB Streams endpoint (e.g. a local moto server)")
    tail.add_argument(
        "--ttl", type=float, help="item TTL in seconds (overrides MOMENTO_BOTOCORE_TTL_SECONDS)"
    )
    tail.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        help="seconds between polls when the stream is idle (default 0.5)",
    )
    tail.add_argument("-v", "--verbose", action="store_true", help="log every batch")
    tail.set_defaults(func=_tail)


def _tail(args: argparse.Namespace) -> int:
    from momento_botocore.backends.factory import create_backend
    from momento_botocore.streams import StreamInvalidator, describe_with_boto3
    from momento_botocore.tailer import LATEST, TRIM_HORIZON, StreamNotFoundError, StreamTailer

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    say = _printer()
    try:
        overrides = {"ttl": args.ttl} if args.ttl is not None else {}
        config = CacheConfig.from_env(**overrides)
        backend = create_backend(config)
    except ConfigurationError as error:
        say(f"momento-botocore tail: configuration error: {error}")
        return 2
    invalidator = StreamInvalidator(
        config, backend, describe_table=describe_with_boto3(args.endpoint_url)
    )
    handler = _logging_handler(invalidator, say) if args.verbose else invalidator
    tailer = StreamTailer(
        handler,
        table=args.table,
        stream_arn=args.stream_arn,
        region_name=args.region,
        endpoint_url=args.endpoint_url,
        start=LATEST if args.start == "latest" else TRIM_HORIZON,
        poll_interval=args.poll_interval,
    )
    try:
        arn = tailer.resolve_stream()
    except StreamNotFoundError as error:
        say(f"momento-botocore tail: {error}")
        return 1
    except Exception as error:  # credentials, endpoint, permissions: say it plainly
        say(f"momento-botocore tail: cannot find the stream: {type(error).__name__}: {error}")
        return 1
    if config.backend == "memory":
        say(
            "momento-botocore tail: note: the memory backend lives in this process only; "
            "set MOMENTO_BOTOCORE_BACKEND=momento to refresh a shared cache"
        )
    say(
        f"momento-botocore tail: tailing {arn} from {tailer.start_position} "
        f"into the {config.backend} backend; Ctrl-C to stop"
    )
    interrupts = [0]

    def stop(signum: int, _frame: Any) -> None:
        interrupts[0] += 1
        if interrupts[0] > 1 and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: do not wait for the current call
        tailer.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        tailer.run()
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)
        backend.close()
    stats = tailer.stats
    say(
        f"momento-botocore tail: stopped; {stats.records_read} records read, "
        f"{stats.records_delivered} applied, {stats.failed_batches} batches retried, "
        f"{stats.errors} stream errors"
    )
    return 0


def _printer() -> Any:
    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    return say


def _logging_handler(invalidator: Any, say: Any) -> Any:
    """The invalidator, saying what each batch did."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result = invalidator.process(event["Records"])
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(result.kinds.items()))
        say(
            f"momento-botocore tail: batch of {result.records}: {result.writes} cache writes"
            f"{f' ({kinds})' if kinds else ''}, {result.collapsed} collapsed, "
            f"{result.ignored} ignored, {len(result.skipped)} malformed, "
            f"{len(result.failed)} failed"
        )
        response: dict[str, Any] = result.response()
        return response

    return handler


# doctor --------------------------------------------------------------------------------


def _add_doctor_parser(commands: Any) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="show the configuration and activation state, and test the cache backend",
    )
    doctor.add_argument(
        "--table",
        action="append",
        default=[],
        metavar="NAME",
        help="also say whether (and how long) this table is cached; may be repeated",
    )
    doctor.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    from momento_botocore.doctor import run

    return run(sys.stdout, tables=args.table)


# bench ---------------------------------------------------------------------------------

BENCH_MOVED = (
    "momento-botocore bench: the benchmarks are not installed with the package; from a "
    "source checkout run `make bench` or `python -m benchmarks` (see benchmarks/README.md)"
)


def _add_bench_parser(commands: Any) -> None:
    bench = commands.add_parser(
        "bench", help="moved: `make bench` or `python -m benchmarks` in a source checkout"
    )
    for option in ("--only", "--out"):  # the old options: explained, not refused
        bench.add_argument(option, help=argparse.SUPPRESS)
    bench.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    bench.set_defaults(func=_bench)


def _bench(_args: argparse.Namespace) -> int:
    print(BENCH_MOVED, file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
