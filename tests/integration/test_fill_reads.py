"""A fill booked alone reads its account (by its id or its name), the counter-accounts and (SQLite)
its id blocks in one statement, and what the account holds with the fact's instrument, position and
open lots in another. What it books and what it refuses stay those of the reads one by one."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from alluse.domain.errors import InvalidInput, NotFound, RuleViolation
from alluse.services import groups
from alluse.services.trades import Fill, FillAction, record_fill, record_fills
from alluse.services.verify import verify
from alluse.store.schema import accounts, lot_closes, lots, positions
from tests.conftest import sqlite_statements

CALL = "XYZ   270220C00055000"  # strike 55
DAY = date(2027, 1, 4)


def _com(engine: sa.Engine, portfolio: str) -> int:
    g = groups.open_group(engine, "t", portfolio, "g1", groups.group_opening(25_000_000))
    return int(g["accounts"]["COM"]["account_id"])


def _fill(aid: int | str, action: str, symbol: str | None, qty: int, price: str = "10", **kw: object) -> Fill:
    return Fill(aid, FillAction(action), symbol, qty, price, trade_date=DAY, **kw)  # type: ignore[arg-type]


def test_single_fills_by_account_id_book_what_the_reads_one_by_one_booked(engine: sa.Engine, portfolio: str) -> None:
    com = _com(engine, portfolio)
    # The portfolio's first fill: no counter-account yet, so the booking makes them.
    assert record_fill(engine, "t", portfolio, "b1", _fill(com, "BTO", "XYZ", 100, "50"))["cash_cents"] == -500_000
    # Shares held: the call they cover is known from the holdings read, and a second one is refused.
    record_fill(engine, "t", portfolio, "c1", _fill(com, "STO", CALL, 1, "1"))
    with pytest.raises(RuleViolation, match="calls must be covered"):
        record_fill(engine, "t", portfolio, "c2", _fill(com, "STO", CALL, 1, "1"))
    with pytest.raises(RuleViolation, match="uncover"):
        record_fill(engine, "t", portfolio, "s0", _fill(com, "STC", "XYZ", 1, "50"))
    record_fill(engine, "t", portfolio, "c3", _fill(com, "BTC", CALL, 1, "0.5"))
    # Closed, then bought again: the closed position is read back with the fact's instrument.
    r = record_fill(engine, "t", portfolio, "s1", _fill(com, "STC", "XYZ", 100, "51"))
    assert r["realized_cents"] == 100 * 100
    r = record_fill(engine, "t", portfolio, "b2", _fill(com, "BTO", "XYZ", 10, "52"))
    assert r["cash_cents"] == -52_000
    # An option recorded (and no longer held) with another multiplier is refused as before.
    with pytest.raises(InvalidInput, match="recorded with multiplier"):
        record_fill(engine, "t", portfolio, "c4", _fill(com, "BTO", CALL, 1, "1", multiplier=10))
    # By name, as before; a batch of facts of one account books them in order.
    record_fills(
        engine,
        "t",
        portfolio,
        [("b3", _fill("A1-COM", "BTO", "ABC", 5, "20")), ("s2", _fill(com, "STC", "ABC", 2, "21"))],
    )
    with engine.connect() as conn:
        held = conn.execute(sa.select(positions.c.quantity).where(positions.c.account_id == com)).scalars().all()
        assert sorted(held) == [0, 3, 10]
        assert conn.execute(sa.select(sa.func.count()).select_from(lot_closes)).scalar_one() == 3
        assert conn.execute(sa.select(sa.func.sum(lots.c.remaining))).scalar_one() == 13
    assert verify(engine).ok, verify(engine).problems


def test_an_account_it_cannot_book_into_is_refused(engine: sa.Engine, portfolio: str) -> None:
    com = _com(engine, portfolio)
    record_fill(engine, "t", portfolio, "b1", _fill(com, "BTO", "XYZ", 1))
    with engine.connect() as conn:
        ext = conn.execute(sa.select(accounts.c.id).where(accounts.c.name == "ext:market")).scalar_one()
        top = conn.execute(sa.select(sa.func.max(accounts.c.id))).scalar_one()
    with pytest.raises(InvalidInput, match="external counter-account"):
        record_fill(engine, "t", portfolio, "b2", _fill(ext, "BTO", "XYZ", 1))
    with pytest.raises(NotFound):
        record_fill(engine, "t", portfolio, "b3", _fill(top + 1, "BTO", "XYZ", 1))
    with pytest.raises(NotFound, match="did you mean A1-COM"):
        record_fill(engine, "t", portfolio, "b4", _fill("A1-CMO", "BTO", "XYZ", 1))
    with pytest.raises(NotFound):  # names are looked up in capitals, and counter-accounts have none
        record_fill(engine, "t", portfolio, "b5", _fill("ext:market", "BTO", "XYZ", 1))
    # A text of digits is an id, and never a counter-account's.
    with pytest.raises(NotFound):
        record_fill(engine, "t", portfolio, "b6", _fill(str(ext), "BTO", "XYZ", 1))
    assert record_fill(engine, "t", portfolio, "b7", _fill(f" {com} ", "BTO", "XYZ", 1))["account"] == "A1-COM"


def test_a_single_fill_reads_twice_beside_its_unit_of_work(sqlite_engine: sa.Engine) -> None:
    from alluse.services.portfolios import create_portfolio

    create_portfolio(sqlite_engine, "t", "main", "k:main")
    com = _com(sqlite_engine, "main")
    record_fill(sqlite_engine, "t", "main", "b1", _fill(com, "BTO", "XYZ", 10))
    with sqlite_statements(sqlite_engine) as statements:
        record_fill(sqlite_engine, "t", "main", "s1", _fill(com, "STC", "XYZ", 10, "11"))
        record_fill(sqlite_engine, "t", "main", "b2", _fill(com, "BTO", "XYZ", 10, "12"))
        record_fill(sqlite_engine, "t", "main", "s2", _fill(" a1-com ", "STC", "XYZ", 10, "12"))
    reads = [s for s in statements if s.startswith("SELECT")]
    # Each: the unit of work's head, then the booking's opening and holdings reads.
    assert len(reads) == 9, reads
    assert verify(sqlite_engine).ok
