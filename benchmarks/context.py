"""What every benchmark gets: the mode, the output folder, progress, shared servers."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from momento_botocore.demo.local import MotoServer, Progress


class BenchContext:
    def __init__(self, *, quick: bool, out_dir: Path, out: TextIO = sys.stdout) -> None:
        self.quick = quick
        self.out_dir = out_dir
        self.plot_dir = out_dir / "plots"
        self.console = Progress(out)
        self._moto: MotoServer | None = None

    def log(self, text: str) -> None:
        self.console.line(text)

    def progress(self, label: str) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            self.console.update(f"{label}: round {done}/{total}")

        return report

    @property
    def moto(self) -> MotoServer:
        """moto's server, started on first use and shared by the benchmarks (reset it)."""
        if self._moto is None:
            self._moto = MotoServer()
        return self._moto

    def close(self) -> None:
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
