"""Group commit (SQLite, store/uow.py): small units of work that threads start while another one runs
are committed together, each keeping its own audit entry, and one that fails leaves no trace."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from alluse.domain.errors import InvalidInput
from alluse.services import cash, groups
from alluse.services.verify import verify
from alluse.store import uow
from alluse.store.db import writer_lock
from alluse.store.schema import audit_log, transfers
from alluse.store.uow import Request, Tx
from alluse.views.accounts import account_tree
from tests.conftest import sqlite_statements


@pytest.fixture
def book(sqlite_engine: sa.Engine) -> sa.Engine:
    from alluse.services.portfolios import create_portfolio

    create_portfolio(sqlite_engine, "test", "main", "test:portfolio")
    groups.open_group(sqlite_engine, "t", "main", "g1", groups.group_opening(10_000_000))
    return sqlite_engine


class _Begins:
    """The transactions begun on the engine's connections, as SQLite ran their BEGINs."""

    def __init__(self, statements: list[str]) -> None:
        self.statements = statements
        self.start = 0

    def __len__(self) -> int:
        return sum(s.startswith("BEGIN") for s in self.statements[self.start :])

    def clear(self) -> None:
        self.start = len(self.statements)


@pytest.fixture
def begins(book: sa.Engine) -> Iterator[_Begins]:
    with sqlite_statements(book) as statements:
        yield _Begins(statements)


def _deposit(engine: sa.Engine, key: str) -> Callable[[], Any]:
    return lambda: cash.move_cash(engine, "t", "main", [(key, cash.deposit("A1-GEN", 100))])


def _wrote_then_failed(engine: sa.Engine, key: str, error: Callable[[Tx], BaseException]) -> Callable[[], Any]:
    """A unit of work that writes a whole deposit (journal, balances, transfer), then fails."""

    def apply(tx: Tx, _fresh: list[Request]) -> list[dict[str, Any]]:
        cash._apply(tx, [cash.deposit("A1-GEN", 7)], False)
        raise error(tx)

    return lambda: uow.write(engine, "main", "t", "cash.deposit", [Request(key, {"n": 1})], apply)


def _run_grouped(engine: sa.Engine, calls: list[Callable[[], Any]]) -> list[Any]:
    """Start every call while the writer lock is held here, so that they queue behind the first,
    which leads and waits for the lock; then let it go. Each call's result or error, in order."""
    outcomes: list[Any] = [None] * len(calls)

    def call(i: int, fn: Callable[[], Any]) -> None:
        try:
            outcomes[i] = fn()
        except Exception as exc:
            outcomes[i] = exc

    group = uow._group(engine)
    threads = [threading.Thread(target=call, args=(i, fn)) for i, fn in enumerate(calls)]
    deadline = time.monotonic() + 10
    with writer_lock(engine):
        for n, t in enumerate(threads, 1):
            t.start()
            while len(group._queue) < n:  # queued in this order
                assert time.monotonic() < deadline
                time.sleep(0.002)
    for t in threads:
        t.join(10)
    return outcomes


def _gen_cash(engine: sa.Engine) -> int:
    tree = account_tree(engine, "main")
    return next(a["cash_cents"] for g in tree["groups"] for a in g["accounts"] if a["name"] == "A1-GEN")


def _keys(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit_log.c.idempotency_key).order_by(audit_log.c.seq)).scalars())


def test_units_started_together_commit_together_and_a_failed_one_leaves_no_trace(
    book: sa.Engine, begins: _Begins
) -> None:
    cash_before, keys_before = _gen_cash(book), _keys(book)
    with book.connect() as conn:
        transfers_before = conn.execute(sa.select(sa.func.count()).select_from(transfers)).scalar_one()
    begins.clear()
    failing = _wrote_then_failed(book, "bad", lambda _tx: InvalidInput("refused after writing"))
    calls = [_deposit(book, "d0"), _deposit(book, "d1"), failing, _deposit(book, "d2"), _deposit(book, "d1")]
    out = _run_grouped(book, calls)
    assert [type(o) for o in out] == [list, list, InvalidInput, list, list]
    assert out[4][0]["replayed"] is True and out[4][0]["transfer_id"] == out[1][0]["transfer_id"]
    assert len(begins) == 1  # all five in one transaction
    assert _keys(book) == [*keys_before, "d0", "d1", "d2"]  # one audit entry each, none for the failed one
    assert _gen_cash(book) == cash_before + 300
    with book.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(transfers)).scalar_one() == transfers_before + 3
    assert verify(book).ok, verify(book).problems


def test_a_database_error_in_a_group_runs_each_unit_again_alone(book: sa.Engine, begins: _Begins) -> None:
    cash_before, keys_before = _gen_cash(book), _keys(book)

    def broken(tx: Tx) -> BaseException:
        tx.conn.exec_driver_sql("SELECT * FROM no_such_table")
        return AssertionError("unreachable")

    begins.clear()
    calls = [_deposit(book, "d0"), _deposit(book, "d1"), _wrote_then_failed(book, "bad", broken), _deposit(book, "d2")]
    out = _run_grouped(book, calls)
    assert [type(o) for o in out] == [list, list, sa.exc.OperationalError, list]
    assert len(begins) == 1 + 4  # the group, rolled back; then each of the four again, alone
    assert _keys(book) == [*keys_before, "d0", "d1", "d2"]
    assert _gen_cash(book) == cash_before + 300
    assert verify(book).ok, verify(book).problems


def test_disposing_of_the_engine_closes_the_kept_connection(book: sa.Engine) -> None:
    # The file can then be replaced, or the process forked, with no connection of the old one left
    # open: SQLite deletes the write-ahead log when the last connection closes.
    import os

    path = book.url.database
    assert path is not None
    cash.move_cash(book, "t", "main", [("d1", cash.deposit("A1-GEN", 100_000))])
    book.dispose()

    def open_files() -> list[str]:
        fds = (os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd"))
        return [f for f in fds if f in (path, f"{path}-wal")]

    assert open_files() == []
    assert not os.path.exists(f"{path}-wal")
    cash.move_cash(book, "t", "main", [("d2", cash.deposit("A1-GEN", 100_000))])  # a new kept connection
    with book.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(transfers)).scalar_one() >= 3


def test_dispose_lets_go_of_the_kept_connection(book: sa.Engine, sqlite_template: Any) -> None:
    """`engine.dispose()` closes every connection of the engine, the group's kept one too: a database
    file replaced after it (a restore, the property tests' reset) is what the next write sees."""
    import shutil

    groups.open_group(book, "t", "main", "g2", groups.group_opening(10_000_000))
    book.dispose()
    assert book.url.database is not None
    shutil.copy(sqlite_template, book.url.database)
    from alluse.services.portfolios import create_portfolio

    create_portfolio(book, "test", "main", "test:portfolio")
    opened = groups.open_group(book, "t", "main", "g2", groups.group_opening(10_000_000))
    assert "replayed" not in opened and opened["name"] == "A1"


def test_an_engine_nobody_disposes_of_is_freed_with_its_kept_connection(tmp_path: Any) -> None:
    """The group (and its kept connection, which refers to the engine) lives on the engine: an engine
    dropped without `dispose()` is garbage, and its connection closed, like any other."""
    import gc
    import os
    import weakref

    from alluse.services.portfolios import create_portfolio
    from alluse.store.db import ensure_schema, make_engine

    path = str(tmp_path / "dropped.db")
    engine = make_engine(f"sqlite:///{path}")
    ensure_schema(engine)
    create_portfolio(engine, "test", "main", "test:portfolio")
    groups.open_group(engine, "t", "main", "g1", groups.group_opening(10_000_000))
    assert os.path.exists(f"{path}-wal")  # the kept connection is open
    dropped = weakref.ref(engine)
    del engine
    gc.collect()
    assert dropped() is None
    assert not os.path.exists(f"{path}-wal")  # its last connection closed: SQLite removed the log
