"""Start-up of the command line (`alluse bench --only cli`): `alluse --help` and `alluse accounts` on
the demo portfolio, each a fresh process, median wall time, next to a bare `python -c pass` spawned
the same way in the same run (the floor no command line can go under)."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from alluse.services.demo import build_demo
from alluse.store.db import make_engine

if TYPE_CHECKING:
    from alluse.bench.harness import Bench


def _alluse() -> list[str]:
    """The installed `alluse` script when there is one (what a user runs), else the same app by -c."""
    script = Path(sys.executable).with_name("alluse")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from alluse.cli.main import app; app(prog_name='alluse')"]


def _median_ms(argv: list[str], runs: int, cwd: Path) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of `runs` fresh processes, in ms. On a busy
    machine the wall time waits for a core; the CPU time says what the start itself costs."""
    # Without PYTHONDONTWRITEBYTECODE, so the warm-up start writes the .pyc files an installed program
    # has (pip and scripts/bootstrap compile the libraries; the warm-up does the same for an editable
    # checkout): otherwise every start would compile the sources again and measure the compiler.
    env = {k: v for k, v in os.environ.items() if k not in ("ALLUSE_PORTFOLIO", "PYTHONDONTWRITEBYTECODE")}
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)  # warm: .pyc files, page cache
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
        walls.append((time.perf_counter() - t) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def run_cli(bench: Bench) -> None:
    runs = 5 if bench.quick else 15
    url = bench.fresh_url()
    engine = make_engine(url)
    for _ in build_demo(engine, "bench"):
        pass
    engine.dispose()
    cwd = bench.tmp
    if bench.progress:
        bench.progress.console.log(f"cli: {runs} starts of each command")
    raw, raw_cpu = _median_ms([sys.executable, "-c", "pass"], runs, cwd)
    bench.emit("raw_python_start_ms", raw, "ms", runs=runs, cpu_ms=round(raw_cpu, 1))
    cli = _alluse()
    help_ms, help_cpu = _median_ms([*cli, "--help"], runs, cwd)
    bench.emit("cli_help_ms", help_ms, "ms", runs=runs, cpu_ms=round(help_cpu, 1))
    bench.emit("cli_help_vs_raw", raw / help_ms, "ratio")
    accounts_ms, accounts_cpu = _median_ms([*cli, "--db", url, "-p", "demo", "accounts"], runs, cwd)
    bench.emit("cli_accounts_ms", accounts_ms, "ms", runs=runs, cpu_ms=round(accounts_cpu, 1), portfolio="demo")
    bench.emit("cli_accounts_vs_raw", raw / accounts_ms, "ratio")
