"""What momento_botocore.pth costs at interpreter start-up.

Two throwaway virtual environments see the same packages (a path .pth points at this
environment's site-packages and at the directory the package is imported from); only
one of them also has momento_botocore.pth. Fresh interpreters are started in turn,
interleaved so that machine noise falls on every variant alike:

  no .pth          python -c pass, without momento_botocore.pth
  disabled         python -c pass, with it, MOMENTO_BOTOCORE_ENABLED unset
  enabled          python -c pass, with it, MOMENTO_BOTOCORE_ENABLED=1 (botocore never imported)
  boto3, no .pth   a program that imports boto3 and makes a DynamoDB client
  boto3, enabled   the same program, activated (registration on its first session)
  boto3 no gc      both again with the garbage collector off (see BOTO3_NO_GC)

Start-up differences below a millisecond drown in process-start noise, so the cost
of the disabled hook is also measured directly: the .pth line executed in-process.

    python benchmarks/startup.py [--rounds 40] [--boto3-rounds 12]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import _momento_botocore_startup

ROOT = Path(__file__).resolve().parent.parent
PTH = ROOT / "momento_botocore.pth"
BOTO3_PROGRAM = "import boto3; boto3.client('dynamodb', region_name='us-east-1')"
# The same with the garbage collector off: activation allocates, which can move a
# full collection (about 100 ms over botocore's models here) into or out of the run.
BOTO3_NO_GC = "import gc; gc.disable(); " + BOTO3_PROGRAM


def make_venv(directory: Path, with_hook: bool) -> Path:
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(directory)], check=True)
    python = directory / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    here_site = sysconfig.get_paths()["purelib"]
    package_home = os.path.dirname(os.path.abspath(_momento_botocore_startup.__file__))
    lines = dict.fromkeys([package_home, here_site])
    Path(purelib, "_bench_paths.pth").write_text("\n".join(lines) + "\n")
    if with_hook:
        Path(purelib, PTH.name).write_text(PTH.read_text())
    return python


def start(python: Path, code: str, environ: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) milliseconds of one interpreter running ``code``.

    CPU time is what the process itself spent: much less disturbed than wall time
    when other work shares the machine.
    """
    started = time.perf_counter()
    process = subprocess.Popen([str(python), "-c", code], env=environ)
    _, status, usage = os.wait4(process.pid, 0)
    wall = (time.perf_counter() - started) * 1000
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{python} -c {code!r} exited with {process.returncode}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


HOOK_COST = """
import json, time
started = time.perf_counter()
import _momento_botocore_startup as startup
imported = time.perf_counter()
startup.install({"MOMENTO_BOTOCORE_ENABLED": "1"})
print(json.dumps([imported - started, time.perf_counter() - imported, startup.state]))
"""

ACTIVATION_COST = """
import json, time
import botocore.session
started = time.perf_counter()
import _momento_botocore_startup as startup
startup.install({"MOMENTO_BOTOCORE_ENABLED": "1", "MOMENTO_BOTOCORE_TTL_SECONDS": "60"})
print(json.dumps([time.perf_counter() - started, startup.state]))
"""


def in_process_us(python: Path, code: str, environ: dict[str, str], runs: int) -> list[float]:
    """Medians, in microseconds, of the timings that ``code`` prints (in a fresh process)."""
    timings: list[list[float]] = []
    for _ in range(runs):
        output = subprocess.run(
            [str(python), "-c", code], env=environ, capture_output=True, text=True, check=True
        ).stdout
        *figures, state = json.loads(output)
        assert state in ("waiting for botocore", "active"), state
        timings.append(figures)
    return [statistics.median(column) * 1e6 for column in zip(*timings, strict=True)]


def disabled_line_us(repetitions: int = 20_000) -> float:
    """The .pth line as site.py runs it (read, compile, exec), variable unset."""
    environ_value = os.environ.pop("MOMENTO_BOTOCORE_ENABLED", None)
    try:
        started = time.perf_counter()
        for _ in range(repetitions):
            with open(PTH, encoding="utf-8") as file:
                for line in file:
                    if line.startswith(("import ", "import\t")):
                        exec(line)
        return (time.perf_counter() - started) / repetitions * 1e6
    finally:
        if environ_value is not None:
            os.environ["MOMENTO_BOTOCORE_ENABLED"] = environ_value


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": statistics.median(ordered),
        "mean_ms": statistics.fmean(ordered),
        "p10_ms": ordered[len(ordered) // 10],
        "p90_ms": ordered[(len(ordered) * 9) // 10],
        "n": len(ordered),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--boto3-rounds", type=int, default=12)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/startup.json")
    args = parser.parse_args()

    # pip compiles what it installs; do the same here (PYTHONDONTWRITEBYTECODE may be set).
    compileall.compile_file(_momento_botocore_startup.__file__, quiet=1)
    compileall.compile_dir(str(ROOT / "momento_botocore"), quiet=1)

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("MOMENTO_")}
    base_env.pop("PYTHONPATH", None)
    enabled_env = {
        **base_env,
        "MOMENTO_BOTOCORE_ENABLED": "1",
        "MOMENTO_BOTOCORE_TTL_SECONDS": "60",
    }
    with tempfile.TemporaryDirectory() as tmp:
        without = make_venv(Path(tmp, "without"), with_hook=False)
        with_hook = make_venv(Path(tmp, "with"), with_hook=True)
        check = subprocess.run(
            [str(with_hook), "-c", "import sys; print('_momento_botocore_startup' in sys.modules)"],
            env=enabled_env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert check.stdout.strip() == "True", "the hook did not run in the 'with' venv"

        variants = {
            "no .pth": (without, "pass", base_env, args.rounds),
            "disabled": (with_hook, "pass", base_env, args.rounds),
            "enabled": (with_hook, "pass", enabled_env, args.rounds),
            "boto3, no .pth": (without, BOTO3_PROGRAM, base_env, args.boto3_rounds),
            "boto3, enabled": (with_hook, BOTO3_PROGRAM, enabled_env, args.boto3_rounds),
            "boto3 no gc": (without, BOTO3_NO_GC, base_env, args.boto3_rounds),
            "boto3 no gc, on": (with_hook, BOTO3_NO_GC, enabled_env, args.boto3_rounds),
        }
        wall: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        for variant in variants.values():  # warm the file cache
            start(variant[0], variant[1], variant[2])
        for round_number in range(max(args.rounds, args.boto3_rounds)):
            order = [name for name, v in variants.items() if round_number < v[3]]
            random.shuffle(order)
            for name in order:
                python, code, environ, _ = variants[name]
                wall_ms, cpu_ms = start(python, code, environ)
                wall[name].append(wall_ms)
                cpu[name].append(cpu_ms)
        import_us, install_us = in_process_us(with_hook, HOOK_COST, base_env, 15)
        (activation_us,) = in_process_us(with_hook, ACTIVATION_COST, base_env, 15)

    results = {name: {"wall": summary(wall[name]), "cpu": summary(cpu[name])} for name in variants}
    line_us = disabled_line_us()
    print(f"Python {sys.version.split()[0]} on {os.cpu_count()} cores; milliseconds per process")
    header = f"{'variant':<16} {'CPU median':>10} {'p10':>7} {'p90':>7}  {'wall median':>11}"
    print(f"{header}   CPU vs baseline")
    baselines = {
        "disabled": "no .pth",
        "enabled": "no .pth",
        "boto3, enabled": "boto3, no .pth",
        "boto3 no gc, on": "boto3 no gc",
    }
    for name, figures in results.items():
        delta = ""
        if name in baselines:
            diff = figures["cpu"]["median_ms"] - results[baselines[name]]["cpu"]["median_ms"]
            delta = f"{diff:+.2f}"
        c, w = figures["cpu"], figures["wall"]
        print(
            f"{name:<16} {c['median_ms']:10.2f} {c['p10_ms']:7.2f} {c['p90_ms']:7.2f}  "
            f"{w['median_ms']:11.2f}   {delta}"
        )
    print(f"disabled: the .pth line executed in-process (read, compile, run): {line_us:.0f} us")
    print(
        f"enabled, in-process: importing the hook {import_us:.0f} us, "
        f"installing the finder {install_us:.0f} us"
    )
    print(
        "enabled, in-process: activation once botocore is there (imports momento_botocore, "
        f"register()): {activation_us / 1000:.1f} ms"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "processes": results,
                "disabled_line_us": line_us,
                "enabled_hook_import_us": import_us,
                "enabled_hook_install_us": install_us,
                "activation_us": activation_us,
            },
            indent=2,
        )
    )
    print(f"written: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
