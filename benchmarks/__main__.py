"""``python -m benchmarks`` (``make bench``), from the repository's root."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks import BENCHMARKS, run_bench, select


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Ratio benchmarks, measured side by side: "
        + "; ".join(f"{name}: {what}" for name, (what, _) in BENCHMARKS.items()),
    )
    parser.add_argument("--only", help=f"comma-separated subset of: {','.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes: seconds, not minutes")
    parser.add_argument(
        "--out", default="benchmarks/results", help="output folder (default: %(default)s)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        names = select(args.only)
    except ValueError as error:
        print(f"python -m benchmarks: {error}")
        return 2
    run_bench(names, quick=args.quick, out_dir=Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
