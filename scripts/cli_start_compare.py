"""Start-up of `alluse --help` and `alluse accounts` in this checkout and in another one, interleaved
in one run so both meet the same machine load: median wall and CPU time of fresh processes.

    python scripts/cli_start_compare.py OTHER_CHECKOUT/src DATABASE_URL [RUNS]

The database must hold the demo portfolio (`alluse --db DATABASE_URL demo`). `alluse bench --only cli`
measures this checkout alone.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time

other_src, url = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 11
py = sys.executable
# What the `alluse` script runs: cli/start.py where the checkout has it, else the whole app.
cmd = [
    py,
    "-c",
    "try:\n    from alluse.cli.start import main\n"
    "except ImportError:\n    from alluse.cli.main import app\n    main = lambda: app(prog_name='alluse')\n"
    "main()",
]


def env(other: bool) -> dict[str, str]:
    # Without PYTHONDONTWRITEBYTECODE: the warm-up start writes .pyc files, as in `alluse bench --only cli`.
    e = {k: v for k, v in os.environ.items() if not k.startswith("ALLUSE_") and k != "PYTHONDONTWRITEBYTECODE"}
    if other:
        e["PYTHONPATH"] = other_src
    return e


cases = {
    "python -c pass": ([py, "-c", "pass"], False),
    "--help (other)": ([*cmd, "--help"], True),
    "--help (this)": ([*cmd, "--help"], False),
    "accounts (other)": ([*cmd, "--db", url, "-p", "demo", "accounts"], True),
    "accounts (this)": ([*cmd, "--db", url, "-p", "demo", "accounts"], False),
}
walls: dict[str, list[float]] = {k: [] for k in cases}
cpus: dict[str, list[float]] = {k: [] for k in cases}
for argv, other in cases.values():  # warm: .pyc files, page cache
    subprocess.run(argv, env=env(other), check=True, capture_output=True)
for _ in range(runs):
    for k, (argv, other) in cases.items():
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(argv, env=env(other), check=True, capture_output=True)
        walls[k].append((time.perf_counter() - t) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus[k].append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
for k in cases:
    row = {"case": k, "wall_ms": round(statistics.median(walls[k]), 1), "cpu_ms": round(statistics.median(cpus[k]), 1)}
    print(json.dumps({**row, "runs": runs}))
print(json.dumps({"load_average": [round(x, 1) for x in os.getloadavg()]}))
