"""Kill `alluse events relay` with SIGKILL at random points while another process writes events to two
portfolios, restart it each time, and require the JetStream stream to end up holding every event
exactly once, in each portfolio's sequence order (JetStream drops what a killed relay had published
but not yet marked, by the event id it carries as Nats-Msg-Id).

Processes are forked from the test (the CLI command itself runs in the child), so a restart costs
milliseconds and a kill lands anywhere: while connecting, between a publish and its acknowledgement,
between the acknowledgements and the cursor update, inside that transaction.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable

import sqlalchemy as sa

from alluse.services import cash, groups
from alluse.services.portfolios import create_portfolio
from alluse.store.schema import events
from tests.conftest import Stream

KILLS = 25
WRITES = {"sqlite": 240, "postgresql": 60}  # per portfolio (a PostgreSQL commit here waits for fsync)
PORTFOLIOS = ("main", "second")


def _fork(body: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:  # the child: run, then out without any of pytest's teardown
        code = 1
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            body()
            code = 0
        finally:
            os._exit(code)
    return pid


def _relay(url: str, stream: Stream, *extra: str) -> Callable[[], None]:
    def body() -> None:
        from alluse.cli.main import app

        args = ["--db", url, "events", "relay", "--no-webhooks", "--stream", stream.name, "--prefix", stream.prefix]
        app([*args, *extra], standalone_mode=False)

    return body


def _writer(url: str, writes: int) -> Callable[[], None]:
    def body() -> None:
        from alluse.store.db import make_engine

        engine = make_engine(url)
        for i in range(writes):
            for p in PORTFOLIOS:
                cash.move_cash(engine, "writer", p, [(f"w{i}", cash.deposit("A1", 100 + i))])
            time.sleep(0.004)

    return body


def _exit_code(pid: int) -> int | None:
    """The child's exit code once it has ended (reaping it), None while it runs."""
    done, status = os.waitpid(pid, os.WNOHANG)
    return None if done == 0 else os.waitstatus_to_exitcode(status)


def test_a_relay_killed_at_random_points_delivers_every_event_once_in_order(engine: sa.Engine, stream: Stream) -> None:
    for p in PORTFOLIOS:
        create_portfolio(engine, "t", p, f"create:{p}")
        groups.open_group(engine, "t", p, f"open:{p}", groups.group_opening(10_000_000))
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()  # no connection may cross a fork

    rng = random.Random(20261130)
    writes = WRITES[engine.dialect.name]
    writer = _fork(_writer(url, writes))
    kills, wrote = 0, None
    while wrote is None or kills < KILLS:
        relay = _fork(_relay(url, stream))
        time.sleep(rng.uniform(0.0, 0.15))
        ended = _exit_code(relay)
        assert ended is None, f"the relay exited by itself ({ended})"
        os.kill(relay, signal.SIGKILL)
        os.waitpid(relay, 0)
        kills += 1
        wrote = wrote if wrote is not None else _exit_code(writer)
    assert wrote == 0
    final = _fork(_relay(url, stream, "--once"))
    assert os.waitstatus_to_exitcode(os.waitpid(final, 0)[1]) == 0

    with engine.connect() as conn:
        written = dict(
            conn.execute(sa.select(events.c.portfolio_id, sa.func.count()).group_by(events.c.portfolio_id)).all()
        )
    engine.dispose()
    assert sorted(written.values()) == [2 + writes, 2 + writes]  # portfolio.create, group.open, the deposits
    got: dict[int, list[int]] = {}
    for subject, env, headers in stream.messages():
        assert subject.startswith(f"{stream.prefix}.{env['portfolio_id']}.") and headers["Nats-Msg-Id"] == env["id"]
        got.setdefault(env["portfolio_id"], []).append(env["seq"])
    # Every event exactly once, each portfolio in its sequence order.
    assert got == {pid: list(range(1, n + 1)) for pid, n in written.items()}
    assert kills >= KILLS
