"""The benchmark. One JSON object per line on stdout: {"metric", "value", "unit", ...}.

Each figure is the median of `repeat` runs on fresh databases. Every "ours" figure goes through the
real use cases (validation, buffer checks, idempotency, audit chain, journal); the raw baseline writes
the equivalent rows (same tables, same row counts) with the bare driver's executemany in the same
run, so `*_vs_raw` ratios compare like with like on whatever machine this runs on.
On SQLite each ratio is also printed per CPU second of this process (`*_cpu_vs_raw`): both sides run
in it there, so that ratio holds on a machine whose other work takes the CPUs away.

On PostgreSQL (`--db postgres`) the bench works in a scratch database next to the one named by the
URL (`<name>_bench`, created if missing, wiped and migrated for every run) and never touches the
named database itself. It adds the concurrent figure: 4 client processes, each moving cash one
buffer-checked move per unit of work in its own portfolio, against the same number of raw
one-move transactions from 4 bare psycopg clients.

The lifecycle sweep (`--only lifecycle`, also part of a full run) builds its populated portfolio once
and sweeps a fresh copy per run: a file copy on SQLite, `CREATE DATABASE <scratch>_copyN TEMPLATE
<scratch>` on PostgreSQL (dropped after the run). On PostgreSQL it also measures the same sweep shared
by 4 worker processes, in turn with one worker process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any, NamedTuple

from alluse.bench.raw import (
    _KEY_ID,
    CLIENTS,
    GROUP_AMOUNT,
    OpenedRows,
    _json,
    _manifest,
    _raw_client_setup,
    _raw_connection,
    _raw_group_rows,
    _raw_move_rows,
    fresh_plans,
    group_texts,
    move_texts,
)
from alluse.domain.accounts import SLEEVE_LABEL, AccountKind
from alluse.domain.errors import InvalidInput
from alluse.domain.money import format_usd
from alluse.services import cash, groups, lifecycle
from alluse.services.portfolios import create_portfolio
from alluse.sim.trading import realize
from alluse.store.db import make_engine, migrate

SWEEP_DAY = date(2026, 12, 31)
GAIN_DAY = date(2026, 12, 18)


class Bench:
    def __init__(self, db: str, quick: bool, out: IO[str], url: str | None = None) -> None:
        if db not in ("sqlite", "postgres", "citus"):
            raise InvalidInput(f"--db must be sqlite, postgres or citus, not {db!r}")
        self.db = db
        self.pg_url = _scratch_url(url) if db == "postgres" else None
        self.citus_url = _citus_scratch(url) if db == "citus" else None
        self.quick = quick
        self.out = out
        self.tmp = Path(tempfile.mkdtemp(prefix="alluse-bench-"))
        self.n = 0
        self.repeat = 1 if quick else 3
        self.single_groups = 100 if quick else 400
        self.bulk_groups = 1_000 if quick else 10_000
        self.single_moves = 500 if quick else 3_000
        self.bulk_moves = 5_000 if quick else 50_000
        self.concurrent_moves = 250 if quick else 1_000  # per client
        self.single_fills = 300 if quick else 3_000
        self.bulk_fills = 10_000 if quick else 100_000
        self.ledger_lots = 100_000 if quick else 1_000_000
        self.sweep_groups = 3_334 if quick else 33_334  # three sleeves each: 10,000 / 100,000 accounts
        self.verify_postings = 100_000 if quick else 1_000_000
        self.progress = _progress(out)
        self.cpu: float | None = None
        self.cpu_rates: dict[str, float] = {}

    def emit(self, metric: str, value: float, unit: str, **extra: Any) -> None:
        row = {
            "metric": metric,
            "value": round(value, 3 if unit in ("ratio", "s") else 1),
            "unit": unit,
            "db": self.db,
            **extra,
        }
        self.progress.console.print(json.dumps(row)) if self.progress else print(json.dumps(row), file=self.out)
        self.out.flush()

    def fresh_url(self) -> str:
        if self.pg_url is not None:
            return _fresh_pg(self.pg_url)
        if self.citus_url is not None:
            return _fresh_citus(*self.citus_url)
        self.n += 1
        path = self.tmp / f"bench-{self.n}.db"
        engine = make_engine(f"sqlite:///{path}")
        migrate(engine)
        engine.dispose()
        return f"sqlite:///{path}"

    def fresh_engine(self) -> Any:
        engine = make_engine(self.fresh_url())
        create_portfolio(engine, "bench", "bench", "bench:portfolio")
        return engine

    def raw(self) -> Any:
        """A bare driver connection to a fresh, migrated database holding one portfolio."""
        return _raw_connection(self.fresh_url())

    def median_rate(self, label: str, count: int, run: Callable[[], float]) -> float:
        rates: list[float] = []
        cpu_rates: list[float] = []
        for i in range(self.repeat):
            if self.progress:
                self.progress.console.log(f"{label} (run {i + 1}/{self.repeat})")
            self.cpu = None
            rates.append(count / run())
            if self.cpu:
                cpu_rates.append(count / self.cpu)
        if cpu_rates:
            self.cpu_rates[label] = statistics.median(cpu_rates)
        return statistics.median(rates)

    def clock(self) -> tuple[float, float]:
        """Start timing: wall and CPU clocks (`elapsed` stops both)."""
        return time.perf_counter(), time.process_time()

    def elapsed(self, start: tuple[float, float]) -> float:
        """Wall seconds since `start`; this process's CPU seconds meanwhile are kept for `median_rate`."""
        self.cpu = time.process_time() - start[1]
        return time.perf_counter() - start[0]

    def ratio(self, metric: str, ours: float, raw: float, ours_label: str, raw_label: str) -> None:
        """`metric` (ours / raw, wall clock), and on SQLite the same per CPU second of this process
        (`<metric>` with `_cpu` before `_vs_raw`): both sides run in this process there, so on a machine
        whose other work takes the CPUs away this ratio stays put while the wall-clock one swings."""
        self.emit(metric, ours / raw, "ratio")
        if self.db == "sqlite" and ours_label in self.cpu_rates and raw_label in self.cpu_rates:
            cpu = self.cpu_rates[ours_label] / self.cpu_rates[raw_label]
            self.emit(metric.replace("_vs_raw", "_cpu_vs_raw"), cpu, "ratio", basis="CPU seconds of the bench process")

    # --- accounts -----------------------------------------------------------------------------
    def accounts_single(self) -> float:
        engine = self.fresh_engine()
        t = self.clock()
        for i in range(self.single_groups):
            groups.open_group(engine, "bench", "bench", f"g{i}", groups.group_opening(GROUP_AMOUNT))
        return self.elapsed(t)

    def accounts_bulk(self) -> float:
        engine = self.fresh_engine()
        openings = [(f"g{i}", groups.group_opening(GROUP_AMOUNT)) for i in range(self.bulk_groups)]
        t = self.clock()
        groups.open_groups(engine, "bench", "bench", openings)
        return self.elapsed(t)

    def raw_accounts(self, per_transaction: bool) -> float:
        conn = self.raw()
        n = self.single_groups if per_transaction else self.bulk_groups
        batch = 1 if per_transaction else n
        texts = [group_texts(start, batch) for start in range(0, n, batch)]
        t = self.clock()
        for start, written in zip(range(0, n, batch), texts, strict=True):
            conn.execute("BEGIN IMMEDIATE")
            if not per_transaction:
                fresh_plans(conn)
            _raw_group_rows(conn, start, batch, written)
            conn.execute("COMMIT")
        elapsed = self.elapsed(t)
        conn.close()
        return elapsed

    # --- postings -----------------------------------------------------------------------------
    def _funded(self, n_groups: int) -> tuple[Any, list[int]]:
        engine = self.fresh_engine()
        opened = groups.open_groups(
            engine, "bench", "bench", [(f"g{i}", groups.group_opening(GROUP_AMOUNT)) for i in range(n_groups)]
        )
        gens = [g["accounts"]["GEN"]["account_id"] for g in opened]
        return engine, gens

    def _moves(self, gens: list[int], n: int) -> list[tuple[str, cash.CashMove]]:
        # Alternate deposits and buffer-checked withdrawals of the same size so balances stay put.
        return [
            (
                f"m{i}",
                cash.deposit(gens[i % len(gens)], 10_000, group=False)
                if i % 2 == 0
                else cash.withdrawal(gens[i % len(gens)], 10_000),
            )
            for i in range(n)
        ]

    def postings_single(self) -> float:
        engine, gens = self._funded(100)
        moves = self._moves(gens, self.single_moves)
        t = self.clock()
        for key, move in moves:
            cash.move_cash(engine, "bench", "bench", [(key, move)])
        return self.elapsed(t)

    def postings_bulk(self) -> float:
        engine, gens = self._funded(1000)
        moves = self._moves(gens, self.bulk_moves)
        t = self.clock()
        cash.move_cash(engine, "bench", "bench", moves)
        return self.elapsed(t)

    def raw_postings(self, per_transaction: bool) -> float:
        conn = self.raw()
        conn.execute("BEGIN IMMEDIATE")
        _raw_group_rows(conn, 0, 1000)
        conn.execute("COMMIT")
        n = self.single_moves if per_transaction else self.bulk_moves
        batch = 1 if per_transaction else n
        texts = [move_texts(start, batch) for start in range(0, n, batch)]
        t = self.clock()
        for start, written in zip(range(0, n, batch), texts, strict=True):
            conn.execute("BEGIN IMMEDIATE")
            if not per_transaction:
                fresh_plans(conn)
            _raw_move_rows(conn, start, batch, texts=written)
            conn.execute("COMMIT")
        elapsed = self.elapsed(t)
        conn.close()
        return elapsed

    def postings_concurrent(self) -> float:
        """4 clients at once, each in its own portfolio, one buffer-checked move per unit of work."""
        url = self.fresh_url()
        engine = make_engine(url)
        for c in range(CLIENTS):
            create_portfolio(engine, "bench", f"client{c}", f"bench:client{c}")
            groups.open_groups(
                engine, "bench", f"client{c}", [(f"g{i}", groups.group_opening(GROUP_AMOUNT)) for i in range(25)]
            )
        engine.dispose()
        return _in_processes(_client_moves, url, self.concurrent_moves)

    def raw_postings_concurrent(self) -> float:
        url = self.fresh_url()
        conn = _raw_connection(url)
        conn.execute("BEGIN")
        _raw_group_rows(conn, 0, 1000)
        conn.execute("COMMIT")
        _raw_client_setup(conn)
        conn.close()
        return _in_processes(_raw_client_moves, url, self.concurrent_moves)

    # --- lifecycle sweep ---------------------------------------------------------------------
    def lifecycle_template(self) -> str:
        """A portfolio of `sweep_groups` groups where one sleeve in 33 has grown enough to act at the
        quarter end (~1 % of accounts): Gen-Accs fork, Rev-Accs and Com-Accs reinvest. Built once; every
        run sweeps its own copy."""
        url = self.fresh_url()
        engine = make_engine(url)
        create_portfolio(engine, "bench", "bench", "bench:portfolio")
        opened = groups.open_groups(
            engine, "bench", "bench", [(f"g{i}", groups.group_opening(25_000_000)) for i in range(self.sweep_groups)]
        )
        acting = []
        for i, g in enumerate(opened[::33]):
            kind = ("GEN", "REV", "COM")[i % 3]
            acting.append(
                (f"r{i}", g["accounts"][kind]["account_id"], 7_500_000 if kind == "GEN" else 4_000_000, GAIN_DAY)
            )
        realize(engine, "bench", "bench", acting)
        if self.pg_url is not None:
            # The statistics autovacuum gathers in a live database within a minute of this much
            # writing: the sweep (ours and the raw one alike) is measured on a database in its
            # steady state, not on one whose planner has never seen a row (docs/benchmarks.md).
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        engine.dispose()  # PostgreSQL copies a template database only while nobody is connected to it
        self.sweep_acting = len(acting)
        return url

    def _copy(self, template: str) -> str:
        self.n += 1
        if self.citus_url is not None:
            # A cluster cannot be copied by CREATE DATABASE ... TEMPLATE: every run builds its own.
            return self.lifecycle_template()
        if template.startswith("postgresql"):
            return _pg_copy(template, self.n)
        path = self.tmp / f"bench-{self.n}.db"
        shutil.copy(template.removeprefix("sqlite:///"), path)
        # On disk before the clock starts, as a database at rest is: otherwise the first checkpoint of
        # the run being timed (SQLite syncs the file there) writes back the whole fresh copy.
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return f"sqlite:///{path}"

    def _drop(self, url: str) -> None:
        if url.startswith("postgresql") and self.citus_url is None:
            _pg_drop(url)

    def lifecycle_sweep(self, template: str) -> float:
        url = self._copy(template)
        engine = _connected(url)
        t = self.clock()
        report = lifecycle.run(engine, "bench", "bench", SWEEP_DAY)
        elapsed = self.elapsed(t)
        if len(report.applied) != self.sweep_acting:
            raise AssertionError(f"sweep applied {len(report.applied)} actions, expected {self.sweep_acting}")
        engine.dispose()
        self._drop(url)
        return elapsed

    def lifecycle_sweep_workers(self, template: str, workers: int = CLIENTS) -> float:
        """The same sweep started by `workers` worker processes at once (PostgreSQL: one sweeps, the
        others find the sweep taken and leave). One worker is measured this way too when compared
        with four: a worker is a process of its own, forked from this one, which pays for what the
        parent's pages cost it."""
        url = self._copy(template)
        elapsed = _in_processes(_sweep_worker, url, clients=workers)
        engine = make_engine(url)
        with engine.connect() as conn:
            applied = conn.exec_driver_sql("SELECT count(*) FROM lifecycle_actions").scalar_one()
        engine.dispose()
        self._drop(url)
        if applied != self.sweep_acting:
            raise AssertionError(f"{workers} workers applied {applied} actions, expected {self.sweep_acting}")
        return elapsed

    def raw_lifecycle(self, template: str) -> float:
        # On PostgreSQL the raw rows take explicit ids without advancing the sequences: the copy is
        # thrown away right after, so no later writer sees them.
        url = self._copy(template)
        conn = _raw_connection(url, setup=False)
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        texts = _sweep_texts(_sweep_rows(conn, now), now)
        t = self.clock()
        conn.execute("BEGIN IMMEDIATE")
        _raw_sweep(conn, texts)
        conn.execute("COMMIT")
        elapsed = self.elapsed(t)
        written = conn.execute("SELECT count(*) FROM lifecycle_actions").fetchone()[0]
        conn.close()
        self._drop(url)
        if written != self.sweep_acting:
            raise AssertionError(f"raw sweep wrote {written} actions, expected {self.sweep_acting}")
        return elapsed

    def run_lifecycle(self) -> None:
        template = self.lifecycle_template()
        accounts = 3 * self.sweep_groups
        extra = {"accounts": accounts, "acting": self.sweep_acting}
        # The sweep in this process, like the raw baseline: what one sweep costs against the bare driver.
        ours = self.median_rate("lifecycle sweep", accounts, lambda: self.lifecycle_sweep(template))
        self.emit("lifecycle_accounts_per_s", ours, "accounts/s", **extra)
        self.emit("lifecycle_sweep_s", accounts / ours, "s", **extra)
        raw = self.median_rate("raw lifecycle rows", accounts, lambda: self.raw_lifecycle(template))
        self.emit("raw_lifecycle_accounts_per_s", raw, "accounts/s", **extra)
        self.ratio("lifecycle_vs_raw", ours, raw, "lifecycle sweep", "raw lifecycle rows")
        if self.db != "sqlite":  # SQLite has one writer: one worker
            one, shared, pairs = self._sweeps_alternated(template, accounts)
            self.emit("lifecycle_accounts_per_s", shared, "accounts/s", workers=CLIENTS, **extra)
            self.emit("lifecycle_sweep_s", accounts / shared, "s", workers=CLIENTS, **extra)
            self.emit(
                "lifecycle_workers_vs_one", shared / one, "ratio",
                workers=CLIENTS, pairs=pairs, one_worker_s=round(accounts / one, 3),
            )  # fmt: skip

    def _sweeps_alternated(self, template: str, accounts: int) -> tuple[float, float, int]:
        """Median rates of one worker process and of CLIENTS worker processes, measured in turn (at
        least three pairs, `--quick` too): a slow moment of a busy machine then falls on both, not on
        one side of the ratio only."""
        one: list[float] = []
        many: list[float] = []
        pairs = max(self.repeat, 3)
        for i in range(pairs):
            if self.progress:
                self.progress.console.log(f"lifecycle sweep, 1 and {CLIENTS} workers in turn (pair {i + 1}/{pairs})")
            one.append(accounts / self.lifecycle_sweep_workers(template, workers=1))
            many.append(accounts / self.lifecycle_sweep_workers(template))
        return statistics.median(one), statistics.median(many), pairs

    # --- verify ---------------------------------------------------------------------------------
    def run_verify(self) -> None:
        """`alluse verify` over a ledger of `verify_postings` postings written through the bulk use case
        (so every row is bound to the audit chain), against the bare driver reading every posting and
        summing it per account: the least any recompute of the balances does. One run (the ledger
        takes longer to write than to verify)."""
        from alluse.services.verify import verify

        engine, gens = self._funded(1000)
        moves, batch = self.verify_postings // 2, 50_000
        for start in range(0, moves, batch):
            # Each deposit is followed by a withdrawal of the same amount from the same Gen-Acc, so no
            # account runs dry however many postings are asked for.
            chunk = [
                (f"v{i}", cash.deposit(gens[(i // 2) % len(gens)], 10_000, group=False))
                if i % 2 == 0
                else (f"v{i}", cash.withdrawal(gens[(i // 2) % len(gens)], 10_000))
                for i in range(start, min(moves, start + batch))
            ]
            cash.move_cash(engine, "bench", "bench", chunk)
        if self.progress:
            self.progress.console.log(f"verify over {self.verify_postings} postings")
        t = time.perf_counter()
        report = verify(engine)
        ours = time.perf_counter() - t
        if not report.ok:
            raise AssertionError(f"verify found problems in the bench ledger: {report.problems[:3]}")
        n = report.counts["postings"]
        url = engine.url.render_as_string(hide_password=False)
        engine.dispose()
        raw = _raw_connection(url, setup=False)
        t = time.perf_counter()
        cash_of: dict[int, int] = {}
        for _id, _pid, _tid, aid, amount in raw.execute(
            "SELECT id, portfolio_id, transfer_id, account_id, amount_cents FROM postings"
        ).fetchall():
            cash_of[aid] = cash_of.get(aid, 0) + amount
        raw_s = time.perf_counter() - t
        raw.close()
        self.emit("verify_postings_per_s", n / ours, "postings/s", postings=n, rows=report.counts["rows"])
        self.emit("raw_verify_postings_per_s", n / raw_s, "postings/s", postings=n)
        self.emit("verify_vs_raw", raw_s / ours, "ratio")

    def run(self) -> None:
        self.run_ledger()
        self.run_rest()

    def run_ledger(self) -> None:
        """Accounts and postings, ours and raw (`--only ledger`): the write-throughput figures."""
        acc_single = self.median_rate(
            "accounts, one group per unit of work", 3 * self.single_groups, self.accounts_single
        )
        self.emit("accounts_created_per_s", acc_single, "accounts/s", mode="single", groups=self.single_groups)
        raw_single = self.median_rate(
            "raw accounts, one group per transaction", 3 * self.single_groups, lambda: self.raw_accounts(True)
        )
        self.emit("raw_accounts_created_per_s", raw_single, "accounts/s", mode="single", groups=self.single_groups)
        acc_bulk = self.median_rate("accounts, bulk", 3 * self.bulk_groups, self.accounts_bulk)
        self.emit("accounts_created_per_s", acc_bulk, "accounts/s", mode="bulk", groups=self.bulk_groups)
        raw_bulk = self.median_rate("raw accounts, bulk", 3 * self.bulk_groups, lambda: self.raw_accounts(False))
        self.emit("raw_accounts_created_per_s", raw_bulk, "accounts/s", mode="bulk", groups=self.bulk_groups)
        self.ratio("accounts_created_bulk_vs_raw", acc_bulk, raw_bulk, "accounts, bulk", "raw accounts, bulk")
        self.ratio("accounts_created_single_vs_raw", acc_single, raw_single, "accounts, one group per unit of work",
                   "raw accounts, one group per transaction")  # fmt: skip

        p_single = self.median_rate("postings, one move per unit of work", 2 * self.single_moves, self.postings_single)
        self.emit("postings_per_s", p_single, "postings/s", mode="single", moves=self.single_moves)
        raw_p_single = self.median_rate(
            "raw postings, one move per transaction", 2 * self.single_moves, lambda: self.raw_postings(True)
        )
        self.emit("raw_postings_per_s", raw_p_single, "postings/s", mode="single", moves=self.single_moves)
        p_bulk = self.median_rate("postings, bulk", 2 * self.bulk_moves, self.postings_bulk)
        self.emit("postings_per_s", p_bulk, "postings/s", mode="bulk", moves=self.bulk_moves)
        raw_p_bulk = self.median_rate("raw postings, bulk", 2 * self.bulk_moves, lambda: self.raw_postings(False))
        self.emit("raw_postings_per_s", raw_p_bulk, "postings/s", mode="bulk", moves=self.bulk_moves)
        self.ratio("postings_bulk_vs_raw", p_bulk, raw_p_bulk, "postings, bulk", "raw postings, bulk")
        self.ratio("postings_single_vs_raw", p_single, raw_p_single, "postings, one move per unit of work",
                   "raw postings, one move per transaction")  # fmt: skip
        if self.db != "sqlite":
            n = 2 * CLIENTS * self.concurrent_moves
            p_conc = self.median_rate("postings, 4 concurrent clients", n, self.postings_concurrent)
            self.emit("postings_per_s", p_conc, "postings/s", mode="concurrent", clients=CLIENTS, moves=n // 2)
            raw_conc = self.median_rate("raw postings, 4 concurrent clients", n, self.raw_postings_concurrent)
            self.emit("raw_postings_per_s", raw_conc, "postings/s", mode="concurrent", clients=CLIENTS, moves=n // 2)
            self.emit("postings_concurrent_vs_raw", p_conc / raw_conc, "ratio")

    def run_rest(self) -> None:
        self.run_lifecycle()

        if self.db == "sqlite":
            # The trades figures are measured on SQLite only so far (their raw baseline is sqlite3).
            from alluse.bench.ibkr import run_ibkr
            from alluse.bench.trades import run_trades

            run_trades(self)
            run_ibkr(self)
        from alluse.bench.projection import run_projection

        run_projection(self)  # no database in the fast paths; the exact path uses its own, in memory
        from alluse.bench.web import run_web

        run_web(self)
        from alluse.bench.cli import run_cli

        run_cli(self)
        self.run_verify()


def _progress(out: IO[str]) -> Any:
    """Rich progress lines on a terminal; nothing but the JSON lines otherwise."""
    if out is not sys.stdout or not sys.stdout.isatty():
        return None
    from rich.progress import Progress

    return Progress(transient=True)


# --- PostgreSQL scratch databases and concurrent clients ---------------------------------------
def _scratch_url(url: str | None) -> str:
    if not url or not url.startswith("postgresql"):
        raise InvalidInput(
            "alluse bench --db postgres needs a PostgreSQL URL: set ALLUSE_DATABASE_URL=postgresql+psycopg://... "
            "or pass --url"
        )
    import sqlalchemy as sa

    target = sa.engine.make_url(url)
    scratch = target.set(database=f"{target.database}_bench")
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if (
            conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": scratch.database}).first()
            is None
        ):
            conn.exec_driver_sql(f'CREATE DATABASE "{scratch.database}"')
    admin.dispose()
    return scratch.render_as_string(hide_password=False)


def _citus_scratch(url: str | None) -> tuple[str, str]:
    """(the cluster's database named by the URL, the scratch database `<name>_bench` next to it)."""
    if not url or not url.startswith("postgresql"):
        raise InvalidInput("alluse bench --db citus needs the URL of a database on a Citus coordinator: pass --url")
    import sqlalchemy as sa

    target = sa.engine.make_url(url)
    return url, f"{target.database}_bench"


# Shards per table (and per partition) in the scratch database; Citus's default 32 only makes every
# fresh database slower to build on a small machine, a unit of work still reaches one shard group.
CITUS_BENCH_SHARDS = 4


def _fresh_citus(cluster_url: str, name: str) -> str:
    """The scratch database created anew on every node, migrated, and distributed by deploy/citus.sql."""
    from alluse.store.citus import create_database, distribute

    url = create_database(cluster_url, name)
    engine = make_engine(url)
    migrate(engine)
    distribute(engine, shard_count=CITUS_BENCH_SHARDS)
    engine.dispose()
    return url


def _fresh_pg(url: str) -> str:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    migrate(engine)
    engine.dispose()
    return url


def _in_processes(target: Callable[..., Callable[[], None]], url: str, *args: Any, clients: int = CLIENTS) -> float:
    """Seconds from the moment all `clients` processes are ready until the last one has done its
    work, by the time each one notes when it has (the monotonic clock is the machine's, the same in
    every process). `target(url, client, *args, ready, go)` does one process's work, waiting on the
    barrier `ready` and then the event `go` before it starts, and returns what lets go of its
    connections."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    ready, go, finished = ctx.Barrier(clients + 1), ctx.Event(), ctx.Barrier(clients)
    done = ctx.Array("d", clients, lock=False)
    procs = [ctx.Process(target=_timed, args=(target, done, finished, url, c, args, ready, go)) for c in range(clients)]
    for p in procs:
        p.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a client failed before it was ready
        ready.wait()
    t = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
    if any(p.exitcode != 0 for p in procs):
        raise RuntimeError("a benchmark client failed; rerun with ALLUSE_DEBUG=1 for its trace")
    return max(done) - t


def _timed(
    target: Callable[..., Callable[[], None]],
    done: Any,
    finished: Any,
    url: str,
    client: int,
    args: tuple[Any, ...],
    ready: Any,
    go: Any,
) -> None:
    try:
        close = target(url, client, *args, ready, go)
    except BaseException:
        ready.abort()  # nobody waits for this one any more: not the parent,
        finished.abort()  # nor the clients that are done
        raise
    done[client] = time.perf_counter()
    # A process that is done waits for the others before it closes its connections and exits: its
    # teardown (its server session ending, the kernel unmapping its forked copy of this heap: 4-6 ms
    # of a core) is not its work, and would otherwise take a core from those still working, as it did
    # from the sweep of the worker the other three had left to (docs/benchmarks.md, round fifteen).
    with contextlib.suppress(threading.BrokenBarrierError):
        finished.wait()
    close()


def _pg_admin(url: str, sql: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(sa.engine.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(sql)
    admin.dispose()


def _pg_copy(template: str, n: int) -> str:
    """A copy of the template database, made by the server (CREATE DATABASE ... TEMPLATE)."""
    import sqlalchemy as sa

    src = sa.engine.make_url(template)
    copy = src.set(database=f"{src.database}_copy{n}")
    _pg_admin(template, f'DROP DATABASE IF EXISTS "{copy.database}" WITH (FORCE)')
    _pg_admin(template, f'CREATE DATABASE "{copy.database}" TEMPLATE "{src.database}"')
    return copy.render_as_string(hide_password=False)


def _pg_drop(url: str) -> None:
    import sqlalchemy as sa

    _pg_admin(url, f'DROP DATABASE IF EXISTS "{sa.engine.make_url(url).database}" WITH (FORCE)')


def _connected(url: str) -> Any:
    """An engine whose pool holds one open connection. A sweep runs in a process that is connected
    already, as the raw baseline's connection is opened before its clock starts and each concurrent
    client warms up before the barrier: the sweep is timed, not a server starting a session (on
    PostgreSQL, the first session of a fresh copy also builds the database's catalog cache file)."""
    engine = make_engine(url)
    engine.connect().close()
    return engine


def _sweep_worker(url: str, worker: int, ready: Any, go: Any) -> Callable[[], None]:
    engine = _connected(url)
    ready.wait()
    go.wait()
    lifecycle.run(engine, f"bench-worker-{worker}", "bench", SWEEP_DAY)
    return engine.dispose


def _client_moves(url: str, client: int, moves: int, ready: Any, go: Any) -> Callable[[], None]:
    engine = make_engine(url)
    name = f"client{client}"
    with engine.connect() as conn:
        pid = conn.exec_driver_sql("SELECT id FROM portfolio_directory WHERE name = %(n)s", {"n": name}).scalar_one()
        gens = list(
            conn.exec_driver_sql(
                "SELECT id FROM accounts WHERE portfolio_id = %(p)s AND kind = 'GEN' ORDER BY id", {"p": pid}
            ).scalars()
        )
    cash.move_cash(engine, "bench", name, [("warm-up", cash.deposit(gens[0], 100, group=False))])
    ready.wait()
    go.wait()
    for i in range(moves):
        move = (
            cash.deposit(gens[i % len(gens)], 10_000, group=False)
            if i % 2 == 0
            else cash.withdrawal(gens[i % len(gens)], 10_000)
        )
        cash.move_cash(engine, "bench", name, [(f"m{i}", move)])
    return engine.dispose


def _raw_client_moves(url: str, client: int, moves: int, ready: Any, go: Any) -> Callable[[], None]:
    conn = _raw_connection(url, setup=False)
    # Each client owns a disjoint slice of the sequence numbers and of the 1000 Gen-Accs.
    starts = [client * 1_000_000 + i for i in range(moves)]
    texts = [move_texts(start, 1, client) for start in starts]
    ready.wait()
    go.wait()
    for start, written in zip(starts, texts, strict=True):
        conn.execute("BEGIN")
        _raw_move_rows(conn, start, 1, client, written)
        conn.execute("COMMIT")
    return conn.close


# --- the raw baseline: the same rows, bare driver ------------------------------------------------
def _section(bench: Bench, only: str) -> Callable[[], None]:
    """One part of the benchmark, by the name `--only` takes (`SECTIONS`)."""
    if only == "ibkr":
        from alluse.bench.ibkr import run_ibkr

        if bench.db != "sqlite":
            raise InvalidInput("--only ibkr runs on SQLite (its raw baseline is sqlite3)")
        return lambda: run_ibkr(bench)
    if only == "trades":
        from alluse.bench.trades import run_trades

        if bench.db != "sqlite":
            raise InvalidInput("--only trades runs on SQLite (its raw baseline is sqlite3)")
        return lambda: run_trades(bench)
    if only == "projection":
        from alluse.bench.projection import run_projection

        return lambda: run_projection(bench)
    if only == "web":
        from alluse.bench.web import run_web

        return lambda: run_web(bench)
    if only == "events":
        from alluse.bench import events

        return lambda: events.run(bench)
    if only == "cli":
        from alluse.bench.cli import run_cli

        return lambda: run_cli(bench)
    return {"ledger": bench.run_ledger, "lifecycle": bench.run_lifecycle, "verify": bench.run_verify}[only]


# The names `alluse bench --only` takes; events needs a NATS server (ALLUSE_NATS_URL).
SECTIONS = ("ledger", "lifecycle", "trades", "verify", "ibkr", "projection", "web", "cli", "events")


def run_bench(
    db: str, quick: bool, out: IO[str], url: str | None = None, http: bool = False, only: str | None = None
) -> None:
    if only is not None and only not in SECTIONS:
        raise InvalidInput(f"--only takes {', '.join(SECTIONS[:-1])} or {SECTIONS[-1]}, got {only!r}")
    bench = Bench(db, quick, out, url)
    if http:
        from alluse.bench.http import HttpBench

        section: Callable[[], None] = HttpBench(bench).run
    else:
        section = bench.run if only is None else _section(bench, only)
    if bench.progress:
        with bench.progress:
            section()
    else:
        section()


# The kinds of an acting sleeve's two events, its action's and its alert's: a Gen-Acc forks, the others reinvest.
_SWEEP_EVENTS = {"GEN": ("lifecycle.gen_fork", "alert.fork_ready")}
_REINVEST_EVENTS = ("lifecycle.reinvest", "alert.reinvestment_ready")


class _SweepRows(NamedTuple):
    opened: OpenedRows  # the forks' groups
    cash: list[tuple]
    actions: list[tuple]
    events: list[tuple]
    earmarks: list[tuple]
    earmarked: list[tuple]
    audit: list[tuple]
    seq: int
    event_seq: int
    acting: list[tuple]  # (account, group, kind, result) as the candidate scan found them


def _sweep_rows(conn: Any, now: str) -> _SweepRows:
    """The candidate scan, then the rows a quarter-end sweep writes, by the bare driver's arithmetic
    (see `_raw_sweep`)."""
    acting = conn.execute(
        "SELECT id, group_id, kind, cash_cents + positions_value_cents - base_capital_cents FROM accounts "
        "WHERE portfolio_id = 1 AND status = 'ACTIVE' AND kind != 'EXT' AND ((kind = 'GEN' AND "
        "cash_cents + positions_value_cents - base_capital_cents >= 5000000) OR (kind IN ('REV', 'COM') AND "
        "cash_cents + positions_value_cents - base_capital_cents > 0)) ORDER BY id"
    ).fetchall()
    seq, head, ev_seq = conn.execute("SELECT audit_seq, audit_head, event_seq FROM portfolios WHERE id = 1").fetchone()
    gid = conn.execute("SELECT max(id) FROM account_groups").fetchone()[0]
    aid = conn.execute("SELECT max(id) FROM accounts").fetchone()[0]
    tid = conn.execute("SELECT max(id) FROM transfers").fetchone()[0]
    bid = conn.execute("SELECT max(id) FROM brokerage_accounts").fetchone()[0]
    groups_, accs, cfgs, brks, trs, posts, cash, acts, evs, marks, earm, audit = ([] for _ in range(12))
    for n, (acc, group, kind, result) in enumerate(acting):
        seq += 1
        action = n + 1
        if kind == "GEN":
            amount = result - result * 3 // 10
            gid, tid = gid + 1, tid + 1
            groups_.append((gid, f"F{gid}", group, acc, now))
            trs.append((tid, tid, seq, now))  # one portfolio: number = id
            posts.append((tid, acc, -amount))
            for sleeve, half in (("GEN", amount // 2), ("COM", amount - amount // 2)):
                aid, bid = aid + 1, bid + 1
                accs.append((aid, gid, sleeve, f"F{gid}-{aid}", acc, half, half, now))
                cfgs.append((aid,))
                brks.append((bid, f"PB{bid:07d}", aid, now))
                posts.append((tid, aid, half))
            cash.append((amount, acc))
        else:
            tax = result * 3 // 10
            split = (tax, (result - tax) * 3 // 4, (result - tax) - (result - tax) * 3 // 4)
            marks += [
                (acc, p, v, action, seq, now) for p, v in zip(("TAX_RESERVE", "SHARES", "LEAPS"), split, strict=True)
            ]
            earm.append((result, acc))
            amount = result - tax
        acts.append((action, f"k{acc}", acc, amount, seq, now))
        for kind_ in _SWEEP_EVENTS.get(kind, _REINVEST_EVENTS):
            ev_seq += 1
            evs.append((kind_, action, acc, seq, now, ev_seq, str(uuid.uuid4())))
        audit.append((seq, now, f"k{acc}", head, head))
    opened = OpenedRows(groups_, accs, cfgs, brks, trs, posts)
    return _SweepRows(opened, cash, acts, evs, marks, earm, audit, seq, ev_seq, acting)


class _SweepTexts(NamedTuple):
    results: list[str]  # each action's audit result
    plans: list[str]  # its plan: the action's detail and its lifecycle event's payload
    alerts: list[str]  # its alert event's payload
    manifests: list[str | None]


def _sweep_texts(rows: _SweepRows, now: str) -> _SweepTexts:
    """The texts of the sweep's rows (see bench/raw.Texts): per action its result, its plan and its
    alert, and the row manifests, one for the reinvestments and one for the forks, each on the last
    entry of its kind, as the sweep's two units of work put them."""
    texts = _SweepTexts([], [], [], [None] * len(rows.acting))
    for (acc, group, kind, result), (action, _key, _acc, amount, _seq, _at) in zip(
        rows.acting, rows.actions, strict=True
    ):
        label, usd = f"{SLEEVE_LABEL[AccountKind(kind)]} A{group}-{kind}", format_usd(amount)
        if kind == "GEN":
            half = amount // 2
            reason = (f"post-tax surplus {usd} ≥ $50,000.00: fork {usd} into a new FORK group (Gen {format_usd(half)}, "
                      f"Com {format_usd(half)})")  # fmt: skip
            texts.results.append(_json({"account": label, "action_id": action, "amount_cents": amount,
                                        "group": f"A{group}F1", "group_id": group, "parent_group_id": group,
                                        "reason": reason, "rule": "GEN_FORK"}))  # fmt: skip
            texts.plans.append(_json({"account_id": acc, "amount_cents": amount, "deployable_cents": result,
                                      "legs": {"COM": half, "GEN": half}, "outcome": "APPLY", "reason": reason,
                                      "rule": "GEN_FORK", "surplus_cents": amount}))  # fmt: skip
            texts.alerts.append(_json({"account_id": acc, "message": f"{label}: GEN_FORK applied, new group "
                                       f"A{group}F1 funded with {usd}: fund its brokerage accounts",
                                       "rule": "fork_ready", "state": "raised"}))  # fmt: skip
        else:
            tax, now_, later = result - amount, amount * 3 // 4, amount - amount * 3 // 4
            reason = (f"2026Q4 realized gain {format_usd(result)}; tax reserve {format_usd(tax)}; reinvestable {usd} "
                      f"(post-tax); contracts {format_usd(now_)}; leaps {format_usd(later)}")  # fmt: skip
            earmarks = {"CONTRACTS": now_, "LEAPS": later}
            texts.results.append(_json({"account": label, "action_id": action, "amount_cents": amount,
                                        "earmarks": {**earmarks, "TAX_RESERVE": tax}, "period": "2026Q4",
                                        "reason": reason, "rule": "REINVEST"}))  # fmt: skip
            texts.plans.append(_json({"account_id": acc, "buffer_restore_cents": 0, "buffer_shortfall_cents": 0,
                                      "earmarks": earmarks, "not_earmarked_cents": 0, "outcome": "APPLY",
                                      "period": "2026Q4", "realized_gain_cents": result, "reason": reason,
                                      "reinvestable_cents": amount, "rule": "REINVEST", "still_below_buffer": False,
                                      "tax_reserve_cents": tax}))  # fmt: skip
            texts.alerts.append(_json({"account_id": acc, "message": f"{label}: reinvestment plan for 2026Q4 ready, "
                                       f"{usd} earmarked", "rule": "reinvestment_ready", "state": "raised"}))  # fmt: skip
    rows = _with_texts(rows, texts)
    forks = [i for i, a in enumerate(rows.acting) if a[2] == "GEN"]
    reinvests = [i for i, a in enumerate(rows.acting) if a[2] != "GEN"]
    for idx, tables in (
        (reinvests, {"earmarks": rows.earmarks}),
        (forks, rows.opened.tables()),
    ):  # fmt: skip
        if idx:
            mine = {rows.actions[i][0] for i in idx}
            texts.manifests[idx[-1]] = _manifest(
                {**tables, "lifecycle_actions": [a for a in rows.actions if a[0] in mine],
                 "events": [e for e in rows.events if e[1] in mine]}
            )  # fmt: skip
    return texts


def _with_texts(rows: _SweepRows, texts: _SweepTexts) -> _SweepRows:
    """The rows with their texts: an action's plan as its detail, its events' payloads."""
    acts = [(*a, _json({"plan": texts.plans[i]})) for i, a in enumerate(rows.actions)]
    evs = [(*e, texts.plans[i // 2] if i % 2 == 0 else texts.alerts[i // 2]) for i, e in enumerate(rows.events)]
    return rows._replace(actions=acts, events=evs)


def _raw_sweep(conn: Any, texts: _SweepTexts) -> None:
    """The rows a quarter-end sweep writes, by the bare driver: the same candidate scan, then per fork a
    group, two accounts with config and paper brokerage, a three-leg transfer, the parent's cash; per
    reinvestment three earmarks and the cached total; per action an action row, two events and an audit
    entry, with `texts` (`_sweep_texts`, made before the clock starts). No planning rules beyond the
    arithmetic the rows need."""
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    r = _with_texts(_sweep_rows(conn, now), texts)
    groups_, accs, cfgs, brks, trs, posts = r.opened
    cash, acts, evs, marks, earm = r.cash, r.actions, r.events, r.earmarks, r.earmarked
    audit = [
        (at_seq, at, key, texts.results[i], prev, hash_, texts.manifests[i])
        for i, (at_seq, at, key, prev, hash_) in enumerate(r.audit)
    ]
    seq, ev_seq = r.seq, r.event_seq
    conn.executemany(
        "INSERT INTO account_groups (id, portfolio_id, name, kind, status, parent_group_id, forked_from_account_id, "
        "alloc_gen_bps, alloc_rev_bps, alloc_com_bps, opened_at) VALUES (?, 1, ?, 'FORK', 'ACTIVE', ?, ?, 5000, 0, "
        "5000, ?)",
        groups_,
    )
    conn.executemany(
        "INSERT INTO accounts (id, portfolio_id, group_id, kind, name, status, forked_from_account_id, buffer_bps, "
        "cash_cents, base_capital_cents, opened_at) VALUES (?, 1, ?, ?, ?, 'ACTIVE', ?, 500, ?, ?, ?)",
        accs,
    )
    conn.executemany(
        "INSERT INTO account_config (account_id, portfolio_id, template, overrides) VALUES (?, 1, 'moderate', '{}')",
        cfgs,
    )
    conn.executemany(
        "INSERT INTO brokerage_accounts (id, portfolio_id, broker, number, account_id, registered_at) "
        "VALUES (?, 1, 'PAPER', ?, ?, ?)",
        brks,
    )
    conn.executemany(
        "INSERT INTO transfers (id, portfolio_id, number, kind, memo, audit_seq, created_at) VALUES (?, 1, ?, 'FORK', '', ?, ?)",
        trs,
    )
    conn.executemany(
        "INSERT INTO postings (portfolio_id, transfer_id, account_id, amount_cents) VALUES (1, ?, ?, ?)", posts
    )
    conn.executemany("UPDATE accounts SET cash_cents = cash_cents - ? WHERE id = ?", cash)
    conn.executemany(
        "INSERT INTO lifecycle_actions (id, portfolio_id, rule, idempotency_key, as_of, account_id, amount_cents, "
        "audit_seq, created_at, detail) VALUES (?, 1, 'REINVEST', ?, '2026-12-31', ?, ?, ?, ?, ?)",
        acts,
    )
    conn.executemany(
        "INSERT INTO earmarks (portfolio_id, account_id, purpose, amount_cents, action_id, audit_seq, created_at) "
        "VALUES (1, ?, ?, ?, ?, ?, ?)",
        marks,
    )
    conn.executemany("UPDATE accounts SET earmarked_cents = earmarked_cents + ? WHERE id = ?", earm)
    conn.executemany(
        "INSERT INTO events (portfolio_id, kind, action_id, account_id, audit_seq, created_at, seq, event_id, "
        "payload, version) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
        evs,
    )
    conn.execute("UPDATE portfolios SET event_seq = ? WHERE id = 1", (ev_seq,))
    conn.executemany(
        f"INSERT INTO audit_log VALUES (1, ?, ?, 'bench', 'lifecycle', ?, '', ?, NULL, ?, ?, '{_KEY_ID}', ?)", audit
    )
    conn.execute("UPDATE portfolios SET audit_seq = ? WHERE id = 1", (seq,))
