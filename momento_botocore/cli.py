"""The ``momento-botocore`` command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> int:
    from momento_botocore.demo import run_demo

    return run_demo(items=args.items, reads=args.reads)


def _bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from momento_botocore.bench import run_bench, select

    try:
        names = select(args.only)
    except ValueError as error:
        print(f"momento-botocore bench: {error}")
        return 2
    run_bench(names, quick=args.quick, out_dir=Path(args.out))
    return 0


def _add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from momento_botocore.bench import BENCHMARKS

    bench = commands.add_parser(
        "bench",
        help="run the benchmarks (JSON, Markdown table and PNG plots)",
        description="Ratio benchmarks, measured side by side: "
        + "; ".join(f"{name}: {what}" for name, (what, _) in BENCHMARKS.items()),
    )
    bench.add_argument("--only", help=f"comma-separated subset of: {','.join(BENCHMARKS)}")
    bench.add_argument("--quick", action="store_true", help="small sizes: seconds, not minutes")
    bench.add_argument(
        "--out", default="benchmarks/results", help="output folder (default: %(default)s)"
    )
    bench.set_defaults(func=_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="momento-botocore", description="A Momento cache in front of DynamoDB reads."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the demo on the embedded defaults")
    demo.add_argument("--items", type=int, default=500, help="items in the demo table")
    demo.add_argument("--reads", type=int, default=4000, help="GetItem calls per run")
    demo.set_defaults(func=_demo)
    _add_bench(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
