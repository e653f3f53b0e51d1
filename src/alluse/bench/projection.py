"""Projection figures for `alluse bench` (docs/benchmarks.md, docs/projections.md).

- `projection_path_years_per_s`: the fast simulator on the shipped moderate scenario (10,000 paths ×
  10 years of weekly steps; --quick: 1,000 × 5), path-years simulated per second;
- its baseline in the same run, `python_projection_path_years_per_s`: the same simulator with its
  weekly step (every sleeve's result, the bulk of the work) as a plain-Python loop over paths and
  accounts, on the first paths of the same run (it gives the same paths, a unit test holds them equal);
- `projection_exact_path_s`: one path of 10 years (--quick: 1) through the real engine on a
  throw-away SQLite database in memory (a copy of the migrated schema, made before the timed runs).
"""

from __future__ import annotations

import time
from typing import Any

from alluse.sim import projection, scenario
from alluse.sim.exact import exact_path, scratch_engine


def run_projection(bench: Any) -> None:
    years = 5 if bench.quick else 10
    paths = 1_000 if bench.quick else 10_000
    slow_paths = 50 if bench.quick else 500
    sc = scenario.load("moderate").with_run(years=years)

    cpu: list[float] = []

    def fast() -> float:
        t0, c0 = time.perf_counter(), time.process_time()
        projection.simulate(sc, paths=paths)
        cpu.append(time.process_time() - c0)
        return time.perf_counter() - t0

    def plain() -> float:
        t0 = time.perf_counter()
        projection.simulate(sc, paths=slow_paths, python_results=True)
        return time.perf_counter() - t0

    ours = bench.median_rate(f"projection, {paths:,} paths", paths * years, fast)
    bench.emit("projection_path_years_per_s", ours, "path-years/s", paths=paths, years=years)
    bench.emit("projection_s", paths * years / ours, "s", paths=paths, years=years)
    # CPU seconds of the same runs: on a machine shared with other work, wall time also counts waiting.
    bench.emit("projection_cpu_s", sorted(cpu)[len(cpu) // 2], "s", paths=paths, years=years)
    base = bench.median_rate(f"projection, plain-Python week, {slow_paths} paths", slow_paths * years, plain)
    bench.emit("python_projection_path_years_per_s", base, "path-years/s", paths=slow_paths, years=years)
    bench.emit("projection_vs_python", ours / base, "ratio")

    exact_years = 1 if bench.quick else 10
    one = sc.with_run(years=exact_years, paths=1)
    # The migrated schema every exact path copies is made once a process (`alluse project --exact`
    # pays it once, docs/projections.md): not part of the path's time.
    scratch_engine().dispose()

    exact_cpu: list[float] = []

    def exact() -> float:
        t0, c0 = time.perf_counter(), time.process_time()
        exact_path(one)
        exact_cpu.append(time.process_time() - c0)
        return time.perf_counter() - t0

    rate = bench.median_rate(f"exact engine path, {exact_years} years", 1, exact)
    bench.emit("projection_exact_path_s", 1 / rate, "s", years=exact_years)
    bench.emit("projection_exact_path_cpu_s", sorted(exact_cpu)[len(exact_cpu) // 2], "s", years=exact_years)
