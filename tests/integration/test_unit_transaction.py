"""A unit of work on SQLite's kept connection (store/uow._by_hand) is one transaction, begun and
ended on the driver: nothing inside it can begin another or end it early unnoticed, and whatever
fails, COMMIT included, leaves the database exactly as it was."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from alluse.domain.errors import InvalidInput, RuleViolation
from alluse.services import cash, groups
from alluse.services.portfolios import create_portfolio
from alluse.services.verify import verify
from alluse.store import uow
from alluse.store.schema import cli_defaults
from alluse.store.uow import Request, Tx
from tests.conftest import db_state, sqlite_statements


@pytest.fixture
def book(sqlite_engine: sa.Engine) -> sa.Engine:
    create_portfolio(sqlite_engine, "test", "main", "test:portfolio")
    groups.open_group(sqlite_engine, "t", "main", "g1", groups.group_opening(10_000_000))
    return sqlite_engine


def _unit(engine: sa.Engine, key: str, then: Callable[[Tx], Any]) -> Callable[[], Any]:
    """A unit of work that writes a whole deposit (journal, balances, transfer, through the prepared
    statements), then does `then`."""

    def apply(tx: Tx, _fresh: list[Request]) -> list[dict[str, Any]]:
        cash._apply(tx, [cash.deposit("A1-GEN", 7)], False)
        then(tx)
        return [{"ok": True}]

    return lambda: uow.write(engine, "main", "t", "cash.deposit", [Request(key, {"n": 1})], apply)


def _deposit(engine: sa.Engine, key: str) -> Any:
    return cash.move_cash(engine, "t", "main", [(key, cash.deposit("A1-GEN", 100))])


def _one_at_a_time(statements: list[str]) -> int:
    """Checks that the traced statements never begin a transaction inside another and end each one
    begun; returns how many were begun."""
    open_, begun = False, 0
    for s in statements:
        word = s.split(None, 1)[0].upper() if s.strip() else ""
        if word == "BEGIN":
            assert not open_, statements
            open_, begun = True, begun + 1
        elif word in ("COMMIT", "ROLLBACK", "END") and not s.upper().startswith("ROLLBACK TO"):
            open_ = False
    assert not open_
    return begun


def test_a_begin_inside_a_unit_of_work_is_refused_and_nothing_stays(book: sa.Engine) -> None:
    before = db_state(book)

    def begin(tx: Tx) -> None:
        tx.conn.begin()

    # SQLite's own refusal, as the BEGIN's error comes out of SQLAlchemy's begin.
    with pytest.raises(sqlite3.OperationalError, match="within a transaction"):
        _unit(book, "b", begin)()
    assert db_state(book) == before
    _deposit(book, "after")  # the kept connection is as good as new
    assert verify(book).ok


def test_a_commit_or_rollback_through_sqlalchemy_inside_ends_nothing(book: sa.Engine) -> None:
    before = db_state(book)

    def end_then_fail(tx: Tx) -> None:
        tx.conn.commit()
        tx.conn.rollback()
        raise InvalidInput("refused after writing")

    with pytest.raises(InvalidInput):
        _unit(book, "c", end_then_fail)()
    assert db_state(book) == before


def test_a_statement_through_sqlalchemy_runs_in_the_unit_of_works_transaction(book: sa.Engine) -> None:
    before = db_state(book)
    d = cli_defaults

    def insert_then_fail(tx: Tx) -> None:
        tx.conn.execute(d.insert().values(name="x", value="y"))
        assert tx.conn.execute(sa.select(d.c.value).where(d.c.name == "x")).scalar() == "y"
        raise InvalidInput("refused after writing")

    with pytest.raises(InvalidInput):
        _unit(book, "s1", insert_then_fail)()
    assert db_state(book) == before

    _unit(book, "s2", lambda tx: tx.conn.execute(d.insert().values(name="x", value="y")))()
    with book.connect() as conn:
        assert conn.execute(sa.select(d.c.value).where(d.c.name == "x")).scalar() == "y"
    assert verify(book).ok


def test_a_failed_commit_rolls_everything_back(book: sa.Engine) -> None:
    before = db_state(book)

    def violate_at_commit(tx: Tx) -> None:
        raw: Any = tx.conn.connection.dbapi_connection
        raw.execute("PRAGMA defer_foreign_keys = ON")  # checked at COMMIT, which then fails
        raw.execute("INSERT INTO event_cursors VALUES ('c', 999999, 0, '2027-01-01 00:00:00')")

    with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY"):
        _unit(book, "f", violate_at_commit)()
    assert db_state(book) == before
    _deposit(book, "after")
    assert verify(book).ok


def test_an_interrupted_unit_of_work_leaves_nothing(book: sa.Engine) -> None:
    before = db_state(book)

    def interrupt(_tx: Tx) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _unit(book, "i", interrupt)()
    assert db_state(book) == before
    _deposit(book, "after")


def test_a_failed_statement_through_sqlalchemy_leaves_the_transaction_to_the_unit_of_work(book: sa.Engine) -> None:
    """SQLAlchemy rolls back after a failed statement of its own outside a transaction; inside a unit
    of work it is inside one, whose writes before and after stay one transaction."""
    before = db_state(book)

    def swallow_then_fail(tx: Tx) -> None:
        with pytest.raises(sa.exc.OperationalError):
            tx.conn.exec_driver_sql("SELECT * FROM no_such_table")
        assert tx.conn.in_transaction()
        cash._apply(tx, [cash.deposit("A1-GEN", 9)], False)
        raise InvalidInput("refused after writing")

    with pytest.raises(InvalidInput):
        _unit(book, "w", swallow_then_fail)()
    assert db_state(book) == before
    _deposit(book, "after")


def test_every_transaction_is_begun_alone_and_ended(book: sa.Engine) -> None:
    """Moves, a replay, a fill, an opening and failures one after the other: SQLite sees one BEGIN
    for each, never one inside another, each ended by its COMMIT or, on failure, a ROLLBACK."""
    from datetime import date

    from alluse.services.trades import Fill, FillAction, record_fill

    com = groups.open_group(book, "t", "main", "g2", groups.group_opening(10_000_000))["accounts"]["COM"]["account_id"]
    with sqlite_statements(book) as statements:
        _deposit(book, "d1")
        _deposit(book, "d1")  # replayed
        record_fill(book, "t", "main", "f1", Fill(com, FillAction.BTO, "XYZ", 1, "10", trade_date=date(2027, 1, 4)))
        groups.open_group(book, "t", "main", "g3", groups.group_opening(1_000_000))
        with pytest.raises(ZeroDivisionError):
            _unit(book, "x", lambda _tx: 1 / 0)()
        with pytest.raises(RuleViolation):
            cash.move_cash(book, "t", "main", [("big", cash.withdrawal("A1-GEN", 10**12))])
        _deposit(book, "d2")
    assert _one_at_a_time(statements) == 7
    assert [s for s in statements if s in ("COMMIT", "ROLLBACK")] == ["COMMIT"] * 4 + ["ROLLBACK"] * 2 + ["COMMIT"]
