"""`alluse bench --http`: the REST API under real HTTP load on loopback.

A uvicorn server (as many worker processes as `alluse serve` starts) serves the app on a fresh database
(SQLite, or PostgreSQL with `--db postgres`); a second process (this module's `load` entry point) keeps
several keep-alive connections busy and times every request from the first byte sent to the last byte
read. Reads fetch one account; writes are deposits, each with its own
idempotency key (so each is a full unit of work: buffer rules, journal, audit chain); fills are the
round trips of `alluse bench`'s fill benchmark (10 XYZ bought, then sold, in each Com-Acc), one per
request. The raw baseline reads the same account rows and writes the same deposit and fill rows with
the bare driver, one transaction each, in the same run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
GROUPS = 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _server_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a process and all its descendants, from /proc (Linux;
    0.0 elsewhere). The server's CPU per request does not depend on what else the machine runs, where
    its requests per second do."""
    procs: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        procs[int(entry.parent.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    tree, grew = {pid}, True
    while grew:
        grew = False
        for p, (parent, _) in procs.items():
            if parent in tree and p not in tree:
                tree.add(p)
                grew = True
    return sum(procs[p][1] for p in tree if p in procs)


def _request(method: str, path: str, token: str, body: dict | None = None, key: str | None = None) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", f"Authorization: Bearer {token}"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    if key:
        lines.append(f"Idempotency-Key: {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class _Client(asyncio.Protocol):
    """One keep-alive connection sending its requests one at a time: the next leaves as soon as the
    last byte of the answer before it has arrived. A protocol rather than a stream reader and writer:
    no task wakes up per answer, so the load generator takes less of the CPU the server runs on."""

    def __init__(self, requests: list[bytes], latencies: list[float], statuses: dict[int, int]) -> None:
        self.requests = iter(requests)
        self.latencies, self.statuses = latencies, statuses
        self.buffer = b""
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.sent = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._next()

    def _next(self) -> None:
        assert self.transport is not None
        req = next(self.requests, None)
        if req is None:
            self.sent = 0.0
            self.transport.close()
            return
        self.sent = time.perf_counter()
        self.transport.write(req)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.latencies.append(time.perf_counter() - self.sent)
            status = int(head[9:12])
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if self.sent:  # an answer was still awaited
            self.done.set_exception(exc or ConnectionError("the server closed the connection mid-answer"))
        else:
            self.done.set_result(None)


async def _worker(port: int, requests: list[bytes], latencies: list[float], statuses: dict[int, int]) -> None:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: _Client(requests, latencies, statuses), HOST, port)
    await client.done


async def _load(port: int, requests: list[bytes], concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    # Each account's requests ride one connection, in order: a fill's STC never overtakes its BTO,
    # however many server processes answer.
    shares = [[r for i, r in enumerate(requests) if i % GROUPS % concurrency == c] for c in range(concurrency)]
    t = time.perf_counter()
    await asyncio.gather(*(_worker(port, s, latencies, statuses) for s in shares))
    elapsed = time.perf_counter() - t
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "statuses": statuses,
    }


def load_main(spec_text: str) -> None:
    """The load-generating process: builds its requests, runs them, prints one JSON result."""
    spec = json.loads(spec_text)
    token, port, n, kind = spec["token"], spec["port"], spec["n"], spec["kind"]
    accounts = [f"A{1 + i % GROUPS}-GEN" for i in range(n)]
    if kind == "read":
        reqs = [_request("GET", f"/portfolios/bench/accounts/{a}", token) for a in accounts]
    elif kind == "fill":
        from alluse.bench.trades import COMMISSION, DAY, PRICE, QTY

        reqs = []
        for i in range(n):
            fact = {
                "account": f"A{1 + i % GROUPS}-COM",
                "action": "BTO" if (i // GROUPS) % 2 == 0 else "STC",
                "symbol": "XYZ",
                "quantity": QTY,
                "price": PRICE,
                "commission": f"{COMMISSION // 100}.{COMMISSION % 100:02d}",
                "trade_date": DAY.isoformat(),
            }
            reqs.append(_request("POST", "/portfolios/bench/fills", token, fact, f"{spec['run']}-{i}"))
    else:
        run = spec["run"]
        reqs = [
            _request("POST", "/portfolios/bench/deposits", token, {"to": a, "amount": "100.00"}, f"{run}-{i}")
            for i, a in enumerate(accounts)
        ]
    print(json.dumps(asyncio.run(_load(port, reqs, spec["concurrency"]))))


class HttpBench:
    def __init__(self, bench: Any) -> None:
        self.bench = bench
        quick = bench.quick
        self.reads = 2_000 if quick else 10_000
        self.writes = 600 if quick else 3_000
        self.concurrency = 8
        from alluse.config import get_settings, server_workers

        # As `alluse serve` runs it: ALLUSE_WORKERS, else one process per CPU (at most 4).
        self.workers = server_workers(get_settings().workers)
        # ALLUSE_HTTP_PROFILE=FILE: one server process under cProfile, its statistics saved to FILE and
        # the top lines printed to stderr after the run (docs/benchmarks.md, "Profile").
        self.profile = os.environ.get("ALLUSE_HTTP_PROFILE") or None
        if self.profile:
            self.workers = 1

    def _prepare(self) -> tuple[str, Path, str]:
        from alluse.config import Settings
        from alluse.security.keyring import load_keyring
        from alluse.security.tokens import TokenIssuer
        from alluse.services import access, groups
        from alluse.store.db import make_engine

        url = self.bench.fresh_url()
        engine = make_engine(url)
        from alluse.services.portfolios import create_portfolio
        from alluse.views.access import portfolio_id_for

        create_portfolio(engine, "bench", "bench", "bench:portfolio")
        groups.open_groups(
            engine, "bench", "bench", [(f"g{i}", groups.group_opening(10_000_000)) for i in range(GROUPS)]
        )
        user = access.create_user(engine, "bench", "bench-password-not-secret")
        with engine.connect() as conn:
            pid = portfolio_id_for(conn, "bench")
        assert pid is not None
        access.grant_role(engine, "bench", pid, "bench", "trader", "bench:grant")
        engine.dispose()
        key_file = self.bench.tmp / "bench.key"
        settings = Settings(database_url=url, key_file=str(key_file))
        token = TokenIssuer.from_settings(settings, load_keyring(settings)).pair(user["user_id"], 0)["access_token"]
        return url, key_file, token

    def _serve(self, url: str, key_file: Path, port: int) -> subprocess.Popen:
        # The same keys as the process that built the database and issued the token (ALLUSE_SECRET_KEY
        # when it is set, else the key file): the audit chain and the token must verify on the server.
        env = {**os.environ, "ALLUSE_DATABASE_URL": url, "ALLUSE_KEY_FILE": str(key_file)}
        from alluse.api.server import PROTOCOL

        profiler = ["-m", "cProfile", "-o", self.profile] if self.profile else []
        server = subprocess.Popen(
            [sys.executable, *profiler, "-m", "uvicorn", "alluse.api.app:create_app", "--factory", "--host", HOST]
            + ["--port", str(port), "--workers", str(self.workers), "--log-level", "warning", "--no-access-log"]
            + ["--http", PROTOCOL, "--no-proxy-headers"],  # as `alluse serve` runs it (cli/admin.py)
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # the JSON request log is written, as in production, and discarded
        )
        deadline = time.monotonic() + 120  # each worker imports the app afresh: slow on a busy machine
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return server
            except OSError:
                time.sleep(0.1)
        server.terminate()  # the supervisor stops its workers; a killed one would leave them running
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        raise RuntimeError("the benchmark server did not become ready within 120 s")

    def _drive(self, port: int, token: str, kind: str, n: int, run: str = "", server: int = 0) -> dict[str, Any]:
        spec = {"token": token, "port": port, "n": n, "kind": kind, "concurrency": self.concurrency, "run": run}
        cpu = _server_cpu_seconds(server) if server else 0.0
        done = subprocess.run(
            [sys.executable, "-m", "alluse.bench.http", "load", json.dumps(spec)],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        result = json.loads(done.stdout)
        if server:
            result["server_cpu_us"] = 1e6 * (_server_cpu_seconds(server) - cpu) / max(1, result["requests"])
        bad = {s: c for s, c in result["statuses"].items() if not 200 <= int(s) < 300}
        if bad:
            raise RuntimeError(f"benchmark {kind} requests failed: {bad}")
        return result

    def run(self) -> None:
        url, key_file, token = self._prepare()
        port = _free_port()
        server = self._serve(url, key_file, port)
        try:
            self._drive(port, token, "read", 300)  # warm-up: connections, statement caches
            reads = self._drive(port, token, "read", self.reads, server=server.pid)
            writes = self._drive(port, token, "write", self.writes, run="w", server=server.pid)
            fills = self._drive(port, token, "fill", self.writes, run="f", server=server.pid)
        finally:
            # SIGINT: uvicorn shuts down cleanly, so a profiled server writes its statistics.
            server.send_signal(signal.SIGINT if self.profile else signal.SIGTERM)
            server.wait(timeout=30)
        if self.profile:
            import pstats

            stats = pstats.Stats(self.profile, stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(r"alluse|fastapi|starlette|uvicorn|sqlalchemy|jwt", 40)
        raw_reads = self._raw_reads(url, self.reads)
        raw_writes = self._raw_writes(self.writes)
        extra = {"concurrency": self.concurrency, "transport": "http/1.1 keep-alive, loopback"}
        extra["server"] = f"uvicorn, {self.workers} worker{'s' if self.workers > 1 else ''}"
        e = self.bench.emit
        r_rate = reads["requests"] / reads["seconds"]
        w_rate = writes["requests"] / writes["seconds"]
        e("http_reads_per_s", r_rate, "requests/s", requests=reads["requests"], what="GET one account", **extra)
        e("http_read_p50_ms", reads["p50_ms"], "ms", **extra)
        e("http_read_p99_ms", reads["p99_ms"], "ms", **extra)
        e("http_read_server_cpu_us", reads["server_cpu_us"], "us", what="server CPU time per request", **extra)
        e("raw_reads_per_s", raw_reads, "rows/s", requests=self.reads, what="bare driver SELECT of the same rows")
        e("http_reads_vs_raw", r_rate / raw_reads, "ratio")
        e("http_writes_per_s", w_rate, "requests/s", requests=writes["requests"], what="POST deposit", **extra)
        e("http_write_p50_ms", writes["p50_ms"], "ms", **extra)
        e("http_write_p99_ms", writes["p99_ms"], "ms", **extra)
        e("http_write_server_cpu_us", writes["server_cpu_us"], "us", what="server CPU time per request", **extra)
        e("raw_writes_per_s", raw_writes, "deposits/s", what="bare driver, same rows, one transaction each")
        e("http_writes_vs_raw", w_rate / raw_writes, "ratio")
        from alluse.bench.trades import raw_fills

        raw_fill_rate = self.bench.single_fills / raw_fills(self.bench, True)
        f_rate = fills["requests"] / fills["seconds"]
        e("http_fills_per_s", f_rate, "requests/s", requests=fills["requests"], what="POST fill", **extra)
        e("http_fill_p50_ms", fills["p50_ms"], "ms", **extra)
        e("http_fill_p99_ms", fills["p99_ms"], "ms", **extra)
        e("http_fill_server_cpu_us", fills["server_cpu_us"], "us", what="server CPU time per request", **extra)
        e(
            "raw_fills_per_s",
            raw_fill_rate,
            "fills/s",
            mode="single",
            what="bare driver, same rows, one transaction each",
        )
        e("http_fills_vs_raw", f_rate / raw_fill_rate, "ratio")

    def _raw_reads(self, url: str, n: int) -> float:
        from alluse.bench.raw import _raw_connection

        conn = _raw_connection(url, setup=False)  # bare sqlite3, or psycopg for --db postgres
        names = [f"A{1 + i % GROUPS}-GEN" for i in range(n)]
        sql = (
            "SELECT a.id, a.name, a.kind, a.status, g.name, a.cash_cents, a.positions_value_cents, "
            "a.collateral_cents, a.earmarked_cents, a.buffer_bps, a.base_capital_cents, b.broker, b.number "
            "FROM accounts a JOIN account_groups g ON g.portfolio_id = a.portfolio_id AND g.id = a.group_id "
            "LEFT JOIN brokerage_accounts b ON b.portfolio_id = a.portfolio_id AND b.account_id = a.id WHERE a.portfolio_id = 1 AND a.name = ?"
        )
        t = time.perf_counter()
        for name in names:
            conn.execute("BEGIN")
            conn.execute(sql, (name,)).fetchall()
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - t
        conn.close()
        return n / elapsed

    def _raw_writes(self, n: int) -> float:
        from alluse.bench.raw import _raw_group_rows, _raw_move_rows, move_texts

        conn = self.bench.raw()
        conn.execute("BEGIN IMMEDIATE")
        _raw_group_rows(conn, 0, 1000)
        conn.execute("COMMIT")
        texts = [move_texts(2 * i, 1) for i in range(n)]  # even offsets: deposits
        t = time.perf_counter()
        for i, written in enumerate(texts):
            conn.execute("BEGIN IMMEDIATE")
            _raw_move_rows(conn, 2 * i, 1, texts=written)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - t
        conn.close()
        return n / elapsed


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "load":
        load_main(sys.argv[2])
    else:
        sys.exit("usage: python -m alluse.bench.http load SPEC_JSON")
