"""The ``momento-botocore`` command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> int:
    from momento_botocore.demo import run_demo

    return run_demo(items=args.items, reads=args.reads)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="momento-botocore", description="A Momento cache in front of DynamoDB reads."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the demo on the embedded defaults")
    demo.add_argument("--items", type=int, default=500, help="items in the demo table")
    demo.add_argument("--reads", type=int, default=4000, help="GetItem calls per run")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
